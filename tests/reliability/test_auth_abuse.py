"""Guessing keys: failed attempts are counted per address and, past the limit, refused with 429
for the rest of the minute, whatever key is tried."""

from __future__ import annotations

import httpx

from gateway.auth import AUTH_FAILURES_PER_MINUTE

CHAT = {"model": "fake-model", "messages": [{"role": "user", "content": "hi"}]}


def test_an_address_guessing_keys_is_slowed_down(gateway):
    statuses = [httpx.post(gateway.v1 + "/chat/completions", json=CHAT, headers={
        "authorization": f"Bearer sk-flock-{n:044d}"}).status_code
        for n in range(AUTH_FAILURES_PER_MINUTE + 2)]
    assert statuses[:AUTH_FAILURES_PER_MINUTE - 1] == [401] * (AUTH_FAILURES_PER_MINUTE - 1)
    assert statuses[-1] == 429
    blocked = httpx.post(gateway.v1 + "/chat/completions", json=CHAT, headers=gateway.headers())
    assert blocked.status_code == 429 and int(blocked.headers["retry-after"]) <= 60
    admin = httpx.get(gateway.url + "/admin/v1/tokens",
                      headers={"authorization": f"Bearer {gateway.admin_key}"})
    assert admin.status_code == 429


def test_too_many_messages_or_tools_is_a_400_in_each_dialect(gateway):
    from gateway.dialects.openai_parse import MAX_MESSAGES, MAX_TOOLS

    many = [{"role": "user", "content": "x"}] * (MAX_MESSAGES + 1)
    r = httpx.post(gateway.v1 + "/chat/completions", headers=gateway.headers(),
                   json={"model": "fake-model", "messages": many})
    assert r.status_code == 400 and r.json()["error"]["param"] == "messages"
    tools = [{"name": f"t{i}", "input_schema": {"type": "object"}} for i in range(MAX_TOOLS + 1)]
    r = httpx.post(gateway.url + "/v1/messages", headers=gateway.headers(),
                   json={"model": "fake-model", "max_tokens": 5, "tools": tools,
                         "messages": [{"role": "user", "content": "x"}]})
    assert r.status_code == 400 and r.json()["error"]["type"] == "invalid_request_error"
