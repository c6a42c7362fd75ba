"""`manage.py doctor`: diagnose the things that stop Flock from working."""

from __future__ import annotations

import json

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from cluster import doctor_checks
from cluster.console import Console


class Command(BaseCommand):
    help = (
        "Check this machine for what Flock needs: a writable data dir closed to other users, "
        "disk space for models, a reachable database with every migration applied (and Redis "
        "when REDIS_URL is set), a free listen port (or Flock already on it), the embedded "
        "llama.cpp engine, a reachable engine on every node, one llama.cpp build across nodes, "
        "a clock in step with the leader (on a worker) and a catalog that validates. Each "
        "problem comes with the command that fixes it. Exits 1 when something is wrong."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--json", action="store_true",
                            help="print the checks as JSON (check, status ok|warn|fail, title, "
                                 "fix) for scripts")

    def handle(self, *args, **options) -> None:
        checks = doctor_checks.doctor_run(settings.FLOCK)
        problems = sum(1 for _, check in checks if not check.ok)
        if options["json"]:
            self.stdout.write(json.dumps({"ok": not problems,
                                          "checks": doctor_checks.as_json(checks)}, indent=2))
        else:
            self._print(checks)
        if problems:
            raise CommandError(f"{problems} problem{'s' if problems > 1 else ''} found; "
                               "fix the ✖ lines above" if not options["json"] else
                               f"{problems} problem{'s' if problems > 1 else ''} found",
                               returncode=1)
        if not options["json"]:
            self.stdout.write("")
            self.stdout.write("Everything Flock needs is in place.")

    def _print(self, checks) -> None:
        console = Console(self.stdout)
        for _, check in checks:
            if not check.ok:
                console.fail(check.title)
            elif check.warning:
                console.warn(check.title)
            else:
                console.ok(check.title)
            for hint in check.hints:
                console.hint(f"→ {hint}")
