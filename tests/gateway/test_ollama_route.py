"""Requests in OpenAI's dialect served by an Ollama engine, through the whole gateway."""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import pytest

from tests.conftest import live_gateway
from tests.fakes.ollama_server import FakeOllama


@pytest.fixture
def ollama_gateway(_server, transactional_db) -> Iterator:
    fake = FakeOllama().start()
    live = live_gateway(_server, kind="ollama", endpoint=fake.url)
    live.ollama = fake  # type: ignore[attr-defined]
    yield live
    fake.stop()


def test_a_short_name_finds_the_ollama_tag(ollama_gateway):
    r = httpx.post(ollama_gateway.v1 + "/chat/completions", headers=ollama_gateway.headers(),
                   json={"model": "nomic-embed-text", "messages": [{"role": "user", "content": "x"}]})
    # Resolved to the :latest tag (the fake refuses chat on embedding models with Ollama's 400).
    assert ollama_gateway.ollama.last_request["model"] == "nomic-embed-text:latest"
    assert r.status_code == 400


def test_chat_streams_from_ollama_in_openai_shape_with_usage(ollama_gateway):
    with httpx.stream("POST", ollama_gateway.v1 + "/chat/completions",
                      headers=ollama_gateway.headers(),
                      json={"model": "llama3.2:1b", "stream": True,
                            "stream_options": {"include_usage": True},
                            "messages": [{"role": "user", "content": "hi"}]}) as r:
        data = [line[6:] for line in r.iter_lines() if line.startswith("data: ")]
    chunks = [json.loads(d) for d in data[:-1]]
    text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks if c["choices"])
    assert text == "Hello! How can I help you today?"
    assert chunks[-1]["usage"]["completion_tokens"] > 0
    row = ollama_gateway.usage_records()[-1]
    assert (row.engine, row.outcome) == ("ollama", "ok") and row.prompt_tokens > 0


def test_images_reach_ollama_as_base64(ollama_gateway):
    image = "data:image/png;base64,iVBORw0KGgo="
    r = httpx.post(ollama_gateway.v1 + "/chat/completions", headers=ollama_gateway.headers(),
                   json={"model": "llava:7b", "messages": [{"role": "user", "content": [
                       {"type": "text", "text": "what is this?"},
                       {"type": "image_url", "image_url": {"url": image}}]}]})
    assert r.status_code == 200, r.text
    sent = ollama_gateway.ollama.last_request["messages"][-1]
    assert sent["images"] == ["iVBORw0KGgo="] and sent["content"] == "what is this?"


def test_embeddings_go_through_api_embed(ollama_gateway):
    r = httpx.post(ollama_gateway.v1 + "/embeddings", headers=ollama_gateway.headers(),
                   json={"model": "nomic-embed-text", "input": "hello"})
    assert r.status_code == 200, r.text
    assert len(r.json()["data"][0]["embedding"]) == 8


def test_an_ollama_404_for_a_vanished_model_is_returned_not_retried(ollama_gateway):
    ollama_gateway.ollama.fail_status = 404
    ollama_gateway.ollama.fail_message = "model 'llama3.2:1b' not found"
    r = httpx.post(ollama_gateway.v1 + "/chat/completions", headers=ollama_gateway.headers(),
                   json={"model": "llama3.2:1b", "messages": [{"role": "user", "content": "hi"}]})
    assert r.status_code == 404
    assert "not found" in r.json()["error"]["message"]
