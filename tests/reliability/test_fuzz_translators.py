"""Hostile input against the pure translators: whatever a client sends, parsing either yields a
canonical request or raises InvalidRequest (a 400 in the caller's dialect), never anything that
would become a 500; and what engines send back never crashes the renderers."""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.canonical import ChatRequest
from gateway.dialects import anthropic_parse, openai_parse
from gateway.dialects.anthropic_render import MessageStreamer
from gateway.dialects.openai_render import ChatChunker
from gateway.engines import ollama_wire, openai_wire
from gateway.errors import EngineFailed, InvalidRequest

pytestmark = pytest.mark.once  # no database or queue in what it checks: one pass

JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-10**6, 10**6) | st.floats(allow_nan=False)
    | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=25)

ROLES = st.sampled_from(["system", "user", "assistant", "tool", "developer", "bogus", 3, None])
BLOCK_TYPES = st.sampled_from(["text", "image", "image_url", "tool_use", "tool_result", "thinking",
                               "document", "redacted_thinking", "weird", None, 7])
BLOCK = st.fixed_dictionaries({"type": BLOCK_TYPES}, optional={
    "text": JSON, "source": JSON, "image_url": JSON, "id": JSON, "name": JSON, "input": JSON,
    "tool_use_id": JSON, "content": JSON, "is_error": JSON, "cache_control": JSON})
CONTENT = st.text(max_size=30) | st.lists(BLOCK, max_size=4) | JSON
MESSAGE = st.fixed_dictionaries({"role": ROLES, "content": CONTENT}, optional={
    "tool_calls": JSON, "tool_call_id": JSON, "name": JSON})
BODY = st.fixed_dictionaries({}, optional={
    "model": st.text(max_size=10) | JSON, "messages": st.lists(MESSAGE, max_size=5) | JSON,
    "max_tokens": JSON | st.integers(-5, 100000), "stream": JSON, "system": CONTENT,
    "tools": st.lists(JSON, max_size=3) | JSON, "tool_choice": JSON, "temperature": JSON,
    "top_p": JSON, "top_k": JSON, "stop": JSON, "stop_sequences": JSON, "stream_options": JSON,
    "response_format": JSON, "metadata": JSON, "thinking": JSON, "output_config": JSON,
    "n": JSON, "seed": JSON, "user": JSON, "prompt": JSON, "input": JSON})

FUZZ = settings(max_examples=1000, deadline=None, suppress_health_check=list(HealthCheck))


def _accepts_or_400(parse, body) -> ChatRequest | None:
    try:
        return parse(body)
    except InvalidRequest as exc:
        assert exc.status == 400 and exc.message
        return None


@FUZZ
@given(BODY)
def test_openai_bodies_parse_or_are_a_400(body):
    request = _accepts_or_400(openai_parse.parse_chat, body)
    if request is not None:
        json.dumps(openai_wire.chat_body(request, "m", stream=request.stream))
        try:
            json.dumps(ollama_wire.chat_body(request, "m", stream=request.stream))
        except InvalidRequest:
            pass  # a part Ollama cannot take, refused with a 400


@FUZZ
@given(BODY)
def test_anthropic_bodies_parse_or_are_a_400(body):
    request = _accepts_or_400(anthropic_parse.parse_messages, body)
    if request is not None:
        json.dumps(openai_wire.chat_body(request, "m", stream=True))


@FUZZ
@given(BODY)
def test_completion_and_embedding_bodies_parse_or_are_a_400(body):
    _accepts_or_400(openai_parse.parse_completion, body)
    _accepts_or_400(openai_parse.parse_embeddings, body)


CHUNK = st.fixed_dictionaries({}, optional={
    "choices": st.lists(st.fixed_dictionaries({}, optional={
        "index": JSON | st.just(0), "delta": JSON | st.fixed_dictionaries({}, optional={
            "content": JSON, "reasoning_content": JSON, "tool_calls": JSON}),
        "finish_reason": JSON, "text": JSON, "stop_reason": JSON}), max_size=2) | JSON,
    "usage": JSON})


@FUZZ
@given(st.lists(CHUNK, max_size=6))
def test_whatever_an_engine_streams_renders_in_both_dialects_or_fails_cleanly(chunks):
    chunker = ChatChunker(id="chatcmpl-x", model="m", created=0, include_usage=True)
    streamer = MessageStreamer(id="msg_x", model="m", input_estimate=1)
    streamer.start()
    try:
        for chunk in chunks:
            for event in openai_wire.chunk_events(chunk):
                chunker.feed(event)
                streamer.feed(event)
    except EngineFailed:
        return
    except (TypeError, AttributeError, ValueError, KeyError) as exc:
        raise AssertionError(f"engine chunk crashed the translation: {exc!r}") from exc
    json.dumps(chunker.end())
    b"".join(streamer.end()).decode()


OLLAMA_LINE = st.fixed_dictionaries({}, optional={
    "message": JSON | st.fixed_dictionaries({}, optional={
        "role": JSON, "content": JSON, "thinking": JSON, "tool_calls": JSON}),
    "done": JSON, "done_reason": JSON, "prompt_eval_count": JSON, "eval_count": JSON,
    "response": JSON, "error": JSON})


@FUZZ
@given(st.lists(OLLAMA_LINE, max_size=6))
def test_whatever_ollama_streams_translates_or_fails_cleanly(lines):
    state = ollama_wire.StreamState()
    try:
        for line in lines:
            ollama_wire.line_events(line, state)
    except EngineFailed:
        return
    except (TypeError, AttributeError, ValueError, KeyError) as exc:
        raise AssertionError(f"an Ollama line crashed the translation: {exc!r}") from exc
