"""Reads over usage records and the audit log: recent rows and the summaries shown by
`manage.py usage --summary`, `audit --summary`, the admin API and the dashboard."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from django.db import connection
from django.db.models import Count, F, Q, QuerySet, Sum
from django.db.models.expressions import RawSQL
from django.utils import timezone

from accounts.models import AuditEntry, LatencyHour, UsageHour, UsageRecord
from accounts.rollup_sql import bucket


def usage_recent(*, limit: int = 50, user: str | None = None, key_id: int | None = None,
                 model: str | None = None, outcome: str | None = None) -> QuerySet[UsageRecord]:
    rows = UsageRecord.objects.order_by("-created_at")
    if outcome:
        rows = rows.filter(outcome=outcome)
    if user:
        rows = rows.filter(key_name=user) | rows.filter(key_id__in=_key_ids_of_owner(user))
    if key_id is not None:
        rows = rows.filter(key_id=key_id)
    if model:
        rows = rows.filter(model=model)
    return rows[:limit]


def _key_ids_of_owner(username: str) -> list[int]:
    from accounts.models import ApiKey

    return list(ApiKey.objects.filter(owner__username=username).values_list("id", flat=True))


def _percentile(histogram: Mapping[int, int], fraction: float) -> int:
    """The value at rank round(fraction * (n - 1)) of the sorted values a histogram counts."""
    total = sum(histogram.values())
    if not total:
        return 0
    rank = min(total - 1, max(0, round(fraction * (total - 1))))
    seen = 0
    for value in sorted(histogram):
        seen += histogram[value]
        if seen > rank:
            return value
    return max(histogram)


def _next_hour(moment: datetime) -> datetime:
    floor = moment.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    return floor if floor == moment else floor + timedelta(hours=1)


class _Tally:
    """Requests, errors, tokens and latency histograms, added up from rollup rows and records."""

    def __init__(self) -> None:
        self.models: dict[str, list[int]] = {}  # model -> [requests, errors, prompt, completion]
        self.keys: dict[tuple[int | None, str], list[int]] = {}  # (id, name) -> [requests, tokens]
        self.latency: Counter[int] = Counter()
        self.ttft: Counter[int] = Counter()

    def add_model(self, model: str, requests: int, errors: int, prompt: int, completion: int) -> None:
        row = self.models.setdefault(model, [0, 0, 0, 0])
        for i, value in enumerate((requests, errors, prompt or 0, completion or 0)):
            row[i] += value

    def add_key(self, key_id: int | None, key_name: str, requests: int, tokens: int) -> None:
        row = self.keys.setdefault((key_id or None, key_name), [0, 0])
        row[0] += requests
        row[1] += tokens or 0

    def add_rollup(self, start: datetime, end: datetime) -> None:
        hours = UsageHour.objects.filter(hour__gte=start, hour__lt=end, requests__gt=0)
        for row in hours.values("model").annotate(
                r=Sum("requests"), e=Sum("errors"), p=Sum("prompt_tokens"),
                c=Sum("completion_tokens")).order_by():
            self.add_model(row["model"], row["r"], row["e"], row["p"], row["c"])
        for row in hours.values("key_id", "key_name").annotate(
                r=Sum("requests"), t=Sum(F("prompt_tokens") + F("completion_tokens"))).order_by():
            self.add_key(row["key_id"], row["key_name"], row["r"], row["t"])
        for kind, value, n in (LatencyHour.objects.filter(hour__gte=start, hour__lt=end)
                               .values_list("kind", "bucket").annotate(n=Sum("count")).order_by()):
            if n > 0:
                (self.ttft if kind else self.latency)[value] += n

    def add_records(self, rows: QuerySet[UsageRecord]) -> None:
        for row in rows.values("model").annotate(
                r=Count("id"), e=Count("id", filter=~Q(outcome="ok")), p=Sum("prompt_tokens"),
                c=Sum("completion_tokens")).order_by():
            self.add_model(row["model"], row["r"], row["e"], row["p"], row["c"])
        for row in rows.values("key_id", "key_name").annotate(
                r=Count("id"), t=Sum(F("prompt_tokens") + F("completion_tokens"))).order_by():
            self.add_key(row["key_id"], row["key_name"], row["r"], row["t"])
        answered = rows.filter(outcome="ok")
        for value, n in answered.values_list("latency_ms").annotate(n=Count("id")).order_by():
            self.latency[bucket(value)] += n
        for value, n in (answered.filter(ttft_ms__isnull=False).values_list("ttft_ms")
                         .annotate(n=Count("id")).order_by()):
            self.ttft[bucket(value)] += n


def usage_summary(*, since: datetime | None = None, user: str | None = None,
                  key_id: int | None = None, now: datetime | None = None) -> dict[str, Any]:
    """Requests, tokens, latency percentiles, error rate, top models and keys, and requests per
    minute over the last 60 minutes.

    Whole hours of an unfiltered summary come from the hourly rollups (accounts/rollup_sql.py),
    the partial hours at either end from the records; a summary for one user or key reads its
    records. Percentiles are taken over latency buckets either way (at most 1% low above 1 s),
    so both paths agree."""
    now = now or timezone.now()
    since = since or now - timedelta(hours=24)
    rows = UsageRecord.objects.filter(created_at__gte=since)
    if user:
        rows = rows.filter(key_name=user) | rows.filter(key_id__in=_key_ids_of_owner(user))
    if key_id is not None:
        rows = rows.filter(key_id=key_id)
    tally = _Tally()
    first, last = _next_hour(since), now.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    if not user and key_id is None and first < last:
        tally.add_rollup(first, last)
        tally.add_records(rows.filter(created_at__lt=first))  # two ranges: one index scan each
        tally.add_records(rows.filter(created_at__gte=last))
    else:
        tally.add_records(rows)
    requests = sum(r[0] for r in tally.models.values())
    errors = sum(r[1] for r in tally.models.values())
    top_models = sorted(({"model": m, "requests": r[0], "tokens": r[2] + r[3]}
                         for m, r in tally.models.items() if r[0] > 0),
                        key=lambda row: (-row["requests"], row["model"]))[:10]
    top_keys = sorted(({"key_id": k[0], "key_name": k[1], "requests": r[0], "tokens": r[1]}
                       for k, r in tally.keys.items() if r[0] > 0),
                      key=lambda row: (-row["tokens"], row["key_name"]))[:10]
    return {
        "since": since.isoformat(),
        "requests": requests,
        "prompt_tokens": sum(r[2] for r in tally.models.values()),
        "completion_tokens": sum(r[3] for r in tally.models.values()),
        "errors": errors,
        "error_rate": round(errors / requests, 4) if requests else 0.0,
        "latency_ms": {"p50": _percentile(tally.latency, 0.5),
                       "p95": _percentile(tally.latency, 0.95),
                       "p99": _percentile(tally.latency, 0.99)},
        "ttft_ms": {"p50": _percentile(tally.ttft, 0.5), "p95": _percentile(tally.ttft, 0.95)},
        "top_models": top_models,
        "top_keys": top_keys,
        "rpm_last_60": requests_per_minute(rows, now=now),
    }


_MINUTES_SINCE = {  # whole minutes from %s to the record, counted in the database
    "postgresql": 'FLOOR(EXTRACT(EPOCH FROM ("accounts_usagerecord"."created_at" - %s)) / 60)',
    "sqlite": 'CAST((julianday("accounts_usagerecord"."created_at") - julianday(%s)) * 1440 '
              'AS INTEGER)',
}


def requests_per_minute(rows: QuerySet[UsageRecord], *, now: datetime,
                        minutes: int = 60) -> list[int]:
    """Requests in each of the last `minutes` minutes, oldest first."""
    start = now - timedelta(minutes=minutes)
    buckets = [0] * minutes
    recent = rows.filter(created_at__gt=start)
    sql = _MINUTES_SINCE.get(connection.vendor)
    if sql is None:
        counted = Counter(int((c - start).total_seconds() // 60)
                          for c in recent.values_list("created_at", flat=True))
    else:
        counted = dict(recent.annotate(minute=RawSQL(sql, [start])).values_list("minute")
                       .annotate(n=Count("id")).order_by())
    for index, n in counted.items():
        if index is not None and 0 <= int(index) < minutes:
            buckets[int(index)] += n
    return buckets


def audit_recent(*, limit: int = 50, actor: str | None = None,
                 action: str | None = None) -> QuerySet[AuditEntry]:
    rows = AuditEntry.objects.order_by("-id")
    if actor:
        rows = rows.filter(actor__icontains=actor)
    if action:
        rows = rows.filter(action__startswith=action)
    return rows[:limit]


def audit_summary(*, since: datetime | None = None) -> dict[str, Any]:
    rows = AuditEntry.objects.all()
    if since:
        rows = rows.filter(created_at__gte=since)
    actors = Counter(rows.values_list("actor", flat=True))
    actions = Counter(rows.values_list("action", flat=True))
    return {"entries": rows.count(),
            "top_actors": [{"actor": a, "entries": n} for a, n in actors.most_common(10)],
            "top_actions": [{"action": a, "entries": n} for a, n in actions.most_common(10)]}
