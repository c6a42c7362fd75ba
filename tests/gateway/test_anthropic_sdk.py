"""The official `anthropic` Python SDK against the gateway, backed by the fake engine."""

from __future__ import annotations

import anthropic
import pytest

MSG = [{"role": "user", "content": "hi"}]
WEATHER_TOOL = {"name": "get_weather", "description": "Weather for a city",
                "input_schema": {"$schema": "https://json-schema.org/draft/2020-12/schema",
                                 "type": "object", "properties": {"city": {"type": "string"}},
                                 "required": ["city"]}}


@pytest.fixture
def client(gateway) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=gateway.url, api_key=gateway.user_key, max_retries=0)


def test_it_creates_a_message(client, gateway):
    message = client.messages.create(model="fake-model", max_tokens=100, messages=MSG)
    assert message.content[0].type == "text"
    assert message.content[0].text == "Hello from the fake engine"
    assert message.stop_reason == "end_turn"
    assert (message.usage.input_tokens, message.usage.output_tokens) == (7, 5)
    row = gateway.usage_records()[-1]
    assert (row.protocol, row.endpoint, row.prompt_tokens) == ("anthropic", "messages", 7)


def test_it_streams_text_and_reports_real_usage_at_the_end(client):
    with client.messages.stream(model="fake-model", max_tokens=100, messages=MSG) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text == "Hello from the fake engine"
    assert final.usage.output_tokens == 5 and final.usage.input_tokens == 7
    assert final.stop_reason == "end_turn"


def test_message_start_carries_a_nonzero_input_estimate(client):
    with client.messages.stream(model="fake-model", max_tokens=100, messages=MSG) as stream:
        first = next(iter(stream))
    assert first.type == "message_start"
    assert first.message.usage.input_tokens > 0


def test_a_tool_use_round_trip(client, gateway):
    gateway.engine.script.text = ""
    gateway.engine.script.tool_calls = [{"name": "get_weather", "arguments": '{"city": "Paris"}'}]
    first = client.messages.create(model="fake-model", max_tokens=200, tools=[WEATHER_TOOL],
                                   messages=[{"role": "user", "content": "weather in Paris?"}])
    assert first.stop_reason == "tool_use"
    use = [b for b in first.content if b.type == "tool_use"][0]
    assert (use.name, use.input) == ("get_weather", {"city": "Paris"})
    sent_tools = gateway.engine.last_body["tools"]
    assert sent_tools[0]["function"]["parameters"]["required"] == ["city"]
    assert "$schema" not in sent_tools[0]["function"]["parameters"]

    gateway.engine.script.tool_calls = []
    gateway.engine.script.text = "It is sunny"
    second = client.messages.create(
        model="fake-model", max_tokens=200, tools=[WEATHER_TOOL],
        messages=[{"role": "user", "content": "weather in Paris?"},
                  {"role": "assistant", "content": first.content},
                  {"role": "user", "content": [{"type": "tool_result", "tool_use_id": use.id,
                                                "content": "22C and sunny"}]}])
    assert second.content[0].text == "It is sunny"
    sent = gateway.engine.last_body["messages"]
    assert sent[1]["tool_calls"][0]["id"] == use.id
    assert sent[1]["content"] is None  # no empty text block for a tool-only turn
    assert sent[2] == {"role": "tool", "tool_call_id": use.id, "content": "22C and sunny"}


def test_streamed_tool_arguments_arrive_whole(client, gateway):
    gateway.engine.script.text = "Let me check."
    gateway.engine.script.tool_calls = [
        {"name": "get_weather", "arguments": '{"city": "Paris, France", "days": [1, 2, 3]}'}]
    with client.messages.stream(model="fake-model", max_tokens=200, tools=[WEATHER_TOOL],
                                messages=MSG) as stream:
        events = list(stream)
        final = stream.get_final_message()
    assert [b.type for b in final.content] == ["text", "tool_use"]
    assert final.content[0].text == "Let me check."
    assert final.content[1].input == {"city": "Paris, France", "days": [1, 2, 3]}
    assert final.stop_reason == "tool_use"
    starts = [e.index for e in events if e.type == "content_block_start"]
    stops = [e.index for e in events if e.type == "content_block_stop"]
    assert starts == stops == [0, 1]


def test_reasoning_becomes_a_thinking_block_before_the_text(client, gateway):
    gateway.engine.script.reasoning = "The user greets me."
    with client.messages.stream(model="fake-model", max_tokens=200, messages=MSG,
                                thinking={"type": "enabled", "budget_tokens": 1024}) as stream:
        final = stream.get_final_message()
    assert [b.type for b in final.content] == ["thinking", "text"]
    assert final.content[0].thinking == "The user greets me."
    assert gateway.engine.last_body["chat_template_kwargs"] == {"enable_thinking": True}


def test_count_tokens_uses_the_engines_tokenizer(client, gateway):
    result = client.messages.count_tokens(model="fake-model", messages=MSG, system="be brief")
    assert result.input_tokens > 0
    assert gateway.engine.requests[-1][0] == "/tokenize"


def test_models_list_comes_in_anthropic_shape(client):
    page = client.models.list()
    assert [m.id for m in page.data] == ["fake-embed", "fake-model"]
    assert page.data[0].type == "model"


def test_errors_arrive_as_the_sdks_typed_exceptions(client, gateway):
    bad = anthropic.Anthropic(base_url=gateway.url, api_key="sk-flock-" + "y" * 44, max_retries=0)
    with pytest.raises(anthropic.AuthenticationError):
        bad.messages.create(model="fake-model", max_tokens=10, messages=MSG)
    with pytest.raises(anthropic.BadRequestError, match="max_tokens"):
        # messages.create refuses to send this itself; the SDK's generic post does.
        client.post("/v1/messages", cast_to=object, body={"model": "fake-model", "messages": MSG})
    with pytest.raises(anthropic.BadRequestError, match="messages"):
        client.messages.create(model="fake-model", max_tokens=10, messages=[])
    with pytest.raises(anthropic.NotFoundError):
        client.messages.create(model="no-such-model", max_tokens=10, messages=MSG)
    from accounts.services import key_create

    node = anthropic.Anthropic(base_url=gateway.url, max_retries=0,
                               api_key=key_create(name="w", scope="node").plaintext)
    with pytest.raises(anthropic.PermissionDeniedError):
        node.messages.create(model="fake-model", max_tokens=10, messages=MSG)
    gateway.engine.script.fail_status = 500
    with pytest.raises(anthropic.InternalServerError) as failed:
        client.messages.create(model="fake-model", max_tokens=10, messages=MSG)
    assert failed.value.status_code == 502
    assert failed.value.body["error"]["type"] == "api_error"


def test_an_unreachable_engine_is_an_overloaded_error(client, gateway):
    from cluster.models import Node

    Node.objects.update(engine_endpoint="http://127.0.0.1:9")
    with pytest.raises(anthropic.InternalServerError) as failed:
        client.messages.create(model="fake-model", max_tokens=10, messages=MSG)
    assert failed.value.status_code == 529
    assert failed.value.body["error"]["type"] == "overloaded_error"
    assert "unreachable" in failed.value.body["error"]["message"]


def test_an_engine_dying_mid_stream_raises_from_the_error_event(client, gateway):
    gateway.engine.script.die_after_chunks = 3
    with pytest.raises(anthropic.APIStatusError) as failed:
        with client.messages.stream(model="fake-model", max_tokens=100, messages=MSG) as stream:
            for _ in stream:
                pass
    assert "api_error" in str(failed.value)
