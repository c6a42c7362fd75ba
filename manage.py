#!/usr/bin/env python
"""Flock's command line: `python manage.py <command> --help`."""

from __future__ import annotations

import os
import sys


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "flocksite.settings")
    from django.core.management import execute_from_command_line

    from flocksite.config import ConfigError

    try:
        execute_from_command_line(sys.argv)
    except ConfigError as exc:
        print(f"flock: configuration error: {exc}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
