"""Golden-file tests for the pure Anthropic translation: client bodies -> canonical requests ->
upstream engine bodies, recorded canonical event streams -> Anthropic SSE bytes (read back by the
`anthropic` SDK itself), whole answers -> Anthropic messages, and invalid bodies -> errors that
name the field.

Each case lives under golden/anthropic/. Inputs are written by hand from what real clients send
(protocols.md §0) or recorded from engines; the expected side is checked in. After an intended
change, regenerate it with `UPDATE_GOLDEN=1 .venv/bin/pytest tests/gateway/test_anthropic_golden.py`,
then read the diff."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

import anthropic
import pytest

from gateway.canonical import (
    TextDelta,
    Usage,
    collect_chat,
)
from gateway.dialects import anthropic_errors, anthropic_parse, anthropic_render
from gateway.engines import openai_wire
from gateway.errors import InvalidRequest
from tests.gateway.anthropic_golden_support import (
    ANTHROPIC_ONLY,
    GOLDEN,
    MSG_ID,
    cases,
    keys_anywhere,
    request_case,
    result_from,
    sdk_client,
    sdk_final_message,
    sse_events,
    stream_case,
)
from tests.gateway.test_openai_golden import UPDATE, _dumps, check_json, check_text, load


@pytest.mark.parametrize("path", cases("request_*.json"))
def test_it_reads_each_client_request_as_the_stored_canonical_request(path: Path) -> None:
    _, request = request_case(path)
    check_json(path, "canonical", asdict(request))


@pytest.mark.parametrize("path", [case for case in cases("request_*.json")
                                  if not load(case.values[0]).get("count_only")])
def test_it_sends_the_engine_the_stored_body_for_each_client_request(path: Path) -> None:
    _, request = request_case(path)
    check_json(path, "upstream", openai_wire.chat_body(request, request.model,
                                                       stream=request.stream))


def upstream_bodies() -> list[tuple[str, dict[str, Any], dict[str, Any]]]:
    return [(path.name, load(path)["client"], load(path)["upstream"])
            for path in sorted(GOLDEN.glob("request_*.json")) if "upstream" in load(path)]


def test_no_anthropic_only_field_or_signature_reaches_an_engine() -> None:
    for name, _, upstream in upstream_bodies():
        assert not keys_anywhere(upstream) & ANTHROPIC_ONLY, name
        assert "$schema" not in json.dumps([t["function"]["parameters"]
                                            for t in upstream.get("tools", [])]), name
        assert "EuYB" not in json.dumps(upstream) and "EqoB" not in json.dumps(upstream), name


def test_the_billing_line_is_dropped_and_a_mid_conversation_system_kept_in_place() -> None:
    for name, _, upstream in upstream_bodies():
        assert "x-anthropic-billing-header" not in json.dumps(upstream), name
    upstream = load(GOLDEN / "request_claude_code_turn.json")["upstream"]
    assert [m["role"] for m in upstream["messages"]] == [
        "system", "user", "assistant", "system", "user"]
    assert upstream["messages"][3]["content"] == (
        "The user has switched to plan mode. Do not edit files.")
    assert upstream["messages"][0]["content"].startswith("You are Claude Code")


def test_every_tool_result_follows_the_assistant_turn_that_called_it() -> None:
    for name, _, upstream in upstream_bodies():
        messages = upstream["messages"]
        for i, message in enumerate(messages):
            if message["role"] != "tool":
                continue
            before = i - 1
            while messages[before]["role"] == "tool":
                before -= 1
            called = [c["id"] for c in messages[before].get("tool_calls", [])]
            assert message["tool_call_id"] in called, (name, i)


def test_a_failed_tool_and_an_image_in_a_tool_result_both_reach_the_engine() -> None:
    messages = load(GOLDEN / "request_tool_round_trip.json")["upstream"]["messages"]
    assert messages[3] == {"role": "tool", "tool_call_id": "toolu_01A9q2BzV4mHc8JxL3nP5rTw",
                           "content": "Error: Exit code 1\nFAILED tests/test_login.py::"
                                      "test_login - AssertionError"}
    assert [m["role"] for m in messages[4:]] == ["assistant", "tool", "tool", "user"]
    image, words = messages[-1]["content"]
    assert image["image_url"]["url"].startswith("data:image/png;base64,iVBORw0KGgo")
    assert words == {"type": "text", "text": "what's wrong?"}
    assert json.loads(messages[4]["tool_calls"][1]["function"]["arguments"]) == {}


def test_tool_choice_maps_to_openais_names() -> None:
    expected = {"any": ("required", None), "auto": ("auto", False), "none": ("none", None),
                "tool": ({"type": "function", "function": {"name": "get_weather"}}, False)}
    for kind, (choice, parallel) in expected.items():
        upstream = load(GOLDEN / f"request_tool_choice_{kind}.json")["upstream"]
        assert upstream["tool_choice"] == choice, kind
        assert upstream.get("parallel_tool_calls") is parallel, kind
    auto = load(GOLDEN / "request_tool_choice_auto.json")["upstream"]
    assert [t["function"]["name"] for t in auto["tools"]] == ["get_weather"]  # no server tool


def test_sampling_stops_and_thinking_switches_reach_the_engine() -> None:
    sampling = load(GOLDEN / "request_sampling.json")["upstream"]
    assert (sampling["temperature"], sampling["top_p"], sampling["top_k"]) == (0.7, 0.95, 40)
    assert sampling["stop"] == ["\n\nHuman:", "</answer>"]
    assert sampling["chat_template_kwargs"] == {"enable_thinking": False}
    assert sampling["user"] == "user-7f3a"
    enabled = load(GOLDEN / "request_thinking_echo.json")["upstream"]
    assert enabled["chat_template_kwargs"] == {"enable_thinking": True}
    adaptive = load(GOLDEN / "request_claude_code_turn.json")["upstream"]
    assert "chat_template_kwargs" not in adaptive  # adaptive: the engine's own default


def test_a_structured_output_request_becomes_a_json_schema_response_format() -> None:
    case = load(GOLDEN / "request_title_structured_output.json")
    schema = case["client"]["output_config"]["format"]["schema"]
    assert case["upstream"]["response_format"] == {
        "type": "json_schema", "json_schema": {"name": "output", "schema": schema}}
    assert "tools" not in case["upstream"]  # tools: [] sends none


def test_a_streaming_request_asks_the_engine_for_usage() -> None:
    for name, client, upstream in upstream_bodies():
        assert upstream["stream"] is bool(client.get("stream")), name
        assert ("stream_options" in upstream) is upstream["stream"], name
        if upstream["stream"]:
            assert upstream["stream_options"] == {"include_usage": True}, name


# --- streams ----------------------------------------------------------------------------------


@pytest.mark.parametrize("path", cases("stream_*.json"))
def test_it_frames_each_recorded_stream_as_the_stored_sse_bytes(path: Path) -> None:
    _, _, raw = stream_case(path)
    check_text(path.with_suffix(".sse"), raw.decode())


@pytest.mark.parametrize("path", cases("stream_*.json"))
def test_the_sdk_accumulates_each_stream_into_the_stored_message(path: Path) -> None:
    _, _, raw = stream_case(path)
    check_json(path, "sdk_message", sdk_final_message(raw))


@pytest.mark.parametrize("path", cases("stream_*.json"))
def test_every_frame_names_its_event_and_the_stream_has_anthropics_order(path: Path) -> None:
    _, _, raw = stream_case(path)
    events = sse_events(raw)
    assert all(data["type"] == name for name, data in events)
    names = [name for name, _ in events]
    assert names[:2] == ["message_start", "ping"] and names.count("message_start") == 1
    assert names[-2:] == ["message_delta", "message_stop"] and names.count("message_delta") == 1
    start = events[0][1]["message"]
    assert start["content"] == [] and start["stop_reason"] is None
    assert set(start["usage"]) == {"input_tokens", "output_tokens", "cache_creation_input_tokens",
                                   "cache_read_input_tokens"}
    assert start["usage"]["input_tokens"] > 0


@pytest.mark.parametrize("path", cases("stream_*.json"))
def test_blocks_are_indexed_from_zero_without_gaps_and_each_is_closed(path: Path) -> None:
    _, _, raw = stream_case(path)
    open_block: dict[str, Any] | None = None
    started = []
    allowed = {"text": "text_delta", "thinking": "thinking_delta", "tool_use": "input_json_delta"}
    for name, data in sse_events(raw):
        if name == "content_block_start":
            assert open_block is None, "a block started before the last one stopped"
            open_block = {"index": data["index"], "type": data["content_block"]["type"]}
            started.append(data["index"])
        elif name == "content_block_delta":
            assert open_block and data["index"] == open_block["index"]
            assert data["delta"]["type"] == allowed[open_block["type"]]
            assert any(v for k, v in data["delta"].items() if k != "type"), "an empty delta"
        elif name == "content_block_stop":
            assert open_block and data["index"] == open_block["index"]
            open_block = None
    assert open_block is None
    assert started == list(range(len(started))) and started


@pytest.mark.parametrize("path", cases("stream_*.json"))
def test_a_streaming_client_gets_what_a_whole_answer_would_have_said(path: Path) -> None:
    case, events, raw = stream_case(path)
    whole = anthropic_render.message(collect_chat(events), id=MSG_ID, model=case["model"])
    streamed = sdk_final_message(raw)
    if not any(isinstance(e, Usage) for e in events):
        whole.pop("usage")
        streamed.pop("usage")
    streamed.pop("stop_details", None)
    assert streamed == whole


def test_tool_calls_stream_as_tool_use_blocks_whose_input_the_sdk_parses() -> None:
    _, _, raw = stream_case(GOLDEN / "stream_text_then_two_tool_calls.json")
    message = sdk_final_message(raw)
    assert [b["type"] for b in message["content"]] == ["text", "tool_use", "tool_use"]
    assert message["content"][0]["text"] == "Let me check both cities."
    assert [(b["id"], b["name"], b["input"]) for b in message["content"][1:]] == [
        ("chatcmpl-tool-91e3b0c2d4", "get_weather", {"city": "Paris", "unit": "c"}),
        ("chatcmpl-tool-a7f2e6d815", "get_weather", {"city": "Tokyo", "unit": "c"})]
    assert message["stop_reason"] == "tool_use"


def test_a_tool_call_opening_with_empty_arguments_still_gets_its_whole_input() -> None:
    _, _, raw = stream_case(GOLDEN / "stream_tool_call_first_fragment_empty.json")
    events = sse_events(raw)
    assert events[2][1]["content_block"] == {"type": "tool_use", "id":
                                             "Xk7Qm2pR9sT4vW1yZ3aB5cD8eF0gH2jK",
                                             "name": "Bash", "input": {}}
    partials = [d["delta"]["partial_json"] for n, d in events if n == "content_block_delta"]
    assert partials == ['{"', "command", '":"ls -la', ' /tmp","description":"List /tmp"}']
    assert sdk_final_message(raw)["content"][0]["input"] == {"command": "ls -la /tmp",
                                                             "description": "List /tmp"}


def test_thinking_comes_first_in_its_own_block_and_never_inside_text() -> None:
    _, _, raw = stream_case(GOLDEN / "stream_thinking_then_text.json")
    thinking, text = sdk_final_message(raw)["content"]
    assert thinking == {"type": "thinking", "signature": "",
                        "thinking": "The user asks which is bigger: 9.11 or 9.9. 0.90 > 0.11."}
    assert text == {"type": "text", "text": "9.9 is bigger."}


def test_stop_reasons_follow_the_mapping_rules() -> None:
    expected = {"stream_text": ("end_turn", None), "stream_length": ("max_tokens", None),
                "stream_text_then_two_tool_calls": ("tool_use", None),
                "stream_stop_sequence": ("stop_sequence", "</answer>")}
    for stem, (reason, sequence) in expected.items():
        message = sdk_final_message(stream_case(GOLDEN / f"{stem}.json")[2])
        assert (message["stop_reason"], message["stop_sequence"]) == (reason, sequence), stem


def test_cached_prompt_tokens_are_reported_as_cache_reads_not_as_input() -> None:
    usage = sdk_final_message(stream_case(GOLDEN / "stream_cached_usage.json")[2])["usage"]
    assert usage == {"input_tokens": 40, "cache_read_input_tokens": 21504,
                     "cache_creation_input_tokens": 0, "output_tokens": 14}
    assert usage["input_tokens"] + usage["cache_read_input_tokens"] == 21544  # the prompt


def test_without_engine_usage_the_estimate_and_a_count_of_deltas_stand_in() -> None:
    usage = sdk_final_message(stream_case(GOLDEN / "stream_without_usage.json")[2])["usage"]
    assert (usage["input_tokens"], usage["output_tokens"]) == (42, 2)


def test_a_mid_stream_error_reaches_the_sdk_as_an_error_of_anthropics_type() -> None:
    streamer = anthropic_render.MessageStreamer(id=MSG_ID, model="m", input_estimate=5)
    raw = b"".join(streamer.start() + streamer.feed(TextDelta("Hel"))
                   + streamer.error("overloaded_error", "Overloaded"))
    assert raw.endswith(b'event: error\ndata: {"type":"error","error":{"type":'
                        b'"overloaded_error","message":"Overloaded"}}\n\n')
    with pytest.raises(anthropic.APIStatusError) as caught:
        sdk_final_message(raw)
    assert caught.value.body == {"type": "error", "error": {"type": "overloaded_error",
                                                            "message": "Overloaded"}}


# --- whole answers ----------------------------------------------------------------------------


def response_case(path: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    case = load(path)
    return case, anthropic_render.message(result_from(case["result"]), id=MSG_ID,
                                          model=case["model"])


@pytest.mark.parametrize("path", cases("response_*.json"))
def test_it_renders_each_whole_answer_as_the_stored_message(path: Path) -> None:
    _, body = response_case(path)
    check_json(path, "client", body)


@pytest.mark.parametrize("path", cases("response_*.json"))
def test_the_sdk_reads_each_whole_answer_with_its_blocks_and_usage(path: Path) -> None:
    case, body = response_case(path)
    client = sdk_client(200, json.dumps(body).encode(), "application/json")
    message: dict[str, Any] = client.messages.create(
        model="m", max_tokens=10, messages=[{"role": "user", "content": "hi"}]).to_dict()
    result = case["result"]
    kinds = [b["type"] for b in message["content"]]
    assert kinds.count("tool_use") == len(result["tool_calls"])
    assert ("thinking" in kinds) is bool(result["reasoning"])
    assert all(b["text"] for b in message["content"] if b["type"] == "text") or kinds == ["text"]
    usage, said = result["usage"], message["usage"]
    assert said["input_tokens"] + said["cache_read_input_tokens"] == usage["prompt_tokens"]
    assert said["output_tokens"] == usage["completion_tokens"]


def test_a_tool_call_cut_off_by_max_tokens_keeps_its_raw_arguments() -> None:
    _, body = response_case(GOLDEN / "response_length_truncated_tool_call.json")
    assert body["stop_reason"] == "max_tokens"
    assert body["content"] == [{"type": "tool_use", "id": "call_0", "name": "Edit", "input": {
        "_raw_arguments": '{"file_path": "/repo/app.py", "old_string": "def ma'}}]


# --- invalid bodies ---------------------------------------------------------------------------

ERRORS = GOLDEN / "parse_errors.json"


def _error_cases() -> list[Any]:
    return [pytest.param(i, id=case["name"]) for i, case in enumerate(load(ERRORS))]


def refusal(case: dict[str, Any]) -> InvalidRequest:
    with pytest.raises(InvalidRequest) as caught:
        anthropic_parse.parse_messages(case["body"], count_only=case.get("count_only", False))
    return caught.value


@pytest.mark.parametrize("index", _error_cases())
def test_each_invalid_body_is_refused_with_the_stored_error_naming_the_field(index: int) -> None:
    cases_ = load(ERRORS)
    case = cases_[index]
    error = refusal(case)
    actual: dict[str, Any] = {"param": error.param, "body": anthropic_errors.error_body(error)}
    if UPDATE:
        case["error"] = actual
        ERRORS.write_text(_dumps(cases_) + "\n")
    assert case["error"] is not None, f"{case['name']} has no golden error: run UPDATE_GOLDEN=1"
    assert actual == case["error"]
    assert actual["body"]["type"] == "error"
    assert actual["body"]["error"]["type"] == "invalid_request_error"


@pytest.mark.parametrize("index", _error_cases())
def test_an_errors_message_starts_with_the_field_it_names(index: int) -> None:
    error = refusal(load(ERRORS)[index])
    if error.param is None:
        assert error.message == "The request body must be a JSON object."
    else:
        assert error.message.startswith(error.param + ": ")
