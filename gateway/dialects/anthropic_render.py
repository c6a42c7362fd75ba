"""Canonical answers -> Anthropic response bodies. Pure functions."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from gateway.canonical import (
    ChatResult,
    Event,
    Finish,
    ReasoningDelta,
    TextDelta,
    ToolCallDelta,
    Usage,
)
from gateway.sse import frame


def model_list(ids: list[str], *, created: float) -> dict[str, Any]:
    stamp = datetime.fromtimestamp(created, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    data = [{"type": "model", "id": i, "display_name": i, "created_at": stamp} for i in ids]
    return {"data": data, "has_more": False,
            "first_id": ids[0] if ids else None, "last_id": ids[-1] if ids else None}


STOP_REASONS = {"stop": "end_turn", "length": "max_tokens", "tool_calls": "tool_use",
                "content_filter": "refusal"}


def stop_reason(finish: str, stop_sequence: str | None) -> str:
    if finish == "stop" and stop_sequence:
        return "stop_sequence"
    return STOP_REASONS.get(finish, "end_turn")


def usage_body(usage: Usage | None, *, input_estimate: int = 0) -> dict[str, Any]:
    if usage is None:
        return {"input_tokens": input_estimate, "output_tokens": 0,
                "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0}
    # Anthropic's input_tokens leaves out tokens read from the cache; OpenAI's includes them.
    return {"input_tokens": max(usage.prompt_tokens - usage.cached_tokens, 0),
            "output_tokens": usage.completion_tokens,
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": usage.cached_tokens}


def tool_input(arguments: str) -> dict[str, Any]:
    if not arguments.strip():
        return {}
    try:
        value = json.loads(arguments)
    except ValueError:
        return {"_raw_arguments": arguments}
    return value if isinstance(value, dict) else {"value": value}


def message(result: ChatResult, *, id: str, model: str) -> dict[str, Any]:
    content: list[dict[str, Any]] = []
    if result.reasoning:
        content.append({"type": "thinking", "thinking": result.reasoning, "signature": ""})
    if result.text or not result.tool_calls:
        content.append({"type": "text", "text": result.text})
    for call in result.tool_calls:
        content.append({"type": "tool_use", "id": call.id, "name": call.name,
                        "input": tool_input(call.arguments)})
    return {
        "id": id, "type": "message", "role": "assistant", "model": model, "content": content,
        "stop_reason": stop_reason(result.finish_reason, result.stop_sequence),
        "stop_sequence": result.stop_sequence,
        "usage": usage_body(result.usage),
    }


class MessageStreamer:
    """Canonical events -> Anthropic SSE events. Blocks are opened lazily, indexed from 0 without
    gaps, and every block opened is closed; a tool call's argument fragments become
    `input_json_delta`s as they arrive."""

    def __init__(self, *, id: str, model: str, input_estimate: int) -> None:
        self.id, self.model, self.input_estimate = id, model, input_estimate
        self.index = -1
        self.open_kind: str | None = None
        self.open_tool: int | None = None
        self.open_tool_id: str | None = None
        self.finish: Finish | None = None
        self.usage: Usage | None = None
        self.output_seen = 0

    def start(self) -> list[bytes]:
        body = {"id": self.id, "type": "message", "role": "assistant", "model": self.model,
                "content": [], "stop_reason": None, "stop_sequence": None,
                "usage": {**usage_body(None, input_estimate=self.input_estimate),
                          "output_tokens": 1}}
        return [_event("message_start", {"type": "message_start", "message": body}),
                _event("ping", {"type": "ping"})]

    def ping(self) -> list[bytes]:
        return [_event("ping", {"type": "ping"})]

    def _close(self) -> list[bytes]:
        if self.open_kind is None:
            return []
        self.open_kind, self.open_tool = None, None
        return [_event("content_block_stop", {"type": "content_block_stop", "index": self.index})]

    def _open(self, kind: str, block: dict[str, Any]) -> list[bytes]:
        out = self._close()
        self.index += 1
        self.open_kind = kind
        out.append(_event("content_block_start", {"type": "content_block_start",
                                                  "index": self.index, "content_block": block}))
        return out

    def _delta(self, delta: dict[str, Any]) -> bytes:
        return _event("content_block_delta", {"type": "content_block_delta", "index": self.index,
                                              "delta": delta})

    def feed(self, event: Event) -> list[bytes]:
        out: list[bytes] = []
        if isinstance(event, TextDelta):
            if not event.text:
                return out
            if self.open_kind != "text":
                out += self._open("text", {"type": "text", "text": ""})
            out.append(self._delta({"type": "text_delta", "text": event.text}))
        elif isinstance(event, ReasoningDelta):
            if self.open_kind != "thinking":
                out += self._open("thinking", {"type": "thinking", "thinking": "", "signature": ""})
            out.append(self._delta({"type": "thinking_delta", "thinking": event.text}))
        elif isinstance(event, ToolCallDelta):
            same_call = (self.open_kind == "tool_use" and self.open_tool == event.index
                         and (not event.id or event.id == self.open_tool_id))
            if not same_call:
                call_id = event.id or f"toolu_{self.id[-12:]}_{event.index}"
                out += self._open("tool_use", {"type": "tool_use", "id": call_id,
                                               "name": event.name or "", "input": {}})
                self.open_tool, self.open_tool_id = event.index, call_id
            if event.arguments:
                out.append(self._delta({"type": "input_json_delta",
                                        "partial_json": event.arguments}))
        elif isinstance(event, Finish):
            self.finish = event
        elif isinstance(event, Usage):
            self.usage = event
        if isinstance(event, (TextDelta, ReasoningDelta, ToolCallDelta)):
            self.output_seen += 1
        return out

    def end(self) -> list[bytes]:
        out = self._close()
        finish = self.finish or Finish("stop")
        usage = usage_body(self.usage, input_estimate=self.input_estimate)
        if self.usage is None:
            usage["output_tokens"] = self.output_seen
        out.append(_event("message_delta", {
            "type": "message_delta",
            "delta": {"stop_reason": stop_reason(finish.reason, finish.stop_sequence),
                      "stop_sequence": finish.stop_sequence},
            "usage": usage}))
        out.append(_event("message_stop", {"type": "message_stop"}))
        return out

    def error(self, error_type: str, message: str) -> list[bytes]:
        return [_event("error", {"type": "error",
                                 "error": {"type": error_type, "message": message}})]


def _event(name: str, data: dict[str, Any]) -> bytes:
    return frame(data, event=name)
