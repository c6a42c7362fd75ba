"""Shared pieces of the Anthropic golden-file tests: loading cases, rebuilding events, and reading
SSE bytes back through the real SDK."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import anthropic
import httpx2
import pytest

from gateway.canonical import (
    ChatResult,
    Event,
    Finish,
    ReasoningDelta,
    TextDelta,
    ToolCall,
    ToolCallDelta,
    Usage,
)
from gateway.dialects import anthropic_parse, anthropic_render
from tests.gateway.test_openai_golden import load

GOLDEN = Path(__file__).parent / "golden" / "anthropic"
MSG_ID = "msg_golden0123456789abcdef"  # stand-in for the random id
EVENT_TYPES = {cls.__name__: cls for cls in (TextDelta, ReasoningDelta, ToolCallDelta, Finish,
                                             Usage)}
ANTHROPIC_ONLY = {"system", "thinking", "context_management", "output_config", "metadata",
                  "stop_sequences", "cache_control", "signature", "input_schema"}


def cases(pattern: str) -> list[Any]:
    return [pytest.param(path, id=path.name.split(".")[0]) for path in sorted(GOLDEN.glob(pattern))]


def events_from(rows: list[dict[str, Any]]) -> list[Event]:
    return [EVENT_TYPES[row["type"]](**{k: v for k, v in row.items() if k != "type"})
            for row in rows]


def result_from(data: dict[str, Any]) -> ChatResult:
    return ChatResult(**{**data, "tool_calls": [ToolCall(**c) for c in data["tool_calls"]],
                         "usage": Usage(**data["usage"])})


def keys_anywhere(value: Any) -> set[str]:
    if isinstance(value, dict):
        return set(value) | {k for v in value.values() for k in keys_anywhere(v)}
    if isinstance(value, list):
        return {k for v in value for k in keys_anywhere(v)}
    return set()


# --- the path a streamed answer takes to an Anthropic client ---------------------------------


def stream_case(path: Path) -> tuple[dict[str, Any], list[Event], bytes]:
    """A stream case, its canonical events, and the SSE bytes the client gets for them."""
    case = load(path)
    events = events_from(case["events"])
    streamer = anthropic_render.MessageStreamer(id=MSG_ID, model=case["model"],
                                                input_estimate=case["input_estimate"])
    frames = streamer.start()
    for event in events:
        frames += streamer.feed(event)
    frames += streamer.end()
    return case, events, b"".join(frames)


def sse_events(raw: bytes) -> list[tuple[str, dict[str, Any]]]:
    out = []
    for block in raw.decode().split("\n\n")[:-1]:
        name_line, data_line = block.split("\n")
        assert name_line.startswith("event: ") and data_line.startswith("data: "), block
        out.append((name_line[len("event: "):], json.loads(data_line[len("data: "):])))
    return out


def sdk_client(status: int, content: bytes, content_type: str) -> anthropic.Anthropic:
    """The real SDK, reading `content` as if a server had sent it."""
    def answer(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(status, headers={"content-type": content_type}, content=content)

    return anthropic.Anthropic(api_key="sk-ant-test", base_url="http://gateway.test",
                               max_retries=0,
                               http_client=httpx2.Client(transport=httpx2.MockTransport(answer)))


def sdk_final_message(raw: bytes) -> dict[str, Any]:
    """The message the SDK's own accumulator builds from the stream, as plain data."""
    client = sdk_client(200, raw, "text/event-stream")
    with client.messages.stream(model="m", max_tokens=10,
                                messages=[{"role": "user", "content": "hi"}]) as stream:
        message: dict[str, Any] = stream.get_final_message().to_dict()
    return message


# --- requests ---------------------------------------------------------------------------------


def request_case(path: Path) -> tuple[dict[str, Any], Any]:
    case = load(path)
    return case, anthropic_parse.parse_messages(case["client"],
                                                count_only=case.get("count_only", False))
