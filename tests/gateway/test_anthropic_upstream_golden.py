"""Golden-file tests for the reverse translation, used when the engine speaks only Anthropic's
Messages API: OpenAI client bodies -> canonical requests -> Anthropic bodies, whole Anthropic
messages -> canonical answers -> OpenAI completions, and recorded Anthropic streams -> canonical
events -> OpenAI chunks -> SSE bytes (read back by the `openai` SDK itself).

Each case lives under golden/anthropic_upstream/. Inputs are written by hand from Anthropic's
published wire format or from what real clients send; the expected side is checked in. After an
intended change, regenerate it with
`UPDATE_GOLDEN=1 .venv/bin/pytest tests/gateway/test_anthropic_upstream_golden.py`, then read the
diff."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

import httpx2
import openai
import pytest

from gateway.canonical import ChatRequest, Event, TextDelta, Usage, collect_chat
from gateway.dialects import anthropic_parse, anthropic_upstream, openai_parse, openai_render
from gateway.errors import EngineFailed
from gateway.sse import DONE, frame
from tests.fakes.anthropic_server import COUNT_FIELDS, MESSAGE_FIELDS
from tests.gateway.test_openai_golden import check_json, check_text, load

GOLDEN = Path(__file__).parent / "golden" / "anthropic_upstream"
CHAT_ID, CREATED = "chatcmpl-golden", 1700000000  # stand-ins for the random id and the clock


def cases(pattern: str, *, having: str | None = None) -> list[Any]:
    return [pytest.param(path, id=path.name.split(".")[0]) for path in sorted(GOLDEN.glob(pattern))
            if having is None or having in load(path)]


def as_dicts(events: list[Event]) -> list[dict[str, Any]]:
    return [{"type": type(event).__name__, **asdict(event)} for event in events]


# --- requests ---------------------------------------------------------------------------------


def canonical(case: dict[str, Any]) -> ChatRequest:
    """The canonical request for a case: from an OpenAI client (`client`) or from an Anthropic
    client routed through the canonical form (`anthropic_client`)."""
    if "anthropic_client" in case:
        return anthropic_parse.parse_messages(case["anthropic_client"])
    return openai_parse.parse_chat(case["client"])


def upstream_body(path: Path) -> dict[str, Any]:
    request = canonical(load(path))
    return anthropic_upstream.messages_body(request, request.model, stream=request.stream)


def upstream_bodies() -> list[tuple[str, dict[str, Any], dict[str, Any]]]:
    return [(path.name, load(path), load(path)["upstream"])
            for path in sorted(GOLDEN.glob("request_*.json"))]


@pytest.mark.parametrize("path", cases("request_*.json"))
def test_it_sends_anthropic_the_stored_body_for_each_client_request(path: Path) -> None:
    check_json(path, "upstream", upstream_body(path))


@pytest.mark.parametrize("path", cases("request_*.json", having="count_tokens"))
def test_it_counts_tokens_with_the_stored_body(path: Path) -> None:
    request = canonical(load(path))
    body = anthropic_upstream.count_tokens_body(request, request.model)
    check_json(path, "count_tokens", body)
    assert set(body) <= COUNT_FIELDS


def test_anthropic_only_ever_gets_fields_it_knows() -> None:
    for name, _, upstream in upstream_bodies():
        assert set(upstream) <= MESSAGE_FIELDS, (name, set(upstream) - MESSAGE_FIELDS)
        assert upstream["max_tokens"] >= 1, name
        assert 0 <= upstream.get("temperature", 0) <= 1, name


def test_every_system_and_developer_message_is_hoisted_into_system_in_order() -> None:
    for name, _, upstream in upstream_bodies():
        assert all(turn["role"] in ("user", "assistant") for turn in upstream["messages"]), name
    upstream = load(GOLDEN / "request_system_and_developer_hoisted.json")["upstream"]
    assert upstream["system"] == ("Act as an expert software developer.\n\nAlways reply with "
                                  "SEARCH/REPLACE blocks.\n\nThe files are read-only now.")
    assert [turn["role"] for turn in upstream["messages"]] == ["user", "assistant", "user"]
    assert [b["text"] for b in upstream["messages"][2]["content"]] == [
        "Now rename main to run.", "Actually, just explain it."]


def test_anthropic_never_gets_an_empty_text_block_or_an_empty_turn() -> None:
    for name, _, upstream in upstream_bodies():
        for turn in upstream["messages"]:
            assert turn["content"], name
            for block in turn["content"]:
                if block["type"] == "text":
                    assert block["text"], name
                if block["type"] == "tool_result":
                    assert block.get("content", "x"), name
    empty = load(GOLDEN / "request_empty_assistant_turns.json")["upstream"]["messages"]
    assert empty == [{"role": "user", "content": [{"type": "text", "text": "Hello"},
                                                  {"type": "text", "text": "Are you there?"}]}]


def test_turns_alternate_and_each_tool_use_is_answered_first_in_the_next_user_turn() -> None:
    for name, _, upstream in upstream_bodies():
        turns = upstream["messages"]
        assert all(a["role"] != b["role"] for a, b in zip(turns, turns[1:], strict=False)), name
        for i, turn in enumerate(turns):
            calls = [b["id"] for b in turn["content"] if b["type"] == "tool_use"]
            if not calls:
                continue
            answer = turns[i + 1]["content"]
            assert [b.get("tool_use_id") for b in answer[:len(calls)]] == calls, name


def test_a_tool_round_trip_becomes_tool_use_and_tool_result_blocks() -> None:
    turns = load(GOLDEN / "request_tool_round_trip.json")["upstream"]["messages"]
    assert turns[1]["content"] == [
        {"type": "tool_use", "id": "call_8Xk2pQ", "name": "read_file",
         "input": {"path": "README.md"}},
        {"type": "tool_use", "id": "call_9Ym3rR", "name": "list_dir", "input": {"path": "src"}}]
    assert turns[2]["content"] == [
        {"type": "tool_result", "tool_use_id": "call_8Xk2pQ",
         "content": "# Flock\nA self-hosted LLM gateway."},
        {"type": "tool_result", "tool_use_id": "call_9Ym3rR", "content": "main.py\n\nutil.py"},
        {"type": "text", "text": "Also check git."}]
    no_arguments, cut_off = turns[3]["content"]
    assert no_arguments["input"] == {}
    assert cut_off["input"] == {"_raw_arguments": '{"path": "src/ma'}
    assert turns[4]["content"][0] == {"type": "tool_result", "tool_use_id": "call_0Zn4sS"}


def test_tools_become_name_description_and_input_schema() -> None:
    tools = load(GOLDEN / "request_tool_round_trip.json")["upstream"]["tools"]
    assert tools[0] == {"name": "read_file", "description": "Read a file from the workspace.",
                        "input_schema": {"$schema": "https://json-schema.org/draft/2020-12/schema",
                                         "type": "object",
                                         "properties": {"path": {"type": "string"}},
                                         "required": ["path"], "additionalProperties": False}}
    assert tools[2] == {"name": "git_status",
                        "input_schema": {"type": "object", "properties": {}}}


def test_tool_choice_maps_to_anthropics_names() -> None:
    expected = {
        "request_tool_choice_required": {"type": "any"},
        "request_tool_choice_function": {"type": "tool", "name": "get_weather",
                                         "disable_parallel_tool_use": True},
        "request_tool_choice_none": {"type": "none"},
        "request_parallel_tool_calls_off": {"type": "auto", "disable_parallel_tool_use": True},
        "request_tool_choice_without_tools": None,
    }
    for stem, choice in expected.items():
        assert load(GOLDEN / f"{stem}.json")["upstream"].get("tool_choice") == choice, stem


def test_images_become_base64_or_url_sources() -> None:
    blocks = load(GOLDEN / "request_images.json")["upstream"]["messages"][0]["content"]
    assert [b["type"] for b in blocks] == ["text", "image", "image"]
    assert blocks[1]["source"]["type"] == "base64"
    assert blocks[1]["source"]["media_type"] == "image/jpeg"
    assert blocks[1]["source"]["data"].startswith("/9j/4AAQ") and "," not in blocks[1]["source"]["data"]
    assert blocks[2]["source"] == {
        "type": "url",
        "url": "https://upload.wikimedia.org/wikipedia/commons/a/a7/Camponotus_flavomarginatus_ant.jpg"}


def test_sampling_is_clamped_stops_renamed_and_a_max_tokens_supplied() -> None:
    upstream = load(GOLDEN / "request_sampling_and_stops.json")["upstream"]
    assert upstream["temperature"] == 1.0 and upstream["top_p"] == 0.9 and upstream["top_k"] == 40
    assert upstream["stop_sequences"] == ["\nUser:"]
    assert upstream["max_tokens"] == anthropic_upstream.DEFAULT_MAX_TOKENS == 4096
    assert upstream["metadata"] == {"user_id": "user-7f3a"}
    assert load(GOLDEN / "request_images.json")["upstream"]["max_tokens"] == 300


def test_thinking_gets_a_budget_below_max_tokens_and_drops_temperature() -> None:
    enabled = load(GOLDEN / "request_anthropic_thinking_enabled.json")["upstream"]
    assert enabled["thinking"] == {"type": "enabled", "budget_tokens": 8000}
    assert "temperature" not in enabled
    assert enabled["system"] == "Be precise."
    assert enabled["messages"][1]["content"] == [{"type": "text", "text": "No."}]
    disabled = load(GOLDEN / "request_anthropic_thinking_disabled.json")["upstream"]
    assert disabled["thinking"] == {"type": "disabled"} and disabled["temperature"] == 1.0
    assert disabled["stream"] is True and "tools" not in disabled


def test_a_json_schema_response_format_becomes_output_config_format() -> None:
    upstream = load(GOLDEN / "request_response_format_json_schema.json")["upstream"]
    assert upstream["output_config"] == {"format": {"type": "json_schema", "schema": {
        "type": "object", "properties": {"title": {"type": "string"}}, "required": ["title"],
        "additionalProperties": False}}}


# --- whole answers ----------------------------------------------------------------------------


@pytest.mark.parametrize("path", cases("response_*.json"))
def test_it_reads_each_whole_anthropic_message_as_the_stored_answer(path: Path) -> None:
    result = anthropic_upstream.message_result(load(path)["upstream"])
    check_json(path, "result", asdict(result))


@pytest.mark.parametrize("path", cases("response_*.json"))
def test_an_openai_client_gets_the_stored_completion_for_each_message(path: Path) -> None:
    case = load(path)
    result = anthropic_upstream.message_result(case["upstream"])
    body = openai_render.chat_completion(result, id=CHAT_ID, model=case["model"], created=CREATED)
    check_json(path, "client", body)


@pytest.mark.parametrize("path", cases("response_*.json"))
def test_prompt_tokens_count_the_cached_part_of_the_prompt_too(path: Path) -> None:
    usage = load(path)["upstream"]["usage"]
    result = anthropic_upstream.message_result(load(path)["upstream"])
    assert result.usage.prompt_tokens == (usage["input_tokens"]
                                          + usage.get("cache_read_input_tokens", 0)
                                          + usage.get("cache_creation_input_tokens", 0))
    assert result.usage.cached_tokens == usage.get("cache_read_input_tokens", 0)
    assert result.usage.completion_tokens == usage["output_tokens"]


def test_stop_reasons_become_openai_finish_reasons() -> None:
    expected = {"response_text_with_cache": ("stop", None),
                "response_stop_sequence": ("stop", "\nUser:"),
                "response_max_tokens": ("length", None),
                "response_context_window_exceeded": ("length", None),
                "response_thinking_and_tool_use": ("tool_calls", None),
                "response_refusal": ("content_filter", None)}
    for stem, (reason, sequence) in expected.items():
        result = anthropic_upstream.message_result(load(GOLDEN / f"{stem}.json")["upstream"])
        assert (result.finish_reason, result.stop_sequence) == (reason, sequence), stem


def test_thinking_becomes_reasoning_and_tool_use_input_becomes_a_json_string() -> None:
    result = anthropic_upstream.message_result(
        load(GOLDEN / "response_thinking_and_tool_use.json")["upstream"])
    assert result.reasoning.startswith("The user wants the weather")
    assert result.text == "I'll check both cities."
    assert [(c.id, json.loads(c.arguments)) for c in result.tool_calls] == [
        ("toolu_01A09q90qw90lq917835lq9", {"city": "Paris", "unit": "c"}),
        ("toolu_01B18r01rx01mr028946mr0", {"city": "Tokyo", "unit": "c"})]


def test_a_message_without_content_is_an_engine_failure() -> None:
    with pytest.raises(EngineFailed):
        anthropic_upstream.message_result({"type": "message", "role": "assistant"})


# --- streams ----------------------------------------------------------------------------------


def upstream_events(raw: str) -> list[dict[str, Any]]:
    """The JSON events of a recorded Anthropic stream, read the way the driver reads them."""
    return [json.loads(line[5:]) for line in raw.splitlines() if line.startswith("data:")]


def stream_events(raw: str) -> list[Event]:
    reader = anthropic_upstream.StreamReader()
    return [event for data in upstream_events(raw) for event in reader.feed(data)]


def stream_case(path: Path) -> tuple[dict[str, Any], str, list[Event], list[dict[str, Any]]]:
    case = load(path)
    raw = path.with_name(path.stem + ".upstream.sse").read_text()
    events = stream_events(raw)
    chunker = openai_render.ChatChunker(id=CHAT_ID, model=case["model"], created=CREATED,
                                        include_usage=case["include_usage"])
    chunks = [chunk for event in events for chunk in chunker.feed(event)] + chunker.end()
    return case, raw, events, chunks


def client_sse(chunks: list[dict[str, Any]]) -> bytes:
    return b"".join(frame(chunk) for chunk in chunks) + DONE


def anthropic_said(raw: str) -> dict[str, Any]:
    """What an Anthropic client would have reassembled: text, thinking, and tool inputs."""
    said: dict[str, Any] = {"text": "", "thinking": "", "tools": {}}
    tool_blocks = set()
    for data in upstream_events(raw):
        if data["type"] == "content_block_start" and data["content_block"]["type"] == "tool_use":
            tool_blocks.add(data["index"])
            said["tools"][data["index"]] = ""
        if data["type"] != "content_block_delta":
            continue
        delta = data["delta"]
        if delta["type"] == "text_delta":
            said["text"] += delta["text"]
        elif delta["type"] == "thinking_delta":
            said["thinking"] += delta["thinking"]
        elif delta["type"] == "input_json_delta" and data["index"] in tool_blocks:
            said["tools"][data["index"]] += delta["partial_json"]
    return said


def openai_sdk_completion(raw: bytes, tools: list[dict[str, Any]]) -> Any:
    def answer(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(200, headers={"content-type": "text/event-stream"}, content=raw)

    client = openai.OpenAI(api_key="sk-test", base_url="http://gateway.test/v1", max_retries=0,
                           http_client=httpx2.Client(transport=httpx2.MockTransport(answer)))
    with client.chat.completions.stream(model="m", messages=[{"role": "user", "content": "hi"}],
                                        tools=tools or openai.omit) as stream:  # type: ignore[arg-type]
        # The snapshot, not get_final_completion(), which raises on length and content_filter.
        return stream.until_done().current_completion_snapshot


@pytest.mark.parametrize("path", cases("stream_*.json"))
def test_it_reads_each_recorded_anthropic_stream_as_the_stored_events(path: Path) -> None:
    _, _, events, _ = stream_case(path)
    check_json(path, "events", as_dicts(events))


@pytest.mark.parametrize("path", cases("stream_*.json"))
def test_it_renders_each_recorded_stream_as_the_stored_openai_chunks(path: Path) -> None:
    _, _, _, chunks = stream_case(path)
    check_json(path, "chunks", chunks)


@pytest.mark.parametrize("path", cases("stream_*.json"))
def test_it_frames_each_recorded_stream_as_the_stored_sse_bytes(path: Path) -> None:
    _, _, _, chunks = stream_case(path)
    check_text(path.with_name(path.stem + ".client.sse"), client_sse(chunks).decode())


@pytest.mark.parametrize("path", cases("stream_*.json"))
def test_an_openai_client_reassembles_what_anthropic_said(path: Path) -> None:
    _, raw, events, chunks = stream_case(path)
    said, heard = anthropic_said(raw), collect_chat(events)
    assert heard.text == said["text"] and heard.reasoning == said["thinking"]
    assert [c.arguments for c in heard.tool_calls] == list(said["tools"].values())
    tools = [{"type": "function", "function": {"name": c.name, "parameters": {"type": "object"}}}
             for c in heard.tool_calls]
    completion = openai_sdk_completion(client_sse(chunks), tools)
    message = completion.choices[0].message
    assert (message.content or "") == said["text"]
    assert [json.loads(c.function.arguments) for c in message.tool_calls or []] == [
        json.loads(arguments) for arguments in said["tools"].values()]
    assert completion.choices[0].finish_reason == heard.finish_reason


@pytest.mark.parametrize("path", cases("stream_*.json"))
def test_each_stream_ends_with_one_finish_and_then_its_usage(path: Path) -> None:
    _, raw, events, _ = stream_case(path)
    kinds = [type(event).__name__ for event in events]
    assert kinds[-2:] == ["Finish", "Usage"] and kinds.count("Finish") == 1
    start = upstream_events(raw)[0]["message"]["usage"]
    usage = events[-1]
    assert isinstance(usage, Usage)
    assert usage.prompt_tokens == start["input_tokens"] + start.get("cache_read_input_tokens", 0)
    assert usage.cached_tokens == start.get("cache_read_input_tokens", 0)
    assert usage.completion_tokens == upstream_events(raw)[-2]["usage"]["output_tokens"]


def test_tool_use_blocks_are_numbered_as_openai_tool_calls_from_zero() -> None:
    _, _, events, chunks = stream_case(GOLDEN / "stream_two_tool_uses.json")
    heads = [call for chunk in chunks for choice in chunk["choices"]
             for call in choice["delta"].get("tool_calls", []) if "id" in call]
    assert [(h["index"], h["id"], h["function"]["name"]) for h in heads] == [
        (0, "toolu_01Ab", "get_weather"), (1, "toolu_01Cd", "get_weather")]
    assert [json.loads(c.arguments) for c in collect_chat(events).tool_calls] == [
        {"city": "Paris"}, {"city": "Tokyo"}]


def test_thinking_streams_as_reasoning_and_its_signature_is_not_shown() -> None:
    _, _, events, chunks = stream_case(GOLDEN / "stream_thinking_text_tool_use.json")
    result = collect_chat(events)
    assert result.reasoning == "The user wants the weather. I'll call get_weather."
    assert "EqQBCgIYAhIM" not in json.dumps(chunks)
    assert json.loads(result.tool_calls[0].arguments) == {"city": "San Francisco, CA",
                                                          "unit": "fahrenheit"}


def test_events_it_does_not_know_are_ignored() -> None:
    _, _, events, _ = stream_case(GOLDEN / "stream_unknown_events.json")
    result = collect_chat(events)
    assert result.text == "Per the docs, it is sunny."
    assert result.tool_calls == [] and result.reasoning == ""


def test_an_error_event_mid_stream_fails_the_engine_after_what_it_said() -> None:
    raw = (GOLDEN / "error_overloaded.upstream.sse").read_text()
    reader = anthropic_upstream.StreamReader()
    seen: list[Event] = []
    with pytest.raises(EngineFailed, match="overloaded_error: Overloaded") as caught:
        for data in upstream_events(raw):
            seen += reader.feed(data)
    assert seen == [TextDelta("Hel")]
    assert caught.value.extra["error_type"] == "overloaded_error"
