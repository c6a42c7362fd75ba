"""What Claude Code really sends (protocols.md §0), over raw HTTP, and the SSE it must get back."""

from __future__ import annotations

import json

import httpx

CLAUDE_CODE_HEADERS = {
    "anthropic-version": "2023-06-01",
    "anthropic-beta": "claude-code-20250219,interleaved-thinking-2025-05-14,"
                      "context-management-2025-06-27,mid-conversation-system-2026-04-07",
    "x-app": "cli",
    "user-agent": "claude-cli/2.1.197 (external, cli)",
    "anthropic-dangerous-direct-browser-access": "true",
}


def claude_code_body(**overrides) -> dict:
    body = {
        "model": "fake-model",
        "max_tokens": 32000,
        "stream": True,
        "system": [
            {"type": "text", "text": "x-anthropic-billing-header: cc_version=2.1.197.abc; "
                                     "cc_entrypoint=cli;"},
            {"type": "text", "text": "You are Claude Code.", "cache_control": {"type": "ephemeral"}},
        ],
        "messages": [
            {"role": "user", "content": [{"type": "text", "text": "list files",
                                          "cache_control": {"type": "ephemeral"}}]},
            {"role": "system", "content": "The user switched to plan mode."},
            {"role": "user", "content": "go on"},
        ],
        "tools": [{"name": "Bash", "description": "Run a command", "input_schema": {
            "$schema": "https://json-schema.org/draft/2020-12/schema", "type": "object",
            "properties": {"command": {"type": "string"}}, "required": ["command"],
            "additionalProperties": False}}],
        "metadata": {"user_id": json.dumps({"device_id": "abc", "session_id": "s1"})},
        "thinking": {"type": "adaptive"},
        "context_management": {"edits": [{"type": "clear_thinking_20251015", "keep": "all"}]},
        "output_config": {"effort": "high"},
    }
    body.update(overrides)
    return body


def _events(raw: str) -> list[tuple[str, dict]]:
    out = []
    for block in raw.strip().split("\n\n"):
        lines = block.split("\n")
        assert lines[0].startswith("event: ") and lines[1].startswith("data: "), block
        name, data = lines[0][7:], json.loads(lines[1][6:])
        assert data["type"] == name
        out.append((name, data))
    return out


def _post(gateway, body: dict, auth: str = "bearer") -> httpx.Response:
    headers = dict(CLAUDE_CODE_HEADERS)
    if auth == "bearer":
        headers["authorization"] = f"Bearer {gateway.user_key}"
    else:
        headers["x-api-key"] = gateway.user_key
    return httpx.post(gateway.url + "/v1/messages?beta=true", headers=headers, json=body,
                      timeout=30)


def test_a_claude_code_request_streams_a_well_formed_answer(gateway):
    r = _post(gateway, claude_code_body())
    assert r.status_code == 200, r.text
    events = _events(r.text)
    names = [name for name, _ in events]
    assert names[:2] == ["message_start", "ping"]
    assert names[-2:] == ["message_delta", "message_stop"]
    start = events[0][1]["message"]
    assert start["usage"]["input_tokens"] > 0 and start["model"] == "fake-model"
    text = "".join(d["delta"]["text"] for n, d in events if n == "content_block_delta")
    assert text == "Hello from the fake engine"
    delta = events[-2][1]
    assert delta["delta"]["stop_reason"] == "end_turn"
    assert delta["usage"]["output_tokens"] == 5 and delta["usage"]["input_tokens"] == 7


def test_the_engine_sees_a_clean_openai_request(gateway):
    _post(gateway, claude_code_body(), auth="x-api-key")
    sent = gateway.engine.last_body
    assert [m["role"] for m in sent["messages"]] == ["system", "user", "system", "user"]
    assert sent["messages"][0]["content"] == "You are Claude Code."  # billing line dropped
    assert sent["messages"][2]["content"] == "The user switched to plan mode."  # kept in place
    for field in ("context_management", "output_config", "thinking", "metadata", "system"):
        assert field not in sent
    assert "$schema" not in sent["tools"][0]["function"]["parameters"]
    assert sent["max_tokens"] < 8192  # 32000 clamped to the model's context
    assert sent["stream_options"] == {"include_usage": True}


def test_a_tool_call_stream_has_contiguous_blocks_and_whole_arguments(gateway):
    gateway.engine.script.text = "I'll look."
    gateway.engine.script.tool_calls = [{"name": "Bash", "arguments": '{"command": "ls -la /tmp"}'}]
    events = _events(_post(gateway, claude_code_body()).text)
    starts = [d for n, d in events if n == "content_block_start"]
    assert [s["index"] for s in starts] == [0, 1]
    assert starts[1]["content_block"] == {"type": "tool_use", "id": "call_0", "name": "Bash",
                                          "input": {}}
    partial = "".join(d["delta"]["partial_json"] for n, d in events
                      if n == "content_block_delta" and d["delta"]["type"] == "input_json_delta")
    assert json.loads(partial) == {"command": "ls -la /tmp"}
    assert [d["index"] for n, d in events if n == "content_block_stop"] == [0, 1]
    assert events[-2][1]["delta"]["stop_reason"] == "tool_use"


def test_a_tool_result_with_is_error_reaches_the_engine_marked(gateway):
    body = claude_code_body(stream=False, messages=[
        {"role": "user", "content": "run it"},
        {"role": "assistant", "content": [
            {"type": "thinking", "thinking": "hmm", "signature": "sig=="},
            {"type": "tool_use", "id": "toolu_1", "name": "Bash", "input": {"command": "false"}}]},
        {"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": "toolu_1", "content": "exit 1", "is_error": True,
             "cache_control": {"type": "ephemeral"}},
            {"type": "text", "text": "what happened?"}]},
    ])
    r = _post(gateway, body)
    assert r.status_code == 200, r.text
    sent = gateway.engine.last_body["messages"]
    assert sent[-3]["tool_calls"][0]["function"] == {"name": "Bash",
                                                     "arguments": '{"command": "false"}'}
    assert sent[-2] == {"role": "tool", "tool_call_id": "toolu_1", "content": "Error: exit 1"}
    assert sent[-1] == {"role": "user", "content": "what happened?"}


def test_images_in_both_forms_become_image_urls(gateway):
    body = claude_code_body(stream=False, messages=[{"role": "user", "content": [
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBO"}},
        {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.png"}},
        {"type": "text", "text": "describe"}]}])
    assert _post(gateway, body).status_code == 200
    parts = gateway.engine.last_body["messages"][-1]["content"]
    assert parts[0] == {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBO"}}
    assert parts[1]["image_url"]["url"] == "https://example.com/cat.png"


def test_stop_sequences_and_sampling_pass_through(gateway):
    body = claude_code_body(stream=False, stop_sequences=["END"], temperature=0.5, top_k=40,
                            top_p=0.9)
    _post(gateway, body)
    sent = gateway.engine.last_body
    assert (sent["stop"], sent["temperature"], sent["top_k"], sent["top_p"]) == (["END"], 0.5, 40, 0.9)


def test_a_length_stop_is_max_tokens(gateway):
    gateway.engine.script.finish_reason = "length"
    message = _post(gateway, claude_code_body(stream=False)).json()
    assert message["stop_reason"] == "max_tokens"


def test_errors_come_in_anthropic_shape(gateway):
    r = httpx.post(gateway.url + "/v1/messages", json=claude_code_body(),
                   headers={"anthropic-version": "2023-06-01"})
    assert r.status_code == 401
    assert r.json() == {"type": "error", "error": {
        "type": "authentication_error", "message": r.json()["error"]["message"]}}
    r = _post(gateway, {"model": "fake-model", "messages": [{"role": "user", "content": "x"}]})
    assert r.status_code == 400 and r.json()["error"]["type"] == "invalid_request_error"
    assert "max_tokens" in r.json()["error"]["message"]
    r = _post(gateway, claude_code_body(model="nope"))
    assert r.status_code == 404 and r.json()["error"]["type"] == "not_found_error"
    r = httpx.post(gateway.url + "/v1/messages", headers={"x-api-key": gateway.user_key},
                   content=b"{not json")
    assert r.status_code == 400 and r.json()["type"] == "error"


def test_any_anthropic_version_is_accepted(gateway):
    headers = {"x-api-key": gateway.user_key, "anthropic-version": "2026-10-21"}
    r = httpx.post(gateway.url + "/v1/messages", headers=headers,
                   json=claude_code_body(stream=False))
    assert r.status_code == 200


def test_claude_codes_startup_probe_needs_no_key(gateway):
    r = httpx.head(gateway.url + "/", headers={"user-agent": "Bun/1.4.0"})
    assert r.status_code == 200


def test_an_engine_repeating_the_call_id_on_every_fragment_still_gives_one_block():
    from gateway.canonical import Finish, ToolCallDelta
    from gateway.dialects.anthropic_render import MessageStreamer

    streamer = MessageStreamer(id="msg_x", model="m", input_estimate=1)
    frames = b"".join(b"".join(streamer.feed(e)) for e in [
        ToolCallDelta(0, "call_a", "Bash", '{"command"'),
        ToolCallDelta(0, "call_a", None, ': "ls"}'),
        ToolCallDelta(1, "call_b", "Read", "{}"),
        Finish("tool_calls")]) + b"".join(streamer.end())
    assert frames.count(b"event: content_block_start") == 2
    assert frames.count(b"event: content_block_stop") == 2


def test_fields_of_the_wrong_type_are_a_400_not_a_crash(gateway):
    for bad in ({"output_config": "x"}, {"tools": [{"name": "t", "input_schema": "x"}]},
                {"messages": [{"role": "user", "content": [{"type": "text", "text": 5}]}]},
                {"messages": [{"role": "user", "content": [{"type": "document", "source": "x"}]}]},
                {"tool_choice": {"type": "tool"}}):
        r = _post(gateway, claude_code_body(stream=False, **bad))
        assert r.status_code == 400, (bad, r.text)
        assert r.json()["error"]["type"] == "invalid_request_error"
