"""The Anthropic driver against a fake Anthropic API over real HTTP on 127.0.0.1."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any, TypeVar

import anthropic
import pytest

from gateway import http
from gateway.canonical import (
    ChatRequest,
    CompletionRequest,
    EmbeddingRequest,
    Event,
    Finish,
    ReasoningDelta,
    TextDelta,
    ToolCallDelta,
    Usage,
    collect_chat,
)
from gateway.engines.anthropic_vendor import AnthropicEngine
from gateway.errors import EngineFailed, EngineRejected, EngineUnreachable, InvalidRequest
from tests.fakes.anthropic_server import SIGNATURE, FakeAnthropic

T = TypeVar("T")
KEY = "sk-ant-api03-fake-key"
SONNET = "claude-sonnet-4-5-20250929"
WEATHER_SCHEMA = {"$schema": "https://json-schema.org/draft/2020-12/schema", "type": "object",
                  "properties": {"city": {"type": "string"}}, "required": ["city"]}
WEATHER_TOOL = {"type": "function", "function": {
    "name": "get_weather", "description": "Weather for a city", "parameters": WEATHER_SCHEMA}}


@pytest.fixture
def fake() -> Iterator[FakeAnthropic]:
    """A fake Anthropic API on a free 127.0.0.1 port; tweak its attributes to script a test."""
    server = FakeAnthropic(api_key=KEY).start()
    yield server
    server.stop()


def run(make: Callable[[], Awaitable[T]]) -> T:
    async def main() -> T:
        try:
            return await make()
        finally:
            await http.client().aclose()  # one client per loop; this loop ends here

    return asyncio.run(main())


def engine_for(fake: FakeAnthropic, key: str = KEY) -> AnthropicEngine:
    return AnthropicEngine(fake.url + "/", api_key=key, timeout=10, connect_timeout=2)


def ask(text: str = "Why is the sky blue?", **fields: Any) -> ChatRequest:
    return ChatRequest(model="sonnet", messages=[{"role": "system", "content": "Be brief."},
                                                 {"role": "user", "content": text}], **fields)


async def drain(stream: AsyncIterator[Event]) -> list[Event]:
    return [event async for event in stream]


async def drain_until_failure(stream: AsyncIterator[Event]) -> tuple[list[Event], Exception]:
    seen: list[Event] = []
    try:
        async for event in stream:
            seen.append(event)
    except Exception as exc:  # noqa: BLE001 - the test asserts on its type
        return seen, exc
    raise AssertionError("the stream did not fail")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# --- the fake is the published API ----------------------------------------------------------


def test_the_official_sdk_reads_the_fake_like_the_real_api(fake: FakeAnthropic) -> None:
    fake.thinking = "Short."
    fake.tool_calls = [{"name": "get_weather", "input": {"city": "Paris"}}]
    client = anthropic.Anthropic(api_key=KEY, base_url=fake.url, max_retries=0)
    tools = [{"name": "get_weather", "input_schema": WEATHER_SCHEMA}]
    params: dict[str, Any] = {"model": SONNET, "max_tokens": 4000, "tools": tools,
                              "thinking": {"type": "enabled", "budget_tokens": 1024},
                              "messages": [{"role": "user", "content": "Weather in Paris?"}]}
    whole: dict[str, Any] = client.messages.create(**params).to_dict()
    with client.messages.stream(**params) as stream:
        streamed: dict[str, Any] = stream.get_final_message().to_dict()
    for message in (whole, streamed):
        assert [b["type"] for b in message["content"]] == ["thinking", "text", "tool_use"]
        assert message["content"][0]["signature"] == SIGNATURE
        assert message["content"][2]["input"] == {"city": "Paris"}
        assert message["stop_reason"] == "tool_use"
    assert streamed["usage"] == whole["usage"]
    assert [m.id for m in client.models.list()] == list(fake.models)
    assert client.messages.count_tokens(model=SONNET, messages=params["messages"]).input_tokens
    with pytest.raises(anthropic.BadRequestError, match="max_tokens: Field required"):
        client.post("/v1/messages", cast_to=anthropic.types.Message,
                    body={"model": SONNET, "messages": params["messages"]})


REFUSED_BODIES: dict[str, tuple[dict[str, Any], str]] = {
    "an empty text block": ({"messages": [{"role": "user", "content": [
        {"type": "text", "text": ""}]}]}, "text content blocks must be non-empty"),
    "a tool_use left unanswered": ({"messages": [
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_1", "name": "f",
                                           "input": {}}]},
        {"role": "user", "content": "go on"}]}, "`tool_use` ids were found without"),
    "an OpenAI field": ({"messages": [{"role": "user", "content": "hi"}], "seed": 1},
                        "seed: Extra inputs are not permitted"),
    "a tool_choice without tools": ({"messages": [{"role": "user", "content": "hi"}],
                                     "tool_choice": {"type": "auto"}},
                                    "tool_choice may only be specified while providing tools"),
}


@pytest.mark.parametrize("name", list(REFUSED_BODIES))
def test_the_fake_refuses_what_the_real_api_refuses(fake: FakeAnthropic, name: str) -> None:
    body, message = REFUSED_BODIES[name]
    client = anthropic.Anthropic(api_key=KEY, base_url=fake.url, max_retries=0)
    with pytest.raises(anthropic.BadRequestError, match=message):
        client.post("/v1/messages", cast_to=anthropic.types.Message,
                    body={"model": SONNET, "max_tokens": 100, **body})


# --- requests ---------------------------------------------------------------------------------


def test_it_sends_its_key_as_x_api_key_with_an_anthropic_version(fake: FakeAnthropic) -> None:
    run(lambda: engine_for(fake).chat(ask(), SONNET))
    headers = fake.last_request.headers
    assert headers["x-api-key"] == KEY
    assert headers["anthropic-version"] == "2023-06-01"
    assert "authorization" not in headers
    assert fake.last_request.path == "/v1/messages"


def test_a_wrong_key_comes_back_as_an_authentication_rejection(fake: FakeAnthropic) -> None:
    with pytest.raises(EngineRejected, match="invalid x-api-key") as caught:
        run(lambda: engine_for(fake, key="sk-ant-wrong").chat(ask(), SONNET))
    assert caught.value.status == 401


def test_it_chats_in_one_response(fake: FakeAnthropic) -> None:
    result = run(lambda: engine_for(fake).chat(ask(temperature=1.7), SONNET))
    assert result.text == "Hello! How can I help you today?"
    assert result.finish_reason == "stop"
    assert result.usage == Usage(prompt_tokens=15, completion_tokens=7)
    assert fake.last_body == {
        "model": SONNET, "max_tokens": 4096, "system": "Be brief.", "temperature": 1.0,
        "messages": [{"role": "user", "content": [{"type": "text", "text": "Why is the sky blue?"}]}],
        "stream": False}


def test_it_streams_text_token_by_token_then_the_finish_and_usage(fake: FakeAnthropic) -> None:
    events = run(lambda: drain(engine_for(fake).chat_stream(ask(), SONNET)))
    texts = [e.text for e in events if isinstance(e, TextDelta)]
    assert texts == ["Hello!", " How", " can", " I", " help", " you", " today?"]
    assert events[-2:] == [Finish(reason="stop"), Usage(prompt_tokens=15, completion_tokens=7)]
    assert fake.last_body["stream"] is True


def test_it_streams_thinking_text_and_tool_calls_with_whole_arguments(
        fake: FakeAnthropic) -> None:
    fake.thinking = "The user wants weather for two cities."
    fake.tool_calls = [{"name": "get_weather", "input": {"city": "Paris"}},
                       {"name": "get_weather", "input": {"city": "Oslo, Norway"}}]
    request = ask("Weather in Paris and Oslo?", tools=[WEATHER_TOOL], thinking=True,
                  max_tokens=8000)
    events = run(lambda: drain(engine_for(fake).chat_stream(request, SONNET)))
    assert isinstance(events[0], ReasoningDelta)
    heads = [e for e in events if isinstance(e, ToolCallDelta) and e.id]
    assert [(h.index, h.name) for h in heads] == [(0, "get_weather"), (1, "get_weather")]
    result = collect_chat(events)
    assert result.reasoning == "The user wants weather for two cities."
    assert [json.loads(c.arguments) for c in result.tool_calls] == [
        {"city": "Paris"}, {"city": "Oslo, Norway"}]
    assert result.finish_reason == "tool_calls"
    sent = fake.last_body
    assert sent["thinking"] == {"type": "enabled", "budget_tokens": 4000}
    assert sent["tools"][0]["input_schema"]["required"] == ["city"]


def test_a_whole_answer_with_tool_calls_carries_them_as_json_strings(fake: FakeAnthropic) -> None:
    fake.reply = ""
    fake.tool_calls = [{"name": "get_weather", "input": {"city": "Paris"}}]
    result = run(lambda: engine_for(fake).chat(ask(tools=[WEATHER_TOOL]), SONNET))
    assert result.text == "" and result.finish_reason == "tool_calls"
    assert result.tool_calls[0].id.startswith("toolu_01")
    assert json.loads(result.tool_calls[0].arguments) == {"city": "Paris"}


def test_an_openai_tool_round_trip_is_accepted_by_anthropic(fake: FakeAnthropic) -> None:
    request = ChatRequest(model="sonnet", tools=[WEATHER_TOOL], messages=[
        {"role": "user", "content": "Weather in Paris and Oslo?"},
        {"role": "assistant", "content": "", "tool_calls": [
            {"id": "call_1", "type": "function",
             "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}},
            {"id": "call_2", "type": "function",
             "function": {"name": "get_weather", "arguments": '{"city": "Oslo"}'}}]},
        {"role": "tool", "tool_call_id": "call_1", "content": "18C"},
        {"role": "tool", "tool_call_id": "call_2", "content": ""},
        {"role": "user", "content": "Which is warmer?"}])
    result = run(lambda: engine_for(fake).chat(request, SONNET))
    assert result.text == "Hello! How can I help you today?"
    turns = fake.last_body["messages"]
    assert [t["role"] for t in turns] == ["user", "assistant", "user"]
    assert [b["type"] for b in turns[1]["content"]] == ["tool_use", "tool_use"]
    assert [b["type"] for b in turns[2]["content"]] == ["tool_result", "tool_result", "text"]


def test_a_stop_sequence_ends_the_answer_and_is_reported(fake: FakeAnthropic) -> None:
    engine = engine_for(fake)
    whole = run(lambda: engine.chat(ask(stop=[" help"]), SONNET))
    events = run(lambda: drain(engine.chat_stream(ask(stop=[" help"]), SONNET)))
    assert whole.text == collect_chat(events).text == "Hello! How can I"
    assert (whole.finish_reason, whole.stop_sequence) == ("stop", " help")
    assert Finish(reason="stop", stop_sequence=" help") in events
    assert fake.last_body["stop_sequences"] == [" help"]


def test_it_reports_a_length_finish_at_max_tokens(fake: FakeAnthropic) -> None:
    events = run(lambda: drain(engine_for(fake).chat_stream(ask(max_tokens=3), SONNET)))
    result = collect_chat(events)
    assert result.text == "Hello! How can"
    assert result.finish_reason == "length"
    assert fake.last_body["max_tokens"] == 3


@pytest.mark.parametrize("older_server", [False, True])
def test_prompt_tokens_include_those_read_from_the_cache(fake: FakeAnthropic,
                                                         older_server: bool) -> None:
    fake.cache_read_tokens = 10
    fake.delta_usage_output_only = older_server
    engine = engine_for(fake)
    whole = run(lambda: engine.chat(ask(), SONNET))
    events = run(lambda: drain(engine.chat_stream(ask(), SONNET)))
    assert whole.usage == events[-1] == Usage(prompt_tokens=15, completion_tokens=7,
                                              cached_tokens=10)


def test_it_counts_tokens_with_anthropics_endpoint_as_a_chat_would_bill_them(
        fake: FakeAnthropic) -> None:
    engine = engine_for(fake)
    request = ask(tools=[WEATHER_TOOL], max_tokens=500, temperature=0.3, stop=["x"])
    count = run(lambda: engine.count_tokens(request, SONNET))
    sent = fake.last_request
    assert sent.path == "/v1/messages/count_tokens" and sent.headers["x-api-key"] == KEY
    assert set(sent.body) == {"model", "messages", "system", "tools"}
    assert count == run(lambda: engine.chat(request, SONNET)).usage.prompt_tokens


def test_it_completes_a_prompt_as_one_user_message(fake: FakeAnthropic) -> None:
    engine = engine_for(fake)
    request = CompletionRequest(model="m", prompt="Once upon a time", max_tokens=50, echo=True)
    whole = run(lambda: engine.complete(request, SONNET))
    assert fake.last_body["messages"] == [
        {"role": "user", "content": [{"type": "text", "text": "Once upon a time"}]}]
    events = run(lambda: drain(engine.complete_stream(request, SONNET)))
    assert whole.text == "Once upon a timeHello! How can I help you today?"
    assert whole.text == "".join(e.text for e in events if isinstance(e, TextDelta))
    assert whole.usage == events[-1] == Usage(prompt_tokens=12, completion_tokens=7)
    with pytest.raises(InvalidRequest):
        run(lambda: engine.complete(CompletionRequest(model="m", prompt=[[1, 2, 3]]), SONNET))


def test_it_does_not_offer_embeddings(fake: FakeAnthropic) -> None:
    with pytest.raises(EngineRejected, match="does not offer embeddings") as caught:
        run(lambda: engine_for(fake).embed(EmbeddingRequest(model="m", input=["x"]), SONNET))
    assert caught.value.status == 400
    assert fake.requests == []


# --- models and health ------------------------------------------------------------------------


def test_it_lists_every_model_across_pages_with_its_context_window(fake: FakeAnthropic) -> None:
    fake.max_page = 2
    models = run(lambda: engine_for(fake).list_models())
    assert [m.id for m in models] == list(fake.models)
    assert all(m.context_length == 200000 and m.loaded for m in models)
    assert [r.path for r in fake.requests] == [
        "/v1/models?limit=1000", f"/v1/models?limit=1000&after_id={fake.models[1]}"]


def test_it_is_healthy_while_the_api_answers_and_not_after(fake: FakeAnthropic) -> None:
    engine = engine_for(fake)
    assert run(engine.health) is True
    assert run(engine_for(fake, key="sk-ant-wrong").health) is False
    fake.stop()
    assert run(engine.health) is False


def test_it_reports_a_stopped_api_as_unreachable() -> None:
    engine = AnthropicEngine(f"http://127.0.0.1:{free_port()}", api_key=KEY, connect_timeout=2)
    with pytest.raises(EngineUnreachable):
        run(lambda: drain(engine.chat_stream(ask(), SONNET)))
    with pytest.raises(EngineUnreachable):
        run(engine.list_models)


# --- failures ---------------------------------------------------------------------------------


@pytest.mark.parametrize("call", ["chat", "chat_stream", "complete"])
def test_an_overloaded_api_is_an_engine_failure(fake: FakeAnthropic, call: str) -> None:
    fake.fail_status = 529
    engine = engine_for(fake)
    calls: dict[str, Callable[[], Awaitable[Any]]] = {
        "chat": lambda: engine.chat(ask(), SONNET),
        "chat_stream": lambda: drain(engine.chat_stream(ask(), SONNET)),
        "complete": lambda: engine.complete(CompletionRequest(model="m", prompt="x"), SONNET),
    }
    with pytest.raises(EngineFailed, match="Overloaded") as caught:
        run(calls[call])
    assert caught.value.extra["upstream_status"] == 529


def test_an_unknown_model_comes_back_as_not_found(fake: FakeAnthropic) -> None:
    with pytest.raises(EngineRejected, match="model: claude-nope") as caught:
        run(lambda: drain(engine_for(fake).chat_stream(ask(), "claude-nope")))
    assert caught.value.status == 404 and caught.value.kind == "not_found"


def test_an_error_event_mid_stream_fails_after_what_came_before(fake: FakeAnthropic) -> None:
    fake.error_after = 5  # message_start, ping, content_block_start, two text deltas
    seen, error = run(lambda: drain_until_failure(engine_for(fake).chat_stream(ask(), SONNET)))
    assert seen == [TextDelta("Hello!"), TextDelta(" How")]
    assert isinstance(error, EngineFailed)
    assert "overloaded_error: Overloaded" in error.message


def test_a_stream_cut_before_message_delta_is_an_engine_failure(fake: FakeAnthropic) -> None:
    fake.die_after = 6
    seen, error = run(lambda: drain_until_failure(engine_for(fake).chat_stream(ask(), SONNET)))
    assert len(seen) == 3 and not any(isinstance(e, Finish) for e in seen)
    assert isinstance(error, EngineFailed)


def test_it_ignores_event_types_it_does_not_know(fake: FakeAnthropic) -> None:
    fake.unknown_events = True
    events = run(lambda: drain(engine_for(fake).chat_stream(ask(), SONNET)))
    assert collect_chat(events).text == "Hello! How can I help you today?"


def test_it_closes_the_upstream_connection_when_the_caller_stops_reading(
        fake: FakeAnthropic) -> None:
    fake.reply = " ".join(f"word{i}" for i in range(300))
    fake.token_delay = 0.01

    async def read_one_then_leave() -> tuple[Event, bool]:
        stream = engine_for(fake).chat_stream(ask(), SONNET)
        first = await anext(stream)
        await stream.aclose()  # type: ignore[attr-defined]
        return first, await asyncio.to_thread(fake.client_disconnected.wait, 2)

    first, disconnected = run(read_one_then_leave)
    assert first == TextDelta("word0")
    assert disconnected, "the fake never saw the client go"
