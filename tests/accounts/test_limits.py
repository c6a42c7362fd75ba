"""Quotas, rate limits, model lists and revocation, through the live gateway."""

from __future__ import annotations

import concurrent.futures
import time

import httpx

from accounts.models import ApiKey
from accounts.services import key_create, key_revoke

CHAT = {"model": "fake-model", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]}
# The fake engine bills 7 prompt + 5 completion tokens for its default answer.
REAL_COST = 12


def _post(gateway, key: str, body: dict = CHAT) -> httpx.Response:
    return httpx.post(gateway.v1 + "/chat/completions", json=body, timeout=30,
                      headers={"authorization": f"Bearer {key}"})


def _spent(gateway, key_id: int) -> int:
    return sum(r.prompt_tokens + r.completion_tokens for r in gateway.usage_records()
               if r.key_id == key_id)


def test_a_key_over_its_daily_quota_gets_429_with_retry_after(gateway):
    # Each request reserves 30 tokens (a high guess) and settles at the 12 it really cost.
    issued = key_create(name="small", daily_token_quota=60)
    statuses = [_post(gateway, issued.plaintext).status_code for _ in range(4)]
    assert statuses == [200, 200, 200, 429]
    assert _spent(gateway, issued.key.id) == 36
    r = _post(gateway, issued.plaintext)
    assert r.json()["error"]["code"] == "quota_exceeded"
    assert 0 < int(r.headers["retry-after"]) <= 86400
    anthropic = httpx.post(gateway.url + "/v1/messages", json=CHAT, timeout=30,
                           headers={"x-api-key": issued.plaintext})
    assert anthropic.status_code == 429
    assert anthropic.json()["error"]["type"] == "rate_limit_error"


def test_concurrent_requests_never_overspend_by_more_than_one_reservation(gateway):
    quota = 200
    issued = key_create(name="contended", daily_token_quota=quota)
    gateway.engine.script.token_delay = 0.01
    with concurrent.futures.ThreadPoolExecutor(max_workers=25) as pool:
        results = list(pool.map(lambda _: _post(gateway, issued.plaintext).status_code,
                                range(100)))
    ok = results.count(200)
    assert ok > 0 and results.count(429) == 100 - ok
    rows = [r for r in gateway.usage_records() if r.key_id == issued.key.id]
    assert len(rows) == 100  # every request, admitted or not, has exactly one record
    from gateway.dialects.openai_parse import parse_chat
    from gateway.limits import reservation_prompt_tokens

    reservation = reservation_prompt_tokens(parse_chat(CHAT)) + CHAT["max_tokens"]
    assert _spent(gateway, issued.key.id) <= quota + reservation
    assert ok * REAL_COST == _spent(gateway, issued.key.id)


def test_the_rpm_limit_holds_under_concurrency(gateway):
    issued = key_create(name="paced", rpm_limit=10)
    with concurrent.futures.ThreadPoolExecutor(max_workers=20) as pool:
        results = list(pool.map(lambda _: _post(gateway, issued.plaintext).status_code,
                                range(40)))
    # The minute may roll over mid-run, which at most doubles what one window lets through.
    assert 10 <= results.count(200) <= 20
    assert results.count(429) == 40 - results.count(200)


def test_a_key_limited_to_some_models_gets_403_for_others(gateway):
    issued = key_create(name="narrow", allowed_models=["fake-embed"])
    r = _post(gateway, issued.plaintext)
    assert r.status_code == 403 and r.json()["error"]["code"] == "model_not_allowed"
    ok = httpx.post(gateway.v1 + "/embeddings", json={"model": "fake-embed", "input": "x"},
                    headers={"authorization": f"Bearer {issued.plaintext}"})
    assert ok.status_code == 200


def test_an_expired_key_is_refused(gateway):
    from datetime import timedelta

    from django.utils import timezone

    issued = key_create(name="old", expires_at=timezone.now() - timedelta(seconds=1))
    assert _post(gateway, issued.plaintext).status_code == 401


def test_a_revoked_key_is_refused_within_a_second(gateway):
    issued = key_create(name="soon-gone")
    assert _post(gateway, issued.plaintext).status_code == 200  # now cached in the gateway
    key_revoke(key=ApiKey.objects.get(pk=issued.key.id))
    time.sleep(1.0)
    assert _post(gateway, issued.plaintext).status_code == 401
