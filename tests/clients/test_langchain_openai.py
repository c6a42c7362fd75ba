"""langchain-openai's ChatOpenAI against the OpenAI surface."""

from __future__ import annotations

import pytest
from langchain_openai import ChatOpenAI

from tests.clients.conftest import REAL_MODEL, billed
from tests.conftest import LiveGateway

pytestmark = [pytest.mark.clients, pytest.mark.once]  # the wire, not the database: one pass
WEATHER_TOOL = {"type": "function", "function": {
    "name": "get_weather", "description": "Current weather in a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                   "required": ["city"]}}}


def _chat(gateway: LiveGateway, model: str = "fake-model", **kwargs) -> ChatOpenAI:
    return ChatOpenAI(model=model, base_url=gateway.v1, api_key=gateway.user_key,
                      timeout=60, max_retries=0, **kwargs)


def _billed(gateway: LiveGateway, model: str = "fake-model"):
    row = billed(gateway)
    assert (row.key_name, row.model, row.protocol, row.outcome) == (
        "alice", model, "openai", "ok")
    return row


def test_invoke_returns_the_answer_and_usage(gateway):
    reply = _chat(gateway).invoke("hi")
    assert reply.content == "Hello from the fake engine"
    assert reply.usage_metadata is not None
    assert (reply.usage_metadata["input_tokens"], reply.usage_metadata["output_tokens"]) == (7, 5)
    assert gateway.engine.last_body["stream"] is False
    row = _billed(gateway)
    assert (row.prompt_tokens, row.completion_tokens) == (7, 5)


def test_stream_arrives_in_pieces_with_usage_at_the_end(gateway):
    chunks = list(_chat(gateway, stream_usage=True).stream("hi"))
    assert len([c for c in chunks if c.content]) == 5
    whole = sum(chunks[1:], chunks[0])
    assert whole.content == "Hello from the fake engine"
    assert whole.usage_metadata is not None
    assert (whole.usage_metadata["input_tokens"], whole.usage_metadata["output_tokens"]) == (7, 5)
    assert gateway.engine.last_body["stream_options"] == {"include_usage": True}
    _billed(gateway)


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
    assert reply.tool_calls[0]["id"] == "call_0"
    assert gateway.engine.last_body["tools"][0]["function"]["name"] == "get_weather"
    _billed(gateway)


@pytest.mark.engine
def test_invoke_gets_real_tokens_from_the_real_model(real_gateway):
    reply = _chat(real_gateway, REAL_MODEL, max_tokens=16).invoke("Say hi in five words.")
    assert reply.content
    usage = reply.usage_metadata
    assert usage is not None and usage["input_tokens"] > 0 and 0 < usage["output_tokens"] <= 16
    row = _billed(real_gateway, REAL_MODEL)
    assert row.completion_tokens == usage["output_tokens"]


@pytest.mark.engine
def test_stream_gets_real_tokens_from_the_real_model(real_gateway):
    chunks = list(_chat(real_gateway, REAL_MODEL, max_tokens=16, stream_usage=True)
                  .stream("Say hi in five words."))
    whole = sum(chunks[1:], chunks[0])
    assert whole.content
    usage = whole.usage_metadata
    assert usage is not None and 0 < usage["output_tokens"] <= 16
    row = _billed(real_gateway, REAL_MODEL)
    assert row.completion_tokens == usage["output_tokens"]
