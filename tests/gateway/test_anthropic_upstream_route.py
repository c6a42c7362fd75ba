"""A model that only an Anthropic-speaking upstream serves, called through the OpenAI route."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator

import httpx
import openai
import pytest

from tests.conftest import live_gateway
from tests.fakes.anthropic_server import FakeAnthropic


@pytest.fixture
def anthropic_gateway(_server, transactional_db, settings) -> Iterator:
    fake = FakeAnthropic().start()
    settings.FLOCK = dataclasses.replace(settings.FLOCK, anthropic_api_key=fake.api_key)
    live = live_gateway(_server, kind="anthropic", endpoint=fake.url)
    live.anthropic = fake  # type: ignore[attr-defined]
    yield live
    fake.stop()


def test_the_openai_sdk_reaches_an_anthropic_only_model(anthropic_gateway):
    client = openai.OpenAI(base_url=anthropic_gateway.v1, api_key=anthropic_gateway.user_key,
                           max_retries=0)
    reply = client.chat.completions.create(
        model="claude-haiku-4-5-20251001",
        messages=[{"role": "system", "content": "be kind"}, {"role": "user", "content": "hi"}])
    assert reply.choices[0].message.content == "Hello! How can I help you today?"
    sent = anthropic_gateway.anthropic.requests[-1]
    assert sent.headers["x-api-key"] == anthropic_gateway.anthropic.api_key  # the server's key
    assert anthropic_gateway.user_key not in json.dumps(sent.headers)
    assert sent.body["system"] == "be kind" and sent.body["max_tokens"] > 0


def test_a_streamed_answer_comes_back_as_openai_chunks(anthropic_gateway):
    with httpx.stream("POST", anthropic_gateway.v1 + "/chat/completions",
                      headers=anthropic_gateway.headers(),
                      json={"model": "claude-haiku-4-5-20251001", "stream": True,
                            "stream_options": {"include_usage": True},
                            "messages": [{"role": "user", "content": "hi"}]}) as r:
        data = [line[6:] for line in r.iter_lines() if line.startswith("data: ")]
    chunks = [json.loads(d) for d in data[:-1]]
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])
    assert text == "Hello! How can I help you today?"
    assert chunks[-1]["usage"]["completion_tokens"] > 0 and data[-1] == "[DONE]"
