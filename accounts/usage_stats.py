"""Reads over usage records and the audit log: recent rows and the summaries shown by
`manage.py usage --summary`, `audit --summary`, the admin API and the dashboard."""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta
from typing import Any

from django.db.models import Count, F, QuerySet, Sum
from django.utils import timezone

from accounts.models import AuditEntry, UsageRecord


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


def _percentile(sorted_values: list[int], fraction: float) -> int:
    if not sorted_values:
        return 0
    index = min(len(sorted_values) - 1, max(0, round(fraction * (len(sorted_values) - 1))))
    return sorted_values[index]


def usage_summary(*, since: datetime | None = None, user: str | None = None,
                  key_id: int | None = None, now: datetime | None = None) -> dict[str, Any]:
    """Requests, tokens, latency percentiles, error rate, top models and keys, and requests per
    minute over the last 60 minutes."""
    now = now or timezone.now()
    since = since or now - timedelta(hours=24)
    rows = UsageRecord.objects.filter(created_at__gte=since)
    if user:
        rows = rows.filter(key_name=user) | rows.filter(key_id__in=_key_ids_of_owner(user))
    if key_id is not None:
        rows = rows.filter(key_id=key_id)
    totals = rows.aggregate(requests=Count("id"), prompt=Sum("prompt_tokens"),
                            completion=Sum("completion_tokens"))
    requests = totals["requests"] or 0
    errors = rows.exclude(outcome="ok").count()
    latencies = sorted(rows.filter(outcome="ok").values_list("latency_ms", flat=True))
    ttfts = sorted(v for v in rows.filter(outcome="ok").values_list("ttft_ms", flat=True)
                   if v is not None)
    top_models = list(rows.values("model").annotate(
        requests=Count("id"), tokens=Sum(F("prompt_tokens") + F("completion_tokens")))
        .order_by("-requests", "model")[:10])
    top_keys = list(rows.values("key_id", "key_name").annotate(
        requests=Count("id"), tokens=Sum(F("prompt_tokens") + F("completion_tokens")))
        .order_by("-tokens", "key_name")[:10])
    return {
        "since": since.isoformat(),
        "requests": requests,
        "prompt_tokens": totals["prompt"] or 0,
        "completion_tokens": totals["completion"] or 0,
        "errors": errors,
        "error_rate": round(errors / requests, 4) if requests else 0.0,
        "latency_ms": {"p50": _percentile(latencies, 0.5), "p95": _percentile(latencies, 0.95),
                       "p99": _percentile(latencies, 0.99)},
        "ttft_ms": {"p50": _percentile(ttfts, 0.5), "p95": _percentile(ttfts, 0.95)},
        "top_models": top_models,
        "top_keys": top_keys,
        "rpm_last_60": requests_per_minute(rows, now=now),
    }


def requests_per_minute(rows: QuerySet[UsageRecord], *, now: datetime,
                        minutes: int = 60) -> list[int]:
    """Requests in each of the last `minutes` minutes, oldest first."""
    start = now - timedelta(minutes=minutes)
    buckets = [0] * minutes
    for created in rows.filter(created_at__gt=start).values_list("created_at", flat=True):
        index = int((created - start).total_seconds() // 60)
        if 0 <= index < minutes:
            buckets[index] += 1
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
