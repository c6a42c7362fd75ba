"""An engine killed, hung or answering garbage: timeouts are bounded, the next candidate is tried
while nothing has been sent, the caller otherwise gets a well-formed error in its dialect, and no
connection or asyncio task is left behind."""

from __future__ import annotations

import dataclasses
import json

import httpx
import pytest

from tests.fakes.openai_server import FakeOpenAIEngine
from tests.reliability.faulty_engines import (
    GarbageEngine,
    HungEngine,
    connections_to,
    dead_endpoint,
    gateway_tasks,
)
from tests.reliability.stack import wait_for

CHAT = {"model": "fake-model", "messages": [{"role": "user", "content": "hi"}]}
MESSAGES = {"model": "fake-model", "max_tokens": 16, "messages": [{"role": "user", "content": "hi"}]}
TIMEOUT = 1.0


@pytest.fixture
def short_timeouts(settings):
    settings.FLOCK = dataclasses.replace(settings.FLOCK, engine_timeout_seconds=TIMEOUT,
                                         engine_connect_timeout_seconds=TIMEOUT)


@pytest.fixture
def hung():
    engine = HungEngine().start()
    yield engine
    engine.stop()


@pytest.fixture
def garbage():
    engine = GarbageEngine().start()
    yield engine
    engine.stop()


def node(name: str, endpoint: str) -> None:
    from cluster.models import Node

    Node.objects.create(name=name, role="worker", engine="vllm", engine_endpoint=endpoint)


def make_leader(endpoint: str) -> None:
    from cluster.models import Node

    Node.objects.filter(role="leader").update(engine_endpoint=endpoint)


def both_dialects(gateway, stream: bool) -> list[httpx.Response]:
    openai = httpx.post(gateway.v1 + "/chat/completions", headers=gateway.headers(),
                        json={**CHAT, "stream": stream}, timeout=30)
    anthropic = httpx.post(gateway.v1 + "/messages", headers=gateway.headers(),
                           json={**MESSAGES, "stream": stream}, timeout=30)
    return [openai, anthropic]


def sse_events(text: str) -> list[dict]:
    return [json.loads(line[6:]) for line in text.splitlines()
            if line.startswith("data: {")]


def test_a_hung_killed_or_garbled_engine_falls_over_to_the_next_candidate(
        gateway, short_timeouts, hung, garbage, _server):
    healthy: FakeOpenAIEngine = gateway.engine
    healthy.script.text = "from the healthy node"
    make_leader(hung.url)  # tried first, and never answers
    node("a-garbage", garbage.url)
    node("b-dead", dead_endpoint())
    node("c-healthy", healthy.url)
    tasks_before = gateway_tasks(_server)

    for stream in (False, True, False, True):
        for r in both_dialects(gateway, stream):
            assert r.status_code == 200, r.text
            assert "healthy" in r.text

    assert hung.held == 4 * 2
    # Every failed attempt's connection is closed: nothing held open towards a broken engine.
    wait_for(lambda: connections_to(hung.url) == 0, 10, "connections to the hung engine closed")
    assert connections_to(garbage.url) <= 2  # idle keep-alives at most, not one per attempt
    wait_for(lambda: gateway_tasks(_server) <= tasks_before, 10, "no asyncio task left behind")


def test_with_no_candidate_left_each_failure_is_a_well_formed_error(gateway, short_timeouts, hung,
                                                                   garbage, _server):
    tasks_before = gateway_tasks(_server)
    for endpoint, status in ((hung.url, 504), (garbage.url, 502), (dead_endpoint(), 503)):
        make_leader(endpoint)
        from gateway.router import router

        router.reset()
        openai, anthropic = both_dialects(gateway, stream=False)
        assert openai.status_code == status, openai.text
        assert openai.json()["error"]["message"] and "Traceback" not in openai.text
        assert anthropic.status_code == (529 if status == 503 else status)
        assert anthropic.json()["type"] == "error" and anthropic.json()["error"]["type"]
    wait_for(lambda: connections_to(hung.url) == 0, 10, "connections to the hung engine closed")
    wait_for(lambda: gateway_tasks(_server) <= tasks_before, 10, "no asyncio task left behind")


def test_an_engine_dying_mid_stream_ends_the_stream_with_an_error_event(gateway, _server):
    gateway.engine.script.die_after_chunks = 3
    openai, anthropic = both_dialects(gateway, stream=True)
    assert openai.status_code == anthropic.status_code == 200  # the answer had begun
    events = sse_events(openai.text)
    assert events[-1]["error"]["message"] and openai.text.endswith("data: [DONE]\n\n")
    assert "event: error" in anthropic.text
    assert sse_events(anthropic.text)[-1]["type"] == "error"
    records = gateway.usage_records()
    assert [r.outcome for r in records] == ["error", "error"]
    assert connections_to(gateway.engine.url) <= 2  # at most the pool's idle keep-alives
