"""`manage.py usage`: recent inference records, or their summary."""

from __future__ import annotations

import json

from django.core.management.base import BaseCommand, CommandError

from accounts import serializers, usage_stats
from cluster.console import table

BARS = " ▁▂▃▄▅▆▇█"


def sparkline(values: list[int]) -> str:
    top = max(values) if values else 0
    if not top:
        return BARS[0] * len(values)
    return "".join(BARS[min(len(BARS) - 1, round(v / top * (len(BARS) - 1)))] for v in values)


class Command(BaseCommand):
    help = ("Show recent inference requests (time, user, model, protocol, tokens, latency, outcome), "
            "or with --summary the last 24 hours: top models, p50/p95/p99 latency, error rate and "
            "requests per minute over the last hour.")

    def add_arguments(self, parser) -> None:
        parser.add_argument("--limit", type=int, default=20, metavar="N",
                            help="how many records (default 20)")
        parser.add_argument("--user", metavar="X", help="only this key name or owner")
        parser.add_argument("--model", metavar="M", help="only this model")
        parser.add_argument("--summary", action="store_true", help="aggregate view")
        parser.add_argument("--json", action="store_true", help="print JSON")

    def handle(self, *args, **opts) -> None:
        from accounts.usage_buffer import usage_flush

        usage_flush()  # anything this process still holds
        if opts["limit"] < 1:
            raise CommandError("--limit must be at least 1")
        if opts["summary"]:
            self._summary(opts)
            return
        rows = [serializers.usage_dict(r) for r in usage_stats.usage_recent(
            limit=opts["limit"], user=opts["user"], model=opts["model"])]
        if opts["json"]:
            self.stdout.write(json.dumps(rows, indent=2))
            return
        if not rows:
            self.stdout.write("No requests recorded yet.")
            return
        for row in rows:
            row["time"] = row["time"][:19].replace("T", " ")
            row["tokens"] = f"{row['prompt_tokens']}+{row['completion_tokens']}"
            row["latency"] = f"{row['latency_ms']} ms"
        self.stdout.write(table(rows, [("time", "TIME"), ("user", "USER"), ("model", "MODEL"),
                                       ("protocol", "PROTOCOL"), ("tokens", "TOKENS"),
                                       ("latency", "LATENCY"), ("outcome", "OUTCOME")]))

    def _summary(self, opts: dict) -> None:
        summary = usage_stats.usage_summary(user=opts["user"])
        if opts["json"]:
            self.stdout.write(json.dumps(summary, indent=2))
            return
        lat = summary["latency_ms"]
        self.stdout.write(f"Last 24 hours: {summary['requests']} requests, "
                          f"{summary['prompt_tokens'] + summary['completion_tokens']} tokens, "
                          f"error rate {summary['error_rate']:.1%}")
        self.stdout.write(f"Latency p50 {lat['p50']} ms, p95 {lat['p95']} ms, p99 {lat['p99']} ms")
        self.stdout.write(f"Requests/min, last hour: {sparkline(summary['rpm_last_60'])}")
        if summary["top_models"]:
            self.stdout.write("\nTop models:")
            self.stdout.write(table(summary["top_models"], [("model", "MODEL"),
                                                            ("requests", "REQUESTS"),
                                                            ("tokens", "TOKENS")]))
        if summary["top_keys"]:
            self.stdout.write("\nTop keys:")
            self.stdout.write(table(summary["top_keys"], [("key_name", "KEY"),
                                                          ("requests", "REQUESTS"),
                                                          ("tokens", "TOKENS")]))
