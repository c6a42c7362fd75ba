"""langchain-anthropic's ChatAnthropic against the Anthropic surface (/v1/messages)."""

from __future__ import annotations

import pytest
from langchain_anthropic import ChatAnthropic

from tests.clients.conftest import REAL_MODEL, billed
from tests.conftest import LiveGateway

pytestmark = [pytest.mark.clients, pytest.mark.once]  # the wire, not the database: one pass
WEATHER_TOOL = {"name": "get_weather", "description": "Current weather in a city",
                "input_schema": {"type": "object", "properties": {"city": {"type": "string"}},
                                 "required": ["city"]}}


def _chat(gateway: LiveGateway, model: str = "fake-model", **kwargs) -> ChatAnthropic:
    kwargs.setdefault("max_tokens", 256)
    return ChatAnthropic(model=model, base_url=gateway.url, api_key=gateway.user_key,
                         default_request_timeout=60, max_retries=0, **kwargs)


def _billed_ok(gateway: LiveGateway, model: str = "fake-model"):
    row = billed(gateway)
    assert (row.key_name, row.model, row.protocol, row.outcome) == (
        "alice", model, "anthropic", "ok")
    return row


def test_invoke_returns_the_answer_and_usage(gateway):
    reply = _chat(gateway).invoke("hi")
    assert reply.content == "Hello from the fake engine"
    assert reply.response_metadata["stop_reason"] == "end_turn"
    usage = reply.usage_metadata
    assert usage is not None and (usage["input_tokens"], usage["output_tokens"]) == (7, 5)
    row = _billed_ok(gateway)
    assert (row.prompt_tokens, row.completion_tokens) == (7, 5)


def test_stream_arrives_in_pieces_with_usage_at_the_end(gateway):
    chunks = list(_chat(gateway).stream("hi"))
    assert len([c for c in chunks if c.content]) == 5
    whole = sum(chunks[1:], chunks[0])
    assert whole.text == "Hello from the fake engine"
    usage = whole.usage_metadata
    assert usage is not None and (usage["input_tokens"], usage["output_tokens"]) == (7, 5)
    assert gateway.engine.last_body["stream"] is True
    _billed_ok(gateway)


@pytest.mark.parametrize("stream", [False, True], ids=["invoked", "streamed"])
def test_a_bound_tool_is_called_with_whole_arguments(gateway, stream):
    gateway.engine.script.text = ""
    gateway.engine.script.tool_calls = [{"name": "get_weather",
                                         "arguments": '{"city": "Paris"}'}]
    model = _chat(gateway).bind_tools([WEATHER_TOOL])
    if stream:
        chunks = list(model.stream("Weather in Paris?"))
        reply = sum(chunks[1:], chunks[0])
    else:
        reply = model.invoke("Weather in Paris?")
    assert [(c["name"], c["args"]) for c in reply.tool_calls] == [("get_weather",
                                                                   {"city": "Paris"})]
    assert reply.tool_calls[0]["id"]
    assert reply.response_metadata["stop_reason"] == "tool_use"
    assert gateway.engine.last_body["tools"][0]["function"]["name"] == "get_weather"
    _billed_ok(gateway)


@pytest.mark.engine
def test_invoke_gets_real_tokens_from_the_real_model(real_gateway):
    reply = _chat(real_gateway, REAL_MODEL, max_tokens=16).invoke("Say hi in five words.")
    assert reply.text
    usage = reply.usage_metadata
    assert usage is not None and usage["input_tokens"] > 0 and 0 < usage["output_tokens"] <= 16
    row = _billed_ok(real_gateway, REAL_MODEL)
    assert row.completion_tokens == usage["output_tokens"]


@pytest.mark.engine
def test_stream_gets_real_tokens_from_the_real_model(real_gateway):
    chunks = list(_chat(real_gateway, REAL_MODEL, max_tokens=16).stream("Say hi in five words."))
    whole = sum(chunks[1:], chunks[0])
    assert whole.text
    usage = whole.usage_metadata
    assert usage is not None and 0 < usage["output_tokens"] <= 16
    row = _billed_ok(real_gateway, REAL_MODEL)
    assert row.completion_tokens == usage["output_tokens"]
