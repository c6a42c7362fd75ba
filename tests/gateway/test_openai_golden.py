"""Golden-file tests for the pure OpenAI translation: client bodies -> upstream engine bodies,
recorded engine streams -> canonical events -> client chunks -> SSE bytes, whole engine answers
-> client answers, and invalid bodies -> OpenAI error bodies.

Each case lives under golden/openai/. Inputs are written by hand or recorded from an engine; the
expected side is checked in. After an intended change, regenerate the expected side with
`UPDATE_GOLDEN=1 .venv/bin/pytest tests/gateway/test_openai_golden.py`, then read the diff."""

from __future__ import annotations

import json
import os
from dataclasses import asdict
from pathlib import Path
from typing import Any

import pytest

from gateway.canonical import Event, collect_chat
from gateway.dialects import openai_errors, openai_parse, openai_render
from gateway.engines import openai_wire
from gateway.errors import InvalidRequest
from gateway.sse import DONE, frame

GOLDEN = Path(__file__).parent / "golden" / "openai"
UPDATE = os.environ.get("UPDATE_GOLDEN") == "1"
CHAT_ID, CREATED = "chatcmpl-golden", 1700000000  # stand-ins for the random id and the clock


# --- golden files ----------------------------------------------------------------------------


def _dumps(data: Any) -> str:
    """Indented JSON, but a list of objects (chunks, events, cases) keeps one item per line so
    a diff shows which chunk changed."""
    if isinstance(data, list) and data and all(isinstance(item, dict) for item in data):
        items = ",\n".join("  " + json.dumps(item, ensure_ascii=False) for item in data)
        return "[\n" + items + "\n]"
    if isinstance(data, dict):
        fields = [f"  {json.dumps(key)}: " + _dumps(value).replace("\n", "\n  ")
                  for key, value in data.items()]
        return "{\n" + ",\n".join(fields) + "\n}"
    return json.dumps(data, ensure_ascii=False, indent=2)


def load(path: Path) -> Any:
    return json.loads(path.read_text())


def check_json(path: Path, key: str, actual: Any) -> None:
    """`actual` must equal the golden value under `key`; with UPDATE_GOLDEN=1 it becomes it."""
    data = load(path)
    if UPDATE:
        data[key] = actual
        path.write_text(_dumps(data) + "\n")
    assert data[key] is not None, f"{path.name} has no golden {key!r}: run with UPDATE_GOLDEN=1"
    assert actual == data[key]


def check_text(path: Path, actual: str) -> None:
    if UPDATE:
        path.write_text(actual)
    assert path.exists(), f"{path.name} is missing: run with UPDATE_GOLDEN=1"
    assert actual == path.read_text()


def cases(pattern: str) -> list[Any]:
    return [pytest.param(path, id=path.name.split(".")[0]) for path in sorted(GOLDEN.glob(pattern))]


# --- the path a streamed answer takes through the gateway -------------------------------------


def upstream_chunks(raw: str) -> list[dict[str, Any]]:
    """The JSON chunks of a recorded engine SSE stream, read the way the driver reads them."""
    chunks = []
    for line in raw.splitlines():
        if not line.startswith("data:"):
            continue
        payload = line[5:].strip()
        if payload == "[DONE]":
            break
        chunks.append(json.loads(payload))
    return chunks


def stream_events(raw: str) -> list[Event]:
    return [event for chunk in upstream_chunks(raw) for event in openai_wire.chunk_events(chunk)]


def client_chunks(events: list[Event], *, model: str, include_usage: bool) -> list[dict[str, Any]]:
    """What chat_completions sends for `events`: every chunk the chunker gives, then its end."""
    chunker = openai_render.ChatChunker(id=CHAT_ID, model=model, created=CREATED,
                                        include_usage=include_usage)
    out = [chunk for event in events for chunk in chunker.feed(event)]
    return out + chunker.end()


def client_sse(chunks: list[dict[str, Any]]) -> bytes:
    return b"".join(frame(chunk) for chunk in chunks) + DONE


def as_dicts(events: list[Event]) -> list[dict[str, Any]]:
    return [{"type": type(event).__name__, **asdict(event)} for event in events]


def stream_case(path: Path) -> tuple[dict[str, Any], str, list[dict[str, Any]]]:
    """A stream case, its recorded engine stream, and the chunks a client gets for it."""
    case = load(path)
    raw = path.with_name(path.stem + ".upstream.sse").read_text()
    chunks = client_chunks(stream_events(raw), model=case["model"],
                           include_usage=case["include_usage"])
    return case, raw, chunks


def reassembled(deltas: list[dict[str, Any]]) -> dict[str, Any]:
    """What a client accumulates from a run of deltas: text, reasoning, and each tool call's
    arguments by index."""
    said: dict[str, Any] = {"content": "", "reasoning_content": "", "arguments": {}}
    for delta in deltas:
        said["content"] += delta.get("content") or ""
        said["reasoning_content"] += delta.get("reasoning_content") or ""
        for call in delta.get("tool_calls") or []:
            fragment = (call.get("function") or {}).get("arguments") or ""
            said["arguments"][call["index"]] = said["arguments"].get(call["index"], "") + fragment
    return said


def deltas(chunks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [choice["delta"] for chunk in chunks for choice in chunk["choices"]]


# --- requests ---------------------------------------------------------------------------------


@pytest.mark.parametrize("path", cases("request_*.json"))
def test_it_sends_the_engine_the_stored_body_for_each_client_request(path: Path) -> None:
    client = load(path)["client"]
    request = openai_parse.parse_chat(client)
    body = openai_wire.chat_body(request, request.model, stream=request.stream)
    check_json(path, "upstream", body)


def test_it_always_asks_a_streaming_engine_for_usage_and_never_a_whole_one() -> None:
    for path in GOLDEN.glob("request_*.json"):
        case = load(path)
        upstream = case["upstream"]
        assert upstream["stream"] is bool(case["client"].get("stream")), path.name
        if upstream["stream"]:
            assert upstream["stream_options"] == {"include_usage": True}, path.name
        else:
            assert "stream_options" not in upstream, path.name


def test_it_forwards_the_conversation_untouched() -> None:
    for path in GOLDEN.glob("request_*.json"):
        case = load(path)
        assert case["upstream"]["messages"] == case["client"]["messages"], path.name


# --- streams ----------------------------------------------------------------------------------


@pytest.mark.parametrize("path", cases("stream_*.json"))
def test_it_reads_each_recorded_engine_stream_as_the_stored_events(path: Path) -> None:
    _, raw, _ = stream_case(path)
    check_json(path, "events", as_dicts(stream_events(raw)))


@pytest.mark.parametrize("path", cases("stream_*.json"))
def test_it_renders_each_recorded_stream_as_the_stored_client_chunks(path: Path) -> None:
    _, _, chunks = stream_case(path)
    check_json(path, "chunks", chunks)


@pytest.mark.parametrize("path", cases("stream_*.json"))
def test_it_frames_each_recorded_stream_as_the_stored_sse_bytes(path: Path) -> None:
    _, _, chunks = stream_case(path)
    check_text(path.with_name(path.stem + ".client.sse"), client_sse(chunks).decode())


@pytest.mark.parametrize("path", cases("stream_*.json"))
def test_every_frame_is_one_data_line_of_compact_json_and_the_stream_ends_with_done(
        path: Path) -> None:
    _, _, chunks = stream_case(path)
    sse = client_sse(chunks)
    assert sse.endswith(b"\n\ndata: [DONE]\n\n")
    frames = sse.split(b"\n\n")
    assert frames[-1] == b"" and frames[-2] == b"data: [DONE]"
    for raw_frame, chunk in zip(frames[:-2], chunks, strict=True):
        assert raw_frame.startswith(b"data: {") and b"\n" not in raw_frame
        payload = raw_frame[len(b"data: "):].decode()
        assert payload == json.dumps(chunk, ensure_ascii=False, separators=(",", ":"))


@pytest.mark.parametrize("path", cases("stream_*.json"))
def test_the_client_stream_has_openais_shape(path: Path) -> None:
    case, _, chunks = stream_case(path)
    first, *middle = chunks
    assert first["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert all(c["id"] == CHAT_ID and c["object"] == "chat.completion.chunk" for c in chunks)
    assert all(c["model"] == case["model"] and c["created"] == CREATED for c in chunks)
    if case["include_usage"]:
        *middle, usage_chunk = middle
        assert usage_chunk["choices"] == [] and usage_chunk["usage"]["total_tokens"] > 0
        assert all(c["usage"] is None for c in [first, *middle])
    else:
        assert all("usage" not in c for c in chunks)
    finishes = [c["choices"][0]["finish_reason"] for c in [first, *middle]]
    assert finishes[:-1] == [None] * (len(finishes) - 1)
    assert finishes[-1] in ("stop", "length", "tool_calls", "content_filter")
    assert middle[-1]["choices"][0]["delta"] == {}


@pytest.mark.parametrize("path", cases("stream_*.json"))
def test_a_client_reassembling_the_stream_gets_what_the_engine_said(path: Path) -> None:
    _, raw, chunks = stream_case(path)
    heard = reassembled(deltas(chunks))
    assert heard == reassembled(deltas(upstream_chunks(raw)))
    assert heard["content"] or heard["arguments"]
    for arguments in heard["arguments"].values():
        assert isinstance(json.loads(arguments), dict)


def test_tool_calls_stream_with_their_id_type_and_name_first_then_argument_fragments() -> None:
    _, raw, chunks = stream_case(GOLDEN / "stream_vllm_tool_calls.json")
    calls = [call for delta in deltas(chunks) for call in delta.get("tool_calls", [])]
    heads = [call for call in calls if "id" in call]
    assert [(h["index"], h["type"], h["function"]["name"]) for h in heads] == [
        (0, "function", "get_weather"), (1, "function", "get_weather")]
    assert all(set(call) == {"index", "function"} and set(call["function"]) == {"arguments"}
               for call in calls if "id" not in call)
    folded = collect_chat(stream_events(raw))
    assert [json.loads(call.arguments) for call in folded.tool_calls] == [
        {"city": "Paris", "unit": "c"}, {"city": "Tokyo", "unit": "c"}]


def test_a_matched_stop_string_ends_the_stream_with_finish_reason_stop() -> None:
    _, raw, chunks = stream_case(GOLDEN / "stream_vllm_stop_string.json")
    assert collect_chat(stream_events(raw)).stop_sequence == "\nUser:"
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"


# --- whole answers ----------------------------------------------------------------------------


@pytest.mark.parametrize("path", cases("response_*.json"))
def test_it_renders_each_whole_engine_answer_as_the_stored_completion(path: Path) -> None:
    case = load(path)
    result = openai_wire.chat_result(case["upstream"])
    body = openai_render.chat_completion(result, id=CHAT_ID, model=case["model"], created=CREATED)
    check_json(path, "client", body)


# --- invalid bodies ---------------------------------------------------------------------------

PARSERS = {"chat": openai_parse.parse_chat, "completion": openai_parse.parse_completion,
           "embeddings": openai_parse.parse_embeddings}
ERRORS = GOLDEN / "parse_errors.json"


def _error_cases() -> list[Any]:
    return [pytest.param(i, id=case["name"]) for i, case in enumerate(load(ERRORS))]


@pytest.mark.parametrize("index", _error_cases())
def test_each_invalid_body_is_refused_with_the_stored_error_naming_the_field(index: int) -> None:
    cases_ = load(ERRORS)
    case = cases_[index]
    with pytest.raises(InvalidRequest) as caught:
        PARSERS[case["endpoint"]](case["body"])
    body = openai_errors.error_body(caught.value)["error"]
    if UPDATE:
        case["error"] = body
        ERRORS.write_text(_dumps(cases_) + "\n")
    assert case["error"] is not None, f"{case['name']} has no golden error: run UPDATE_GOLDEN=1"
    assert body == case["error"]
    assert body["type"] == "invalid_request_error"


@pytest.mark.parametrize("index", _error_cases())
def test_an_errors_param_is_exactly_the_field_its_message_names(index: int) -> None:
    case = load(ERRORS)[index]
    with pytest.raises(InvalidRequest) as caught:
        PARSERS[case["endpoint"]](case["body"])
    named = caught.value.message.split(" ")[0]
    if caught.value.param and named.startswith(caught.value.param):
        assert caught.value.param == named
