"""Redis and PostgreSQL of the test's own stopped under a running gateway: inference keeps
working, /readyz and the metrics say degraded, and nothing is lost when they return."""

from __future__ import annotations

import time

import httpx

from tests.reliability.stack import ledger, quota_counter, seed, wait_for

CHAT = {"model": "fake-model", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 16}
MESSAGES = {"model": "fake-model", "max_tokens": 16, "messages": [{"role": "user", "content": "hi"}]}


def ask(gateway, key: str, n: int) -> list[int]:
    """`n` requests, alternating OpenAI and Anthropic, streamed and not; their statuses."""
    statuses = []
    for i in range(n):
        stream = i % 4 >= 2
        if i % 2:
            r = httpx.post(gateway.url + "/v1/messages", json={**MESSAGES, "stream": stream},
                           headers={"x-api-key": key, "anthropic-version": "2023-06-01"}, timeout=30)
        else:
            r = httpx.post(gateway.url + "/v1/chat/completions", json={**CHAT, "stream": stream},
                           headers={"authorization": f"Bearer {key}"}, timeout=30)
        statuses.append(r.status_code)
    return statuses


def metric(gateway, admin: str, name: str) -> float:
    text = httpx.get(gateway.url + "/metrics", headers={"authorization": f"Bearer {admin}"},
                     timeout=30).text
    for line in text.splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"{name} not in /metrics")


def readyz(gateway) -> dict:
    return httpx.get(gateway.url + "/readyz", timeout=30).json()


def test_redis_stopped_mid_run_degrades_to_in_process_counters(stack, fake_engine):
    keys = seed(stack.env, fake_engine.url)
    gateway = stack.gateway()
    alice = keys["alice"]
    assert ask(gateway, alice, 4) == [200] * 4
    assert readyz(gateway)["status"] == "ready"
    wait_for(lambda: stack.usage_count() == 4, 20, "the first records written")

    stack.redis.stop()
    assert ask(gateway, alice, 20) == [200] * 20
    state = readyz(gateway)
    assert state["status"] == "degraded" and state["redis"] == "down"
    assert metric(gateway, keys["admin"], 'flock_dependency_up{dependency="redis"}') == 0
    wait_for(lambda: stack.usage_count() == 24, 20, "the outage's usage written")

    stack.redis.start()  # empty: it kept nothing
    wait_for(lambda: readyz(gateway)["status"] == "ready", 20, "/readyz ready again")
    time.sleep(1.1)  # past the retry delay, so the next requests count in Redis again
    assert ask(gateway, alice, 4) == [200] * 4
    wait_for(lambda: metric(gateway, keys["admin"], 'flock_dependency_up{dependency="redis"}') == 1,
             10, "the metric saying Redis is back")
    wait_for(lambda: stack.usage_count() == 28, 20, "every record written")
    # The counter came back from the ledger and went on from there.
    assert quota_counter(stack, keys["alice_id"]) == ledger(stack, keys["alice_id"]) > 0


def test_postgres_stopped_for_ten_seconds_loses_no_usage(stack, fake_engine):
    keys = seed(stack.env, fake_engine.url)
    gateway = stack.gateway()
    alice = keys["alice"]
    assert ask(gateway, alice, 4) == [200] * 4
    wait_for(lambda: stack.usage_count() == 4, 20, "the first records written")

    stack.pg.stop("immediate")
    sent, outage_ends = 4, time.monotonic() + 10
    while time.monotonic() < outage_ends:
        assert ask(gateway, alice, 4) == [200] * 4  # requests keep flowing
        sent += 4
    state = readyz(gateway)
    assert state["status"] == "degraded" and state["database"] is False
    assert metric(gateway, keys["admin"], 'flock_dependency_up{dependency="database"}') == 0
    unseen = httpx.post(gateway.url + "/v1/chat/completions", json=CHAT, timeout=30,
                        headers={"authorization": f"Bearer {keys['bob']}"})
    assert unseen.status_code == 503 and unseen.headers["retry-after"]  # a key never checked yet
    assert "database is unreachable" in unseen.json()["error"]["message"]

    stack.pg.start()
    wait_for(lambda: stack.usage_count() == sent, 30,
             lambda: f"every waiting record written ({stack.usage_count()} of {sent})")
    assert metric(gateway, keys["admin"], "flock_usage_records_dropped_total") == 0
    assert readyz(gateway)["status"] == "ready"
    logged = gateway.log_text()  # an outage's tracebacks name the database, never its password
    assert "database is unreachable" in logged
    assert not [s for s in (stack.pg.PASSWORD, alice, keys["bob"], keys["admin"]) if s in logged]


def test_a_model_name_the_database_cannot_store_blocks_no_usage(stack, fake_engine):
    """A NUL or an overlong name in one record must not stop its batch (and every batch after
    it) from being written: PostgreSQL refuses both."""
    keys = seed(stack.env, fake_engine.url)
    gateway = stack.gateway()
    headers = {"authorization": f"Bearer {keys['alice']}"}
    odd = httpx.post(gateway.url + "/v1/chat/completions", headers=headers, timeout=30,
                     json={**CHAT, "model": "evil\u0000" + "m" * 300})
    assert odd.status_code == 404
    assert ask(gateway, keys["alice"], 2) == [200, 200]
    wait_for(lambda: stack.usage_count() == 3, 20, "all three records written")
    names = stack.pg.sql("SELECT model FROM accounts_usagerecord", database=stack.database)
    assert any(n[0].startswith("evil\ufffd") and len(n[0]) == 200 for n in names)
