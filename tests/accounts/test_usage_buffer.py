"""Usage records leave the request path through a bounded buffer, flushed in batches."""

from __future__ import annotations

import time
from datetime import UTC, datetime

from accounts.models import UsageRecord
from accounts.usage_buffer import UsageBuffer, UsageEvent


def _event(n: int) -> UsageEvent:
    return UsageEvent(created_at=datetime.now(UTC), request_id=f"req_{n}", model="m",
                      protocol="openai", endpoint="chat.completions", outcome="ok",
                      prompt_tokens=3, completion_tokens=4)


def test_a_background_thread_writes_buffered_records(transactional_db):
    buffer = UsageBuffer()
    for n in range(3):
        buffer.add(_event(n))
    deadline = time.monotonic() + 10
    while UsageRecord.objects.count() < 3 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert sorted(UsageRecord.objects.values_list("request_id", flat=True)) == [
        "req_0", "req_1", "req_2"]
    assert len(buffer) == 0


def test_a_failed_flush_keeps_the_records_for_the_next_try(transactional_db, monkeypatch):
    buffer = UsageBuffer()
    buffer.background = False
    for n in range(5):
        buffer.add(_event(n))
    real = UsageRecord.objects.bulk_create
    calls = {"n": 0}

    def flaky(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 1:
            raise RuntimeError("database is down")
        return real(*args, **kwargs)

    monkeypatch.setattr(UsageRecord.objects, "bulk_create", flaky)
    assert buffer.flush() == 0 and len(buffer) + buffer.parked() == 5  # parked: with REDIS_URL
    assert buffer.flush() == 5
    assert UsageRecord.objects.count() == 5


def test_overflow_is_counted_not_silent():
    buffer = UsageBuffer(max_buffered=2)
    buffer.background = False
    for n in range(5):
        buffer.add(_event(n))
    assert len(buffer) == 2 and buffer.dropped == 3


def test_records_of_one_request_are_written_once(transactional_db):
    buffer = UsageBuffer()
    buffer.background = False
    buffer.add(_event(1))
    buffer.add(_event(1))
    buffer.flush()
    assert UsageRecord.objects.filter(request_id="req_1").count() == 1
