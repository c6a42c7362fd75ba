"""Usage records leave the request path through a bounded buffer, flushed in batches."""

from __future__ import annotations

import time
from datetime import UTC, datetime

from accounts import usage_write
from accounts.models import UsageHour, UsageRecord
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
    real = usage_write._insert
    calls = {"n": 0}

    def flaky(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 1:
            raise RuntimeError("database is down")
        return real(*args, **kwargs)

    monkeypatch.setattr(usage_write, "_insert", flaky)
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


def test_odd_values_are_cleaned_not_refused(transactional_db):
    """An engine's garbage usage or a client's odd model name still lands, cut to fit, and the
    rest of its batch with it; the time stored is the request's, in UTC."""
    buffer = UsageBuffer()
    buffer.background = False
    when = datetime(2026, 11, 25, 21, 30, 15, 123456, tzinfo=UTC)
    odd = UsageEvent(created_at=when, request_id="req_odd", model="m\x00" + "x" * 500,
                     protocol="openai", endpoint="chat.completions", outcome="ok",
                     prompt_tokens=2**40, completion_tokens=-5, latency_ms=12, ttft_ms=None,
                     status_code=10**6, attempts=10**6, key_name="k" * 300)
    buffer.add(odd)
    buffer.add(_event(2))
    assert buffer.flush() == 2 and buffer.dropped == 0
    row = UsageRecord.objects.get(request_id="req_odd")
    assert row.model.startswith("m\ufffdx") and len(row.model) == 200
    assert len(row.key_name) == 100
    assert (row.prompt_tokens, row.completion_tokens) == (2**31 - 1, 0)
    assert row.ttft_ms is None and row.status_code == 32_767 and row.attempts == 32_767
    assert row.created_at == when
    assert UsageRecord.objects.filter(request_id="req_2").exists()
    hour = UsageHour.objects.get(model=row.model)  # the rollup trigger saw the raw insert
    assert hour.requests == 1 and hour.hour == when.replace(minute=0, second=0, microsecond=0)


def test_a_keys_last_use_is_its_latest_record(transactional_db):
    from accounts.models import ApiKey
    from accounts.services import key_create

    issued = key_create(name="worker")
    buffer = UsageBuffer()
    buffer.background = False
    later = datetime(2026, 11, 25, 21, 30, 15, tzinfo=UTC)
    earlier = datetime(2026, 11, 25, 20, 5, 0, tzinfo=UTC)
    for n, when in enumerate((later, earlier)):
        buffer.add(UsageEvent(created_at=when, request_id=f"req_k{n}", model="m",
                              protocol="openai", endpoint="chat.completions", outcome="ok",
                              key_id=issued.key.id, key_name="worker"))
    assert buffer.flush() == 2
    assert ApiKey.objects.get(pk=issued.key.id).last_used_at == later


def test_the_flush_thread_runs_below_the_event_loops_priority(transactional_db):
    import os

    from accounts.usage_buffer import FLUSH_NICENESS

    buffer = UsageBuffer()
    buffer.add(_event(1))
    deadline = time.monotonic() + 10
    base = os.getpriority(os.PRIO_PROCESS, 0)
    while time.monotonic() < deadline:
        thread = buffer._thread
        if thread is not None and thread.native_id is not None and \
                os.getpriority(os.PRIO_PROCESS, thread.native_id) != base:
            break
        time.sleep(0.02)
    assert os.getpriority(os.PRIO_PROCESS, buffer._thread.native_id) == min(
        19, base + FLUSH_NICENESS)
    assert os.getpriority(os.PRIO_PROCESS, 0) == base  # the rest of the process is untouched


def test_a_large_mixed_batch_lands_whole_and_its_rollups_match_its_records(transactional_db):
    """250 records (more than one statement's worth on SQLite, the last one partial), errors and
    streams among them, over two hours, two keys and two models, one sent twice: every record
    lands once, and the hourly rollups the insert trigger keeps equal the records counted again."""
    from collections import Counter

    from accounts.models import LatencyHour
    from accounts.rollup_sql import bucket

    buffer = UsageBuffer()
    buffer.background = False
    hours = (datetime(2026, 11, 25, 20, 59, 59, tzinfo=UTC),
             datetime(2026, 11, 25, 21, 0, 0, tzinfo=UTC))
    events = [UsageEvent(created_at=hours[n % 2], request_id=f"req_mix{n}", model=f"m{n % 3 % 2}",
                         protocol="openai", endpoint="chat.completions",
                         outcome="ok" if n % 5 else "engine_error", key_id=None,
                         key_name=f"k{n % 2}", stream=n % 4 == 0, prompt_tokens=n,
                         completion_tokens=2 * n, latency_ms=n * 37,
                         ttft_ms=n * 11 if n % 4 == 0 else None) for n in range(250)]
    for event in events + [events[7]]:
        buffer.add(event)
    assert buffer.flush() == 251 and buffer.dropped == 0
    assert UsageRecord.objects.filter(request_id__startswith="req_mix").count() == 250

    want: Counter = Counter()
    for e in events:
        hour = e.created_at.replace(minute=0, second=0)
        group = (hour, e.key_name, e.model)
        want[group + ("requests",)] += 1
        want[group + ("errors",)] += e.outcome != "ok"
        want[group + ("prompt",)] += e.prompt_tokens
        want[group + ("completion",)] += e.completion_tokens
    mine = {"hour__in": [h.replace(minute=0, second=0) for h in hours]}  # not other tests' records
    got: Counter = Counter()
    for h in UsageHour.objects.filter(**mine):
        group = (h.hour, h.key_name, h.model)
        got.update({group + ("requests",): h.requests, group + ("errors",): h.errors,
                    group + ("prompt",): h.prompt_tokens,
                    group + ("completion",): h.completion_tokens})
    assert got == want

    latencies = Counter()
    for e in events:
        if e.outcome == "ok":
            hour = e.created_at.replace(minute=0, second=0)
            latencies[(hour, 0, bucket(e.latency_ms))] += 1
            if e.ttft_ms is not None:
                latencies[(hour, 1, bucket(e.ttft_ms))] += 1
    assert Counter({(h.hour, h.kind, h.bucket): h.count
                    for h in LatencyHour.objects.filter(**mine)}) == latencies


def test_a_value_the_driver_cannot_bind_lands_as_text(transactional_db):
    buffer = UsageBuffer()
    buffer.background = False
    odd = _event(9)
    odd.engine = ["vllm"]  # a bug upstream must not stop the batch
    buffer.add(odd)
    buffer.add(_event(10))
    assert buffer.flush() == 2
    assert UsageRecord.objects.get(request_id="req_9").engine == '["vllm"]'


def test_a_flush_writes_what_was_buffered_when_it_began(transactional_db, monkeypatch):
    """Records that arrive while a flush writes wait for the next one: under steady traffic a
    flush that drained until empty chased them in transactions of a record or two."""
    from accounts import usage_buffer

    buffer = UsageBuffer()
    buffer.background = False
    for n in range(3):
        buffer.add(_event(n))
    real = usage_buffer.write_batch
    sizes = []
    arriving = iter(range(100, 104))

    def write_while_requests_arrive(batch):
        sizes.append(len(batch))
        n = next(arriving, None)
        if n is not None:
            buffer.add(_event(n))  # a request finishes meanwhile
        return real(batch)

    monkeypatch.setattr(usage_buffer, "write_batch", write_while_requests_arrive)
    monkeypatch.setattr(buffer, "_client", lambda: None)  # memory only, with or without Redis
    assert buffer.flush() == 3 and sizes == [3]
    assert len(buffer) == 1
    assert buffer.flush() == 1 and sizes == [3, 1] and len(buffer) == 1
    assert UsageRecord.objects.count() == 4
    # usage_flush (the `usage` command, tests) drains: what arrives while it writes goes too.
    assert buffer.flush(drain=True) == 3 and sizes == [3, 1, 1, 1, 1] and len(buffer) == 0
    assert UsageRecord.objects.count() == 7


def test_a_flush_waits_for_records_on_their_way_to_redis(transactional_db):
    """The flush thread moves records from memory to Redis every 50 ms. A flush that begins
    while some are between the two (usage_flush from the `usage` command, or a test) waits for
    them, and writes them, instead of finding them in neither and returning."""
    import threading

    import pytest

    from accounts import usage_buffer

    buffer = UsageBuffer()
    client = buffer._client()
    if client is None:
        pytest.skip("needs REDIS_URL: without Redis no record is parked (the PostgreSQL pass)")
    buffer.discard()
    on_the_way, go_on = threading.Event(), threading.Event()
    real_eval = client.eval

    def slow_park(script, *args):
        if script == usage_buffer._PARK and threading.current_thread() is buffer._thread:
            on_the_way.set()  # out of memory, not yet in Redis
            go_on.wait(5)
        return real_eval(script, *args)

    client.eval = slow_park
    try:
        buffer.add(_event(1))  # starts the flush thread
        assert on_the_way.wait(5)
        done = []
        flusher = threading.Thread(target=lambda: done.append(buffer.flush()))
        flusher.start()
        flusher.join(0.3)
        go_on.set()
        flusher.join(5)
        assert done and UsageRecord.objects.filter(request_id="req_1").exists()
    finally:
        go_on.set()
        client.eval = real_eval
        buffer.background = False
        buffer.discard()
