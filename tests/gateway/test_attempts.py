"""Failover before the first byte, keep-alives while an engine is slow, and what is never retried."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.fakes.openai_server import FakeOpenAIEngine

CHAT = {"model": "fake-model", "messages": [{"role": "user", "content": "hi"}]}


@pytest.fixture
def second_engine(gateway) -> Iterator[FakeOpenAIEngine]:
    from cluster.models import Node

    engine = FakeOpenAIEngine().start()
    engine.script.text = "Answer from the second node"
    Node.objects.create(name="worker-b", role="worker", engine="vllm", engine_endpoint=engine.url)
    yield engine
    engine.stop()


def test_an_engine_failing_before_the_first_byte_moves_to_the_next_node(gateway, second_engine):
    gateway.engine.script.fail_status = 503
    r = httpx.post(gateway.v1 + "/chat/completions", headers=gateway.headers(), json=CHAT)
    assert r.status_code == 200
    assert r.json()["choices"][0]["message"]["content"] == "Answer from the second node"
    with httpx.stream("POST", gateway.v1 + "/chat/completions", headers=gateway.headers(),
                      json={**CHAT, "stream": True}) as s:
        raw = s.read().decode()
    assert "second" in raw and raw.endswith("data: [DONE]\n\n")
    assert {row.node for row in gateway.usage_records()} == {"worker-b"}


def test_a_request_the_engine_rejects_is_not_retried_elsewhere(gateway, second_engine):
    gateway.engine.script.fail_status = 400
    gateway.engine.script.fail_message = "prompt is too long"
    r = httpx.post(gateway.v1 + "/chat/completions", headers=gateway.headers(), json=CHAT)
    assert r.status_code == 400 and "prompt is too long" in r.json()["error"]["message"]
    assert second_engine.requests == []


def test_a_slow_engine_gets_keepalive_comments_before_its_first_token(gateway):
    gateway.engine.script.first_delay = 5
    with httpx.stream("POST", gateway.v1 + "/chat/completions", headers=gateway.headers(),
                      json={**CHAT, "stream": True}, timeout=30) as r:
        assert r.status_code == 200
        raw = r.read().decode()
    assert raw.startswith(": ping\n\n")
    assert "Hello" in raw and raw.endswith("data: [DONE]\n\n")


def test_a_model_added_into_its_own_llama_server_is_routable(gateway):
    from catalog.models import InstalledModel, InstallState
    from cluster.models import Node

    extra = FakeOpenAIEngine().start()
    extra.script.models = ["qwen-added"]
    extra.script.text = "from the added model"
    try:
        InstalledModel.objects.create(
            model_id="qwen-added", spec="file:/models/qwen.gguf", node=Node.objects.get(),
            engine="llamacpp", engine_model="qwen-added", source="/models/qwen.gguf",
            state=InstallState.READY, serve_endpoint=extra.url)
        r = httpx.post(gateway.v1 + "/chat/completions", headers=gateway.headers(),
                       json={"model": "qwen-added", "messages": [{"role": "user", "content": "x"}]})
        assert r.status_code == 200, r.text
        assert r.json()["choices"][0]["message"]["content"] == "from the added model"
    finally:
        extra.stop()
