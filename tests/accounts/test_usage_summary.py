"""The usage summary: whole hours come from the trigger-kept rollups, the edges from the records,
and either way it says what the records say."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest

from accounts.models import ApiKey, LatencyHour, UsageHour, UsageRecord
from accounts.rollup_sql import bucket
from accounts.usage_stats import usage_summary

NOW = datetime(2026, 3, 4, 15, 37, 12, 500_000, tzinfo=UTC)
MODELS = ("llama", "qwen", "gemma")


def _records(count: int, *, seed: int = 7) -> list[UsageRecord]:
    rng = random.Random(seed)
    rows = []
    for n in range(count):
        outcome = rng.choice(("ok",) * 8 + ("error", "aborted"))
        key = rng.choice((None, 1, 2, 3))
        rows.append(UsageRecord(
            created_at=NOW - timedelta(seconds=rng.uniform(0, 30 * 3600)),
            request_id=f"req_{seed}_{n}", key_id=key, key_name=f"key-{key}" if key else "",
            model=rng.choice(MODELS), protocol="openai", endpoint="chat.completions",
            prompt_tokens=rng.randint(1, 900), completion_tokens=rng.randint(0, 400),
            latency_ms=rng.choice((rng.randint(1, 999), rng.randint(1000, 60_000))),
            ttft_ms=rng.choice((None, rng.randint(1, 3000))), outcome=outcome))
    return rows


def _expected(rows: list[UsageRecord], since: datetime) -> dict:
    """The summary worked out the slow way, from every record."""
    window = [r for r in rows if r.created_at >= since]

    def pct(values: list[int], fraction: float) -> int:
        values = sorted(bucket(v) for v in values)
        return values[min(len(values) - 1, round(fraction * (len(values) - 1)))] if values else 0

    ok = [r for r in window if r.outcome == "ok"]
    ttfts = [r.ttft_ms for r in ok if r.ttft_ms is not None]
    models: dict[str, list[int]] = {}
    keys: dict[tuple, list[int]] = {}
    for r in window:
        m = models.setdefault(r.model, [0, 0])
        m[0] += 1
        m[1] += r.prompt_tokens + r.completion_tokens
        k = keys.setdefault((r.key_id, r.key_name), [0, 0])
        k[0] += 1
        k[1] += r.prompt_tokens + r.completion_tokens
    return {
        "requests": len(window),
        "prompt_tokens": sum(r.prompt_tokens for r in window),
        "completion_tokens": sum(r.completion_tokens for r in window),
        "errors": sum(r.outcome != "ok" for r in window),
        "latency_ms": {"p50": pct([r.latency_ms for r in ok], 0.5),
                       "p95": pct([r.latency_ms for r in ok], 0.95),
                       "p99": pct([r.latency_ms for r in ok], 0.99)},
        "ttft_ms": {"p50": pct(ttfts, 0.5), "p95": pct(ttfts, 0.95)},
        "top_models": sorted(({"model": m, "requests": v[0], "tokens": v[1]}
                              for m, v in models.items()),
                             key=lambda x: (-x["requests"], x["model"])),
        "top_keys": sorted(({"key_id": k[0], "key_name": k[1], "requests": v[0], "tokens": v[1]}
                            for k, v in keys.items()), key=lambda x: (-x["tokens"], x["key_name"])),
    }


def _same(summary: dict, expected: dict) -> None:
    for field, value in expected.items():
        assert summary[field] == value, field


def test_the_summary_over_a_day_matches_the_records_it_summarises(db):
    rows = _records(1500)
    UsageRecord.objects.bulk_create(rows)
    assert UsageHour.objects.exists() and LatencyHour.objects.exists()  # kept by the triggers
    for hours in (24, 3, 1):
        since = NOW - timedelta(hours=hours)
        _same(usage_summary(since=since, now=NOW), _expected(rows, since))


def test_latencies_above_a_second_are_read_to_three_significant_digits(db):
    UsageRecord.objects.create(created_at=NOW - timedelta(hours=5), request_id="r1", model="m",
                               protocol="openai", endpoint="chat.completions", outcome="ok",
                               latency_ms=4779, ttft_ms=999)
    summary = usage_summary(since=NOW - timedelta(hours=24), now=NOW)
    assert summary["latency_ms"] == {"p50": 4770, "p95": 4770, "p99": 4770}
    assert summary["ttft_ms"] == {"p50": 999, "p95": 999}


def test_a_batch_written_twice_counts_once(db):
    rows = _records(200, seed=3)
    UsageRecord.objects.bulk_create(rows, ignore_conflicts=True)
    UsageRecord.objects.bulk_create(_records(200, seed=3), ignore_conflicts=True)
    since = NOW - timedelta(hours=24)
    _same(usage_summary(since=since, now=NOW), _expected(rows, since))


def test_deleted_and_changed_records_leave_the_summary(db):
    rows = _records(600, seed=5)
    UsageRecord.objects.bulk_create(rows)
    since = NOW - timedelta(hours=24)
    UsageRecord.objects.filter(model="qwen").delete()
    UsageRecord.objects.filter(model="gemma").update(outcome="error")
    kept = [r for r in rows if r.model != "qwen"]
    for r in kept:
        if r.model == "gemma":
            r.outcome = "error"
    _same(usage_summary(since=since, now=NOW), _expected(kept, since))
    assert not UsageHour.objects.filter(model="qwen").exists()


def test_a_summary_for_one_user_reads_only_their_records(db, django_user_model):
    owner = django_user_model.objects.create(username="ada")
    ApiKey.objects.create(id=2, name="key-2", owner=owner, lookup="l2", secret_hash="x")
    rows = _records(400, seed=9)
    UsageRecord.objects.bulk_create(rows)
    since = NOW - timedelta(hours=24)
    summary = usage_summary(since=since, now=NOW, user="ada")
    _same(summary, _expected([r for r in rows if r.key_id == 2], since))
    assert usage_summary(since=since, now=NOW, key_id=3)["requests"] == sum(
        1 for r in rows if r.key_id == 3 and r.created_at >= since)


@pytest.mark.parametrize("minutes_ago, index", [(0.5, 59), (59.5, 0)])
def test_requests_per_minute_counts_the_last_hour(db, minutes_ago, index):
    UsageRecord.objects.create(created_at=NOW - timedelta(minutes=minutes_ago), request_id="r",
                               model="m", protocol="openai", endpoint="chat.completions",
                               outcome="ok")
    rpm = usage_summary(now=NOW)["rpm_last_60"]
    assert rpm[index] == 1 and sum(rpm) == 1
