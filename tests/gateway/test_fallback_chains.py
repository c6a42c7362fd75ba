"""Catalog fallback chains: a model whose engines fail before their first byte is answered by the
next model of its `fallback:` list; a stream that already started, or a request the engine
refuses, is never retried elsewhere."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest

from tests.fakes.catalog_entries import write_entry
from tests.fakes.openai_server import FakeOpenAIEngine
from tests.gateway.test_metrics import delta, scrape


@dataclass
class Chain:
    gateway: object
    a: FakeOpenAIEngine
    b: FakeOpenAIEngine
    c: FakeOpenAIEngine


def _serve(engine: FakeOpenAIEngine, model: str) -> FakeOpenAIEngine:
    engine.script.models = [model]
    engine.script.text = f"Answer from {model}"
    return engine


@pytest.fixture
def chain(gateway, settings, tmp_path) -> Iterator[Chain]:
    """model-a falls back to model-b, then model-c; each is served by a node of its own."""
    from cluster.models import Node

    write_entry(tmp_path, "model-a", fallback=["model-b", "model-c"])
    write_entry(tmp_path, "model-b")
    write_entry(tmp_path, "model-c")
    settings.FLOCK = dataclasses.replace(settings.FLOCK, catalog_dirs=(tmp_path,))
    b = _serve(FakeOpenAIEngine().start(), "model-b")
    c = _serve(FakeOpenAIEngine().start(), "model-c")
    Node.objects.create(name="worker-b", role="worker", engine="vllm", engine_endpoint=b.url)
    Node.objects.create(name="worker-c", role="worker", engine="vllm", engine_endpoint=c.url)
    yield Chain(gateway, _serve(gateway.engine, "model-a"), b, c)
    b.stop()
    c.stop()


def _ask(chain: Chain, dialect: str, *, stream: bool, model: str = "model-a") -> httpx.Response:
    gw = chain.gateway
    body = {"model": model, "messages": [{"role": "user", "content": "hi"}], "stream": stream}
    if dialect == "anthropic":
        body["max_tokens"] = 100
    path = "/messages" if dialect == "anthropic" else "/chat/completions"
    request = httpx.Request("POST", gw.v1 + path, headers=gw.headers(), json=body)
    with httpx.Client(timeout=30) as client:
        response = client.send(request)
        response.read()
    return response


def _events(raw: str) -> list[dict]:
    return [json.loads(line[6:]) for line in raw.splitlines()
            if line.startswith("data: ") and line != "data: [DONE]"]


def _answer(response: httpx.Response, dialect: str, stream: bool) -> tuple[str, str]:
    """(text, model) as the client sees them."""
    if not stream:
        body = response.json()
        if dialect == "anthropic":
            return "".join(b.get("text", "") for b in body["content"]), body["model"]
        return body["choices"][0]["message"]["content"], body["model"]
    events = _events(response.text)
    if dialect == "anthropic":
        start = next(e for e in events if e["type"] == "message_start")
        text = "".join(e["delta"].get("text", "") for e in events
                       if e["type"] == "content_block_delta")
        return text, start["message"]["model"]
    text = "".join(e["choices"][0]["delta"].get("content") or "" for e in events if e["choices"])
    return text, events[0]["model"]


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
@pytest.mark.parametrize("dialect", ["openai", "anthropic"])
def test_a_chain_of_three_is_answered_by_the_third_when_the_first_two_fail(chain, dialect, stream):
    chain.a.script.fail_status = 503
    chain.b.script.fail_status = 500
    before = scrape(chain.gateway.url)

    r = _ask(chain, dialect, stream=stream)

    assert r.status_code == 200, r.text
    assert _answer(r, dialect, stream) == ("Answer from model-c", "model-c")
    assert (len(chain.a.requests), len(chain.b.requests), len(chain.c.requests)) == (1, 1, 1)
    [record] = chain.gateway.usage_records()
    assert (record.model, record.requested_model, record.node) == ("model-c", "model-a",
                                                                   "worker-c")
    assert record.attempts == 3 and record.outcome == "ok" and record.completion_tokens > 0
    after = scrape(chain.gateway.url)
    assert delta(before, after, "flock_fallback_served_total", requested="model-a",
                 served="model-c") == 1
    assert delta(before, after, "flock_requests_total", model="model-c", outcome="ok") == 1


def test_an_unreachable_primary_and_a_timed_out_fallback_leave_the_third_to_answer(chain,
                                                                                   settings):
    settings.FLOCK = dataclasses.replace(settings.FLOCK, engine_timeout_seconds=0.5)
    chain.a.stop()  # connection refused
    chain.b.script.delay = 2  # longer than the engine timeout

    r = _ask(chain, "openai", stream=False)

    assert r.status_code == 200, r.text
    assert _answer(r, "openai", False) == ("Answer from model-c", "model-c")
    [record] = chain.gateway.usage_records()
    assert record.model == "model-c" and record.requested_model == "model-a"
    assert record.attempts == 2  # model-a's engine could not even list its models


@pytest.mark.parametrize("dialect", ["openai", "anthropic"])
def test_a_stream_that_fails_after_its_first_byte_is_not_retried(chain, dialect):
    chain.a.script.text = "one two three four five six"
    chain.a.script.die_after_chunks = 3

    r = _ask(chain, dialect, stream=True)

    assert r.status_code == 200
    events = _events(r.text)
    if dialect == "anthropic":
        assert events[-1]["type"] == "error"
        assert any(e.get("delta", {}).get("text") == "one" for e in events)
    else:
        assert events[-1]["error"]["code"] == "engine_error"
        assert not any(e.get("choices") and e["choices"][0].get("finish_reason") for e in events)
        assert events[1]["choices"][0]["delta"]["content"] == "one"
    assert chain.b.requests == [] and chain.c.requests == []
    [record] = chain.gateway.usage_records()
    assert (record.model, record.outcome, record.attempts) == ("model-a", "error", 1)


@pytest.mark.parametrize("dialect", ["openai", "anthropic"])
def test_a_request_the_engine_refuses_is_returned_as_is_and_the_engine_stays_healthy(
        chain, dialect):
    from cluster.models import Node

    replica = _serve(FakeOpenAIEngine().start(), "model-a")
    try:
        Node.objects.create(name="worker-a2", role="worker", engine="vllm",
                            engine_endpoint=replica.url)
        chain.a.script.fail_status = 400
        chain.a.script.fail_message = "This model's maximum context length is 8192 tokens"

        r = _ask(chain, dialect, stream=False)

        assert r.status_code == 400
        message = (r.json()["error"]["message"])
        assert "maximum context length is 8192" in message
        assert replica.requests == [] and chain.b.requests == [] and chain.c.requests == []
        [record] = chain.gateway.usage_records()
        assert (record.status_code, record.attempts) == (400, 1)

        chain.a.script.fail_status = 0  # the caller fixes the request
        r = _ask(chain, dialect, stream=False)
        assert r.status_code == 200 and _answer(r, dialect, False)[0] == "Answer from model-a"
        # Still the first choice: a refusal did not mark its node as failing.
        assert len(chain.a.requests) == 2 and replica.requests == []
    finally:
        replica.stop()


def test_the_fallback_chain_stays_within_a_keys_allowed_models(chain):
    from accounts.services import key_create

    key = key_create(name="only-a", allowed_models=["model-a", "model-c"]).plaintext
    chain.a.script.fail_status = 503
    r = httpx.post(chain.gateway.v1 + "/chat/completions", headers=chain.gateway.headers(key),
                   json={"model": "model-a", "messages": [{"role": "user", "content": "hi"}]})
    assert r.status_code == 200 and r.json()["model"] == "model-c"
    assert chain.b.requests == []  # model-b is in the chain, but not the key's to use


def test_without_a_fallback_entry_an_engine_failure_reaches_the_caller(chain):
    chain.c.script.fail_status = 503
    r = _ask(chain, "openai", stream=False, model="model-c")
    assert r.status_code == 502 and r.json()["error"]["code"] == "engine_error"
    assert chain.a.requests == [] and chain.b.requests == []


def test_a_fallback_taking_over_after_keepalives_names_itself_in_the_stream(chain, settings):
    settings.FLOCK = dataclasses.replace(settings.FLOCK, engine_timeout_seconds=2.5)
    chain.a.script.delay = 4  # silent past the first keep-alive, then timed out

    r = _ask(chain, "openai", stream=True)

    assert r.status_code == 200 and r.text.startswith(": ping\n\n")
    assert _answer(r, "openai", True) == ("Answer from model-b", "model-b")
    assert {e["model"] for e in _events(r.text)} == {"model-b"}
    [record] = chain.gateway.usage_records()
    assert (record.model, record.attempts) == ("model-b", 2)


def test_a_catalog_id_finds_engines_serving_the_model_under_its_source_name(chain):
    chain.a.script.models = ["test/model-a"]  # how vLLM names it: the entry's sources.vllm
    chain.b.script.models = ["test/model-b"]
    chain.a.script.fail_status = 503
    r = _ask(chain, "openai", stream=False)
    assert r.status_code == 200 and r.json()["model"] == "test/model-b"
    assert chain.a.requests[-1][1]["model"] == "test/model-a"
    [record] = chain.gateway.usage_records()
    assert (record.model, record.requested_model, record.attempts) == ("test/model-b",
                                                                       "model-a", 2)
