"""Golden-file tests for the pure Ollama translation: each file under golden/ollama/ holds one
case, the canonical side and the Ollama side (from Ollama's docs/api.md examples)."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

import pytest

from gateway.canonical import (
    ChatRequest,
    CompletionRequest,
    EmbeddingRequest,
    Event,
    collect_chat,
)
from gateway.engines import ollama_wire
from gateway.errors import InvalidRequest

GOLDEN = Path(__file__).parent / "golden" / "ollama"


def cases(prefix: str) -> list[Any]:
    return [pytest.param(json.loads(path.read_text()), id=path.stem)
            for path in sorted(GOLDEN.glob(f"{prefix}*.json"))]


def as_dicts(events: list[Event]) -> list[dict[str, Any]]:
    return [{"type": type(event).__name__, **asdict(event)} for event in events]


def stream_events(lines: list[dict[str, Any]]) -> list[Event]:
    state = ollama_wire.StreamState()
    events: list[Event] = []
    for line in lines:
        events += ollama_wire.line_events(line, state)
    return events


@pytest.mark.parametrize("case", cases("chat_request_"))
def test_it_translates_chat_requests_to_ollama_bodies(case: dict[str, Any]) -> None:
    request = ChatRequest(**case["canonical"])
    assert ollama_wire.chat_body(request, case["model"], stream=case["stream"]) == case["ollama"]


@pytest.mark.parametrize("case", cases("completion_request_"))
def test_it_translates_completion_requests_to_raw_generate_bodies(case: dict[str, Any]) -> None:
    request = CompletionRequest(**case["canonical"])
    body = ollama_wire.completion_body(request, case["model"], stream=case["stream"])
    assert body == case["ollama"]


@pytest.mark.parametrize("case", cases("embed_request"))
def test_it_translates_embedding_requests(case: dict[str, Any]) -> None:
    request = EmbeddingRequest(**case["canonical"])
    assert ollama_wire.embed_body(request, case["model"]) == case["ollama"]


@pytest.mark.parametrize("case", cases("chat_response_"))
def test_it_reads_whole_chat_answers(case: dict[str, Any]) -> None:
    assert asdict(ollama_wire.chat_result(case["ollama"])) == case["canonical"]


@pytest.mark.parametrize("case", cases("chat_stream_") + cases("generate_stream"))
def test_it_turns_ndjson_lines_into_events(case: dict[str, Any]) -> None:
    assert as_dicts(stream_events(case["ollama"])) == case["canonical"]


@pytest.mark.parametrize("case", cases("chat_stream_"))
def test_it_streams_what_the_whole_answer_would_say(case: dict[str, Any]) -> None:
    streamed = collect_chat(stream_events(case["ollama"]))
    lines = case["ollama"]
    whole = {**lines[-1], "message": {
        "role": "assistant",
        "content": "".join(line["message"].get("content") or "" for line in lines),
        "thinking": "".join(line["message"].get("thinking") or "" for line in lines),
        "tool_calls": [call for line in lines for call in line["message"].get("tool_calls") or []],
    }}
    assert streamed == ollama_wire.chat_result(whole)


@pytest.mark.parametrize("case", cases("generate_response"))
def test_it_reads_whole_generate_answers(case: dict[str, Any]) -> None:
    assert asdict(ollama_wire.completion_result(case["ollama"])) == case["canonical"]


@pytest.mark.parametrize("case", cases("embed_response"))
def test_it_reads_embeddings(case: dict[str, Any]) -> None:
    assert asdict(ollama_wire.embed_result(case["ollama"])) == case["canonical"]


@pytest.mark.parametrize("case", cases("models_"))
def test_it_lists_tags_and_marks_the_running_ones_loaded(case: dict[str, Any]) -> None:
    models = ollama_wire.models_from(case["ollama"]["tags"], case["ollama"]["ps"])
    assert [{"id": m.id, "loaded": m.loaded} for m in models] == case["canonical"]
    assert models[0].details["details"]["parameter_size"] == "13B"


def test_it_claims_no_model_is_loaded_when_ps_is_unknown() -> None:
    tags = {"models": [{"name": "llama3.2:1b"}, {"model": "qwen3:0.6b"}, {"size": 1}]}
    models = ollama_wire.models_from(tags, None)
    assert [(m.id, m.loaded) for m in models] == [("llama3.2:1b", False), ("qwen3:0.6b", False)]


def test_it_refuses_image_urls_that_ollama_cannot_fetch() -> None:
    request = ChatRequest(model="m", messages=[{"role": "user", "content": [
        {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}}]}])
    with pytest.raises(InvalidRequest, match="data: URLs"):
        ollama_wire.chat_body(request, "llava:7b", stream=False)


def test_it_refuses_content_parts_ollama_has_no_place_for() -> None:
    request = ChatRequest(model="m", messages=[{"role": "user", "content": [
        {"type": "input_audio", "input_audio": {"data": "AAAA", "format": "wav"}}]}])
    with pytest.raises(InvalidRequest, match="input_audio"):
        ollama_wire.chat_body(request, "llama3.2:1b", stream=False)


def test_it_refuses_tool_call_arguments_that_are_not_a_json_object() -> None:
    for arguments in ("{not json", "[1, 2]"):
        request = ChatRequest(model="m", messages=[{"role": "assistant", "content": "", "tool_calls": [
            {"id": "c1", "type": "function", "function": {"name": "f", "arguments": arguments}}]}])
        with pytest.raises(InvalidRequest, match="'f'"):
            ollama_wire.chat_body(request, "llama3.2:1b", stream=False)


def test_it_refuses_token_ids_and_batches_ollama_cannot_take() -> None:
    with pytest.raises(InvalidRequest):
        ollama_wire.embed_body(EmbeddingRequest(model="m", input=[[1, 2, 3]]), "nomic")
    for prompt in (["one", "two"], [[1, 2, 3]]):
        with pytest.raises(InvalidRequest):
            ollama_wire.completion_body(CompletionRequest(model="m", prompt=prompt), "llama",
                                        stream=False)


def test_it_asks_for_plain_json_when_a_schema_is_missing() -> None:
    request = ChatRequest(model="m", messages=[], response_format={"type": "json_schema",
                                                                    "json_schema": {"name": "x"}})
    assert ollama_wire.chat_body(request, "llama3.2:1b", stream=False)["format"] == "json"


def test_it_numbers_tool_calls_across_lines_of_one_stream() -> None:
    state = ollama_wire.StreamState()
    line = {"message": {"role": "assistant", "content": "", "tool_calls": [
        {"function": {"name": "a", "arguments": {}}}, {"function": {"name": "b", "arguments": {}}}]},
        "done": False}
    first = ollama_wire.line_events(line, state)
    second = ollama_wire.line_events(line, state)
    assert [(e.index, e.id) for e in first + second] == [  # type: ignore[union-attr]
        (0, "call_0"), (1, "call_1"), (2, "call_2"), (3, "call_3")]
    assert not state.done
