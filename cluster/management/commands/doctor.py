"""`manage.py doctor`: diagnose the things that stop Flock from working."""

from __future__ import annotations

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from cluster import diagnostics
from cluster.console import Console


class Command(BaseCommand):
    help = (
        "Check this machine for what Flock needs: a writable data dir, a reachable database "
        "(and Redis when REDIS_URL is set), a free listen port (or Flock already on it), the "
        "embedded llama.cpp engine, and a reachable engine. Each problem comes with the command "
        "that fixes it. Exits 1 when something is wrong."
    )

    def handle(self, *args, **options) -> None:
        console = Console(self.stdout)
        checks = diagnostics.doctor_checks(settings.FLOCK)
        for check in checks:
            if not check.ok:
                console.fail(check.title)
            elif check.warning:
                console.warn(check.title)
            else:
                console.ok(check.title)
            for hint in check.hints:
                console.hint(f"→ {hint}")
        problems = sum(1 for check in checks if not check.ok)
        if problems:
            raise CommandError(f"{problems} problem{'s' if problems > 1 else ''} found; "
                               "fix the ✖ lines above", returncode=1)
        console.line("")
        console.line("Everything Flock needs is in place.")
