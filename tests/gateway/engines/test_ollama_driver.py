"""The Ollama driver against a fake Ollama over real HTTP on 127.0.0.1."""

from __future__ import annotations

import asyncio
import math
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

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
from gateway.engines.ollama import OllamaEngine
from gateway.engines.registry import make_engine
from gateway.errors import EngineFailed, EngineRejected, EngineUnreachable
from tests.fakes.ollama_server import FakeOllama

T = TypeVar("T")
WEATHER_TOOL = {"type": "function", "function": {
    "name": "get_weather", "description": "Weather for a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                   "required": ["city"]}}}


def run(make: Callable[[], Awaitable[T]]) -> T:
    async def main() -> T:
        try:
            return await make()
        finally:
            await http.client().aclose()  # one client per loop; this loop ends here

    return asyncio.run(main())


def engine_for(fake: FakeOllama) -> OllamaEngine:
    return OllamaEngine(fake.url, timeout=10, connect_timeout=2)


def ask(text: str = "Why is the sky blue?", **fields: Any) -> ChatRequest:
    return ChatRequest(model="llama", messages=[{"role": "user", "content": text}], **fields)


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


def test_it_is_what_the_registry_builds_for_ollama(fake_ollama: FakeOllama) -> None:
    engine = make_engine("ollama", fake_ollama.url + "/")
    assert isinstance(engine, OllamaEngine)
    assert engine.endpoint == fake_ollama.url
    assert engine.start_hint == "ollama serve"


def test_it_lists_the_tags_and_marks_the_running_model_loaded(fake_ollama: FakeOllama) -> None:
    models = run(lambda: engine_for(fake_ollama).list_models())
    assert [(m.id, m.loaded) for m in models] == [
        ("llama3.2:1b", True), ("qwen3:0.6b", False), ("llava:7b", False),
        ("nomic-embed-text:latest", False)]
    assert models[0].details["details"]["family"] == "llama"


def test_it_is_healthy_while_ollama_answers_and_not_after(fake_ollama: FakeOllama) -> None:
    engine = engine_for(fake_ollama)
    assert run(engine.health) is True
    assert ("GET", "/api/version", None) in fake_ollama.requests
    fake_ollama.stop()
    assert run(engine.health) is False


def test_it_chats_in_one_response(fake_ollama: FakeOllama) -> None:
    result = run(lambda: engine_for(fake_ollama).chat(ask(temperature=0.2), "llama3.2:1b"))
    assert result.text == "Hello! How can I help you today?"
    assert result.finish_reason == "stop"
    assert result.usage.prompt_tokens == 15 and result.usage.completion_tokens == 7
    sent = fake_ollama.last_request
    assert sent["stream"] is False and sent["options"] == {"temperature": 0.2}
    assert sent["messages"] == [{"role": "user", "content": "Why is the sky blue?"}]


def test_it_streams_text_token_by_token(fake_ollama: FakeOllama) -> None:
    events = run(lambda: drain(engine_for(fake_ollama).chat_stream(ask(), "llama3.2:1b")))
    texts = [e.text for e in events if isinstance(e, TextDelta)]
    assert texts == ["Hello!", " How", " can", " I", " help", " you", " today?"]
    assert events[-2:] == [Finish(reason="stop"), Usage(prompt_tokens=15, completion_tokens=7)]
    assert fake_ollama.last_request["stream"] is True


def test_it_streams_tool_calls_with_json_string_arguments(fake_ollama: FakeOllama) -> None:
    fake_ollama.reply = ""
    fake_ollama.tool_calls = [{"name": "get_weather", "arguments": {"city": "Paris"}},
                              {"name": "get_weather", "arguments": {"city": "Oslo"}}]
    events = run(lambda: drain(engine_for(fake_ollama).chat_stream(
        ask("Weather in Paris and Oslo?", tools=[WEATHER_TOOL]), "llama3.2:1b")))
    calls = [e for e in events if isinstance(e, ToolCallDelta)]
    assert calls == [
        ToolCallDelta(index=0, id="call_0", name="get_weather", arguments='{"city": "Paris"}'),
        ToolCallDelta(index=1, id="call_1", name="get_weather", arguments='{"city": "Oslo"}')]
    assert Finish(reason="tool_calls") in events
    assert fake_ollama.last_request["tools"] == [WEATHER_TOOL]


def test_it_keeps_the_tool_call_ids_newer_ollama_sends(fake_ollama: FakeOllama) -> None:
    fake_ollama.tool_call_ids = True
    fake_ollama.tool_calls = [{"name": "get_weather", "arguments": {"city": "Paris"}}]
    result = run(lambda: engine_for(fake_ollama).chat(ask(tools=[WEATHER_TOOL]), "llama3.2:1b"))
    assert result.finish_reason == "tool_calls"
    assert result.tool_calls[0].id.startswith("call_") and result.tool_calls[0].id != "call_0"
    assert result.text == "Hello! How can I help you today?"


def test_it_sends_a_tool_result_back_under_the_tool_name(fake_ollama: FakeOllama) -> None:
    request = ChatRequest(model="llama", messages=[
        {"role": "user", "content": "Weather in Paris?"},
        {"role": "assistant", "content": None, "tool_calls": [{"id": "call_0", "type": "function",
         "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}}]},
        {"role": "tool", "tool_call_id": "call_0", "content": "22C"}], tools=[WEATHER_TOOL])
    run(lambda: engine_for(fake_ollama).chat(request, "llama3.2:1b"))
    sent = fake_ollama.last_request["messages"]
    assert sent[1]["tool_calls"] == [{"function": {"name": "get_weather",
                                                   "arguments": {"city": "Paris"}}}]
    assert sent[2] == {"role": "tool", "content": "22C", "tool_name": "get_weather"}


def test_it_forwards_images_as_bare_base64(fake_ollama: FakeOllama) -> None:
    request = ChatRequest(model="llava", messages=[{"role": "user", "content": [
        {"type": "text", "text": "what is in this image?"},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}}]}])
    run(lambda: drain(engine_for(fake_ollama).chat_stream(request, "llava:7b")))
    assert fake_ollama.last_request["messages"] == [
        {"role": "user", "content": "what is in this image?", "images": ["iVBORw0KGgo="]}]


def test_it_streams_thinking_as_reasoning_before_the_answer(fake_ollama: FakeOllama) -> None:
    fake_ollama.thinking = "Rayleigh scattering, surely."
    events = run(lambda: drain(engine_for(fake_ollama).chat_stream(ask(thinking=True),
                                                                   "qwen3:0.6b")))
    result = collect_chat(events)
    assert result.reasoning == "Rayleigh scattering, surely."
    assert isinstance(events[0], ReasoningDelta)
    assert fake_ollama.last_request["think"] is True


def test_it_drops_thinking_when_the_model_does_not_support_it(fake_ollama: FakeOllama) -> None:
    engine = engine_for(fake_ollama)
    result = run(lambda: engine.chat(ask(thinking=True), "llama3.2:1b"))
    events = run(lambda: drain(engine.chat_stream(ask(thinking=True), "llama3.2:1b")))
    assert result.text == collect_chat(events).text == "Hello! How can I help you today?"
    posts = [body for method, _, body in fake_ollama.requests if method == "POST"]
    assert [body.get("think") for body in posts] == [True, None, True, None]


def test_it_reports_a_length_finish_at_max_tokens(fake_ollama: FakeOllama) -> None:
    events = run(lambda: drain(engine_for(fake_ollama).chat_stream(ask(max_tokens=3),
                                                                   "llama3.2:1b")))
    result = collect_chat(events)
    assert result.text == "Hello! How can"
    assert result.finish_reason == "length"
    assert fake_ollama.last_request["options"] == {"num_predict": 3}


def test_it_completes_a_raw_prompt_whole_and_streamed(fake_ollama: FakeOllama) -> None:
    engine = engine_for(fake_ollama)
    request = CompletionRequest(model="llama", prompt="Once upon a time", max_tokens=50)
    whole = run(lambda: engine.complete(request, "llama3.2:1b"))
    assert fake_ollama.last_request == {"model": "llama3.2:1b", "prompt": "Once upon a time",
                                        "raw": True, "stream": False,
                                        "options": {"num_predict": 50}}
    events = run(lambda: drain(engine.complete_stream(request, "llama3.2:1b")))
    assert whole.text == "".join(e.text for e in events if isinstance(e, TextDelta))
    assert whole.usage == events[-1] == Usage(prompt_tokens=4, completion_tokens=7)


def test_it_echoes_the_prompt_itself_because_ollama_cannot(fake_ollama: FakeOllama) -> None:
    engine = engine_for(fake_ollama)
    request = CompletionRequest(model="llama", prompt="Say:", echo=True)
    whole = run(lambda: engine.complete(request, "llama3.2:1b"))
    events = run(lambda: drain(engine.complete_stream(request, "llama3.2:1b")))
    assert whole.text == "Say:Hello! How can I help you today?"
    assert events[0] == TextDelta("Say:")


def test_it_embeds_a_batch_of_texts(fake_ollama: FakeOllama) -> None:
    request = EmbeddingRequest(model="embed", input=["Why is the sky blue?", "Why is grass green?"])
    result = run(lambda: engine_for(fake_ollama).embed(request, "nomic-embed-text:latest"))
    assert len(result.vectors) == 2 and all(len(v) == 8 for v in result.vectors)
    assert math.isclose(sum(x * x for x in result.vectors[0]), 1.0, rel_tol=1e-5)
    assert result.vectors[0] != result.vectors[1]
    assert result.prompt_tokens == 9
    assert fake_ollama.last_request["input"] == ["Why is the sky blue?", "Why is grass green?"]


@pytest.mark.parametrize("call", ["chat", "chat_stream", "complete", "embed"])
def test_it_turns_a_500_into_engine_failed(fake_ollama: FakeOllama, call: str) -> None:
    fake_ollama.fail_status = 500
    engine = engine_for(fake_ollama)
    calls: dict[str, Callable[[], Awaitable[Any]]] = {
        "chat": lambda: engine.chat(ask(), "llama3.2:1b"),
        "chat_stream": lambda: drain(engine.chat_stream(ask(), "llama3.2:1b")),
        "complete": lambda: engine.complete(CompletionRequest(model="m", prompt="x"),
                                            "llama3.2:1b"),
        "embed": lambda: engine.embed(EmbeddingRequest(model="m", input=["x"]), "llama3.2:1b"),
    }
    with pytest.raises(EngineFailed, match="llama runner process has terminated") as caught:
        run(calls[call])
    assert caught.value.extra["upstream_status"] == 500


def test_it_reports_a_stopped_ollama_as_unreachable_with_the_start_hint() -> None:
    engine = OllamaEngine(f"http://127.0.0.1:{free_port()}", connect_timeout=2)
    with pytest.raises(EngineUnreachable) as caught:
        run(lambda: drain(engine.chat_stream(ask(), "llama3.2:1b")))
    assert caught.value.hint == "ollama serve"
    assert "ollama serve" in caught.value.message
    with pytest.raises(EngineUnreachable):
        run(engine.list_models)


def test_it_fails_after_some_events_when_ollama_dies_mid_stream(fake_ollama: FakeOllama) -> None:
    fake_ollama.die_after = 3
    seen, error = run(lambda: drain_until_failure(
        engine_for(fake_ollama).chat_stream(ask(), "llama3.2:1b")))
    assert seen == [TextDelta("Hello!"), TextDelta(" How"), TextDelta(" can")]
    assert isinstance(error, EngineFailed)


def test_it_fails_on_an_error_line_mid_stream(fake_ollama: FakeOllama) -> None:
    fake_ollama.error_after = 2
    seen, error = run(lambda: drain_until_failure(
        engine_for(fake_ollama).chat_stream(ask(), "llama3.2:1b")))
    assert len(seen) == 2
    assert isinstance(error, EngineFailed) and "mid-stream" in error.message
    assert "llama runner process has terminated" in error.message


def test_it_fails_a_stream_that_ends_without_its_done_line(fake_ollama: FakeOllama) -> None:
    fake_ollama.omit_done = True
    seen, error = run(lambda: drain_until_failure(
        engine_for(fake_ollama).complete_stream(CompletionRequest(model="m", prompt="x"),
                                                "llama3.2:1b")))
    assert len(seen) == 7 and not any(isinstance(e, Finish) for e in seen)
    assert isinstance(error, EngineFailed) and "ended the stream early" in error.message


def test_it_passes_an_unknown_model_back_as_a_rejection(fake_ollama: FakeOllama) -> None:
    engine = engine_for(fake_ollama)
    with pytest.raises(EngineRejected, match='model "nope:1b" not found') as caught:
        run(lambda: drain(engine.chat_stream(ask(), "nope:1b")))
    assert caught.value.status == 404 and caught.value.kind == "not_found"
    with pytest.raises(EngineRejected) as caught:
        run(lambda: engine.chat(ask(), "nomic-embed-text:latest"))
    assert caught.value.status == 400 and "does not support chat" in caught.value.message


def test_it_closes_the_upstream_connection_when_the_caller_stops_reading(
        fake_ollama: FakeOllama) -> None:
    fake_ollama.reply = " ".join(f"word{i}" for i in range(300))
    fake_ollama.token_delay = 0.01

    async def read_one_then_leave() -> tuple[Event, bool]:
        stream = engine_for(fake_ollama).chat_stream(ask(), "llama3.2:1b")
        first = await anext(stream)
        await stream.aclose()  # type: ignore[attr-defined]
        # Wait with the loop and its shared client still alive, as in a running gateway.
        return first, await asyncio.to_thread(fake_ollama.client_disconnected.wait, 2)

    first, disconnected = run(read_one_then_leave)
    assert first == TextDelta("word0")
    assert disconnected, "the fake never saw the client go"
