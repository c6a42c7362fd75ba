"""Request ids: the SDKs' format, unique, and in the order they were made (the usage ledger's
unique index on them then grows at one end)."""

from __future__ import annotations

import re
import time

from gateway.middleware import request_id_new


def test_ids_are_unique_and_sort_in_the_order_they_were_made():
    first = [request_id_new() for _ in range(5000)]
    time.sleep(0.002)
    later = [request_id_new() for _ in range(5000)]
    assert all(re.fullmatch(r"req_[0-9a-f]{24}", i) for i in first + later)
    assert len(set(first + later)) == 10_000
    assert max(first) < min(later)


def test_an_answer_carries_the_id_its_usage_record_has(gateway):
    import httpx

    from accounts.models import UsageRecord
    from accounts.usage_buffer import usage_flush

    r = httpx.post(gateway.v1 + "/chat/completions", headers=gateway.headers(),
                   json={"model": "fake-model", "messages": [{"role": "user", "content": "hi"}]})
    assert r.status_code == 200
    usage_flush()
    assert r.headers["x-request-id"] == r.headers["request-id"]
    assert UsageRecord.objects.filter(request_id=r.headers["x-request-id"]).count() == 1
