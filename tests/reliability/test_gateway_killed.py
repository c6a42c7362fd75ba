"""A gateway process killed with SIGKILL mid-stream loses no usage that it had parked in Redis:
the restarted process (or any other) writes it, once."""

from __future__ import annotations

import httpx

from tests.reliability.stack import seed, wait_for

CHAT = {"model": "fake-model", "messages": [{"role": "user", "content": "hi"}]}


def parked(stack) -> int:
    client = stack.redis.client()
    owners = [o.decode() for o in client.smembers("flock:usage:claimants")]
    return client.llen("flock:usage:pending") + sum(client.llen(f"flock:usage:claim:{o}")
                                                    for o in owners)


def test_usage_parked_in_redis_survives_a_gateway_killed_mid_stream(stack, fake_engine):
    keys = seed(stack.env, fake_engine.url)
    gateway = stack.gateway()
    headers = {"authorization": f"Bearer {keys['alice']}"}
    ids = [httpx.post(gateway.url + "/v1/chat/completions", json=CHAT, headers=headers,
                      timeout=30).headers["x-request-id"]]
    wait_for(lambda: stack.usage_count() == 1, 20, "the first record written")

    stack.pg.stop()  # the records that follow can only wait, in Redis
    for _ in range(20):
        r = httpx.post(gateway.url + "/v1/chat/completions", json=CHAT, headers=headers, timeout=30)
        assert r.status_code == 200, r.text
        ids.append(r.headers["x-request-id"])
    wait_for(lambda: parked(stack) == 20, 20, "20 records parked in Redis")

    fake_engine.script.token_delay = 0.2
    with httpx.stream("POST", gateway.url + "/v1/chat/completions", headers=headers, timeout=30,
                      json={**CHAT, "stream": True}) as stream:
        next(stream.iter_lines())
        gateway.kill()
    assert parked(stack) == 20

    stack.pg.start()
    stack.gateway()  # the restart
    wait_for(lambda: stack.usage_count() >= 21 and parked(stack) == 0, 30,
             "the parked records written by the restarted process")
    rows = stack.pg.sql("SELECT request_id FROM accounts_usagerecord", database=stack.database)
    assert sorted(r[0] for r in rows) == sorted(ids)  # every one, and each once
