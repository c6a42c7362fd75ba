"""`manage.py audit`: who changed what, a summary, or a check of the hash chain."""

from __future__ import annotations

import json

from django.core.management.base import BaseCommand, CommandError

from accounts import serializers, usage_stats
from accounts.audit import audit_verify
from cluster.console import table


class Command(BaseCommand):
    help = ("Show recent admin actions (keys, nodes, models, shards, settings) with actor, action "
            "and target; --summary for top actors and actions; --verify to prove the hash chain "
            "of the log is intact (exits 1 if any entry was changed or removed).")

    def add_arguments(self, parser) -> None:
        parser.add_argument("--limit", type=int, default=20, metavar="N",
                            help="how many entries (default 20)")
        parser.add_argument("--actor", metavar="X", help="only entries whose actor contains X")
        parser.add_argument("--summary", action="store_true", help="top actors and actions")
        parser.add_argument("--verify", action="store_true", help="check the hash chain")
        parser.add_argument("--json", action="store_true", help="print JSON")

    def handle(self, *args, **opts) -> None:
        if opts["limit"] < 1:
            raise CommandError("--limit must be at least 1")
        if opts["verify"]:
            self._verify(opts)
        elif opts["summary"]:
            summary = usage_stats.audit_summary()
            if opts["json"]:
                self.stdout.write(json.dumps(summary, indent=2))
                return
            self.stdout.write(f"{summary['entries']} audit entries\n\nTop actors:")
            self.stdout.write(table(summary["top_actors"], [("actor", "ACTOR"), ("entries", "ENTRIES")]))
            self.stdout.write("\nTop actions:")
            self.stdout.write(table(summary["top_actions"], [("action", "ACTION"),
                                                             ("entries", "ENTRIES")]))
        else:
            rows = [serializers.audit_dict(e) for e in
                    usage_stats.audit_recent(limit=opts["limit"], actor=opts["actor"])]
            if opts["json"]:
                self.stdout.write(json.dumps(rows, indent=2))
                return
            for row in rows:
                row["time"] = row["time"][:19].replace("T", " ")
            self.stdout.write(table(rows, [("id", "ID"), ("time", "TIME"), ("actor", "ACTOR"),
                                           ("source", "VIA"), ("action", "ACTION"),
                                           ("target", "TARGET")])
                              if rows else "No admin actions recorded yet.")

    def _verify(self, opts: dict) -> None:
        report = audit_verify()
        if opts["json"]:
            self.stdout.write(json.dumps(report.__dict__))
        elif report.ok:
            self.stdout.write(f"✔ audit chain intact: {report.checked} entries verified")
        if not report.ok:
            raise CommandError(f"audit chain broken at entry {report.broken_at}: {report.reason} "
                               f"({report.checked} entries before it verified)")
