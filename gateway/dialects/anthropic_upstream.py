"""Canonical requests -> Anthropic Messages bodies, and Anthropic answers and stream events ->
canonical results and events: the translation an Anthropic-only upstream needs so that OpenAI
clients can reach it. Pure; the driver is gateway/engines/anthropic_vendor.py."""

from __future__ import annotations

import json
import re
from typing import Any

from gateway.canonical import (
    ChatRequest,
    ChatResult,
    Event,
    Finish,
    ReasoningDelta,
    TextDelta,
    ToolCall,
    ToolCallDelta,
    Usage,
)
from gateway.dialects.anthropic_render import tool_input
from gateway.errors import EngineFailed, InvalidRequest

DEFAULT_MAX_TOKENS = 4096  # Anthropic requires max_tokens; OpenAI callers often leave it out
MIN_THINKING_BUDGET = 1024  # Anthropic's floor for thinking.budget_tokens
# count_tokens refuses the generation-only fields (max_tokens, stream, sampling, stops).
COUNT_TOKENS_FIELDS = ("model", "messages", "system", "tools", "tool_choice", "thinking",
                       "output_config")
FINISH_REASONS = {"end_turn": "stop", "stop_sequence": "stop", "pause_turn": "stop",
                  "max_tokens": "length", "model_context_window_exceeded": "length",
                  "tool_use": "tool_calls", "refusal": "content_filter"}
_DATA_URL = re.compile(r"^data:(?P<media>[\w.+-]+/[\w.+-]+)?(?:;[^,;]*)*;base64,(?P<data>.*)$",
                       re.DOTALL)


# --- requests ---------------------------------------------------------------------------------


def _text(content: Any) -> str:
    """The text of an OpenAI content value: a string, or the text parts of a list."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n\n".join(part["text"] for part in content
                           if isinstance(part, dict) and part.get("type") == "text"
                           and isinstance(part.get("text"), str) and part["text"])
    return ""


def _image(url: Any, param: str) -> dict[str, Any]:
    if not isinstance(url, str) or not url:
        raise InvalidRequest(f"{param}: an image needs a url", param=param)
    if url.startswith("data:"):
        match = _DATA_URL.match(url)
        if not match:
            raise InvalidRequest(f"{param}: image data URLs must be base64", param=param)
        source = {"type": "base64", "media_type": match["media"] or "image/png",
                  "data": match["data"]}
    else:
        source = {"type": "url", "url": url}
    return {"type": "image", "source": source}


def _user_blocks(content: Any, param: str) -> list[dict[str, Any]]:
    if isinstance(content, str) or content is None:
        return [{"type": "text", "text": content}] if content else []
    blocks: list[dict[str, Any]] = []
    for j, part in enumerate(content):
        kind, where = part.get("type"), f"{param}.content.{j}"
        if kind == "text":
            if part.get("text"):  # Anthropic refuses empty text blocks
                blocks.append({"type": "text", "text": part["text"]})
        elif kind == "image_url":
            image = part.get("image_url")
            blocks.append(_image(image.get("url") if isinstance(image, dict) else image, where))
        else:
            raise InvalidRequest(f"{where}: content parts of type {kind!r} cannot be sent to an "
                                 "Anthropic engine", param=where)
    return blocks


def _assistant_blocks(message: dict[str, Any]) -> list[dict[str, Any]]:
    blocks: list[dict[str, Any]] = []
    text = _text(message.get("content"))
    if text:  # a tool-calls-only turn often carries content "": omit it, never send ""
        blocks.append({"type": "text", "text": text})
    for call in message.get("tool_calls") or []:
        function = call.get("function") or {}
        blocks.append({"type": "tool_use", "id": call.get("id") or "",
                       "name": function.get("name") or "",
                       "input": tool_input(function.get("arguments") or "")})
    return blocks


def _tool_result(message: dict[str, Any]) -> dict[str, Any]:
    block: dict[str, Any] = {"type": "tool_result", "tool_use_id": message.get("tool_call_id")}
    text = _text(message.get("content"))
    if text:
        block["content"] = text
    return block


def _append(turns: list[dict[str, Any]], role: str, blocks: list[dict[str, Any]]) -> None:
    """Adds blocks to the conversation, merging into the previous turn when it has the same role
    (tool results and the user's next words share one user turn), results first."""
    if not blocks:
        return
    if turns and turns[-1]["role"] == role:
        merged = turns[-1]["content"] + blocks
        turns[-1]["content"] = sorted(merged, key=lambda b: b["type"] != "tool_result")
    else:
        turns.append({"role": role, "content": blocks})


def _conversation(messages: list[dict[str, Any]]) -> tuple[str, list[dict[str, Any]]]:
    system: list[str] = []
    turns: list[dict[str, Any]] = []
    for i, message in enumerate(messages):
        role = message.get("role")
        if role in ("system", "developer"):
            if text := _text(message.get("content")):
                system.append(text)
        elif role == "user":
            _append(turns, "user", _user_blocks(message.get("content"), f"messages.{i}"))
        elif role == "assistant":
            _append(turns, "assistant", _assistant_blocks(message))
        elif role == "tool":
            _append(turns, "user", [_tool_result(message)])
    return "\n\n".join(system), turns


def _tools(tools: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for tool in tools:
        function = tool.get("function") or {}
        schema = function.get("parameters") or {"type": "object", "properties": {}}
        entry: dict[str, Any] = {"name": function.get("name"), "input_schema": schema}
        if function.get("description"):
            entry["description"] = function["description"]
        out.append(entry)
    return out


def _tool_choice(choice: Any, parallel: bool | None) -> dict[str, Any] | None:
    if isinstance(choice, dict):
        name = (choice.get("function") or {}).get("name")
        mapped: dict[str, Any] | None = {"type": "tool", "name": name} if name else None
    else:
        mapped = {"auto": {"type": "auto"}, "required": {"type": "any"},
                  "none": {"type": "none"}}.get(choice) if isinstance(choice, str) else None
    if parallel is False and (mapped or {"type": "auto"})["type"] != "none":
        mapped = {**(mapped or {"type": "auto"}), "disable_parallel_tool_use": True}
    return mapped


def _thinking(request: ChatRequest, max_tokens: int) -> dict[str, Any] | None:
    if request.thinking is False:
        return {"type": "disabled"}
    if request.thinking and max_tokens > MIN_THINKING_BUDGET:
        return {"type": "enabled",
                "budget_tokens": max(MIN_THINKING_BUDGET, min(max_tokens // 2, max_tokens - 1))}
    return None


def _sampling(request: ChatRequest, body: dict[str, Any]) -> None:
    if body.get("thinking", {}).get("type") == "enabled":
        return  # Anthropic refuses temperature and top_k changes while the model thinks
    if request.temperature is not None:
        body["temperature"] = min(max(float(request.temperature), 0.0), 1.0)  # OpenAI's is 0..2
    if request.top_p is not None:
        body["top_p"] = request.top_p
    top_k = request.extra.get("top_k")
    if isinstance(top_k, int) and not isinstance(top_k, bool) and top_k > 0:
        body["top_k"] = top_k


def messages_body(request: ChatRequest, model: str, *, stream: bool) -> dict[str, Any]:
    """The POST /v1/messages body for a canonical request. Fields Anthropic has no use for
    (seed, penalties, logprobs, ...) are left out: it refuses unknown fields."""
    system, turns = _conversation(request.messages)
    max_tokens = request.max_tokens or DEFAULT_MAX_TOKENS
    body: dict[str, Any] = {"model": model, "max_tokens": max_tokens, "messages": turns}
    if system:
        body["system"] = system
    if request.tools:
        body["tools"] = _tools(request.tools)
        choice = _tool_choice(request.tool_choice, request.parallel_tool_calls)
        if choice:
            body["tool_choice"] = choice
    if request.stop:
        body["stop_sequences"] = list(request.stop)
    thinking = _thinking(request, max_tokens)
    if thinking:
        body["thinking"] = thinking
    _sampling(request, body)
    fmt = request.response_format or {}
    schema = (fmt.get("json_schema") or {}).get("schema") if fmt.get("type") == "json_schema" else None
    if isinstance(schema, dict):
        body["output_config"] = {"format": {"type": "json_schema", "schema": schema}}
    if request.user:
        body["metadata"] = {"user_id": request.user}
    body["stream"] = stream
    return body


def count_tokens_body(request: ChatRequest, model: str) -> dict[str, Any]:
    body = messages_body(request, model, stream=False)
    return {key: value for key, value in body.items() if key in COUNT_TOKENS_FIELDS}


# --- answers ----------------------------------------------------------------------------------


def finish_reason(stop_reason: Any) -> str:
    return FINISH_REASONS.get(stop_reason, "stop") if isinstance(stop_reason, str) else "stop"


def usage_from(data: Any) -> Usage:
    """Anthropic's input_tokens leaves out the cached part of the prompt; OpenAI's prompt_tokens
    counts all of it, so reads from and writes to the cache are added back."""
    data = data if isinstance(data, dict) else {}
    cached = _count(data.get("cache_read_input_tokens"))
    written = _count(data.get("cache_creation_input_tokens"))
    return Usage(prompt_tokens=_count(data.get("input_tokens")) + cached + written,
                 completion_tokens=_count(data.get("output_tokens")), cached_tokens=cached)


def _count(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


def _arguments(value: Any) -> str:
    return json.dumps(value if isinstance(value, dict) else {}, ensure_ascii=False)


def _stop_sequence(data: dict[str, Any]) -> str | None:
    matched = data.get("stop_sequence")
    return matched if isinstance(matched, str) and matched else None


def message_result(data: Any) -> ChatResult:
    """A whole Anthropic message -> the canonical answer."""
    if not isinstance(data, dict) or not isinstance(data.get("content"), list):
        raise EngineFailed("the Anthropic engine sent a message without content",
                           extra={"engine": "anthropic"})
    result = ChatResult(finish_reason=finish_reason(data.get("stop_reason")),
                        stop_sequence=_stop_sequence(data), usage=usage_from(data.get("usage")))
    for block in data["content"]:
        kind = block.get("type") if isinstance(block, dict) else None
        if kind == "text":
            result.text += block.get("text") or ""
        elif kind == "thinking":
            result.reasoning += block.get("thinking") or ""
        elif kind == "tool_use":
            result.tool_calls.append(ToolCall(id=block.get("id") or "",
                                              name=block.get("name") or "",
                                              arguments=_arguments(block.get("input"))))
        # redacted_thinking, server tool blocks: nothing an OpenAI client can be shown
    return result


class StreamReader:
    """Anthropic stream events (the parsed `data` of each SSE frame) -> canonical events.

    Anthropic numbers every content block; OpenAI numbers only tool calls, so tool_use blocks
    are renumbered from 0. Usage comes at message_start (the prompt) and, cumulatively, at
    message_delta (the output, and on newer servers the prompt again)."""

    def __init__(self) -> None:
        self.tools: dict[int, int] = {}  # Anthropic block index -> canonical tool index
        self.prompt_usage: dict[str, Any] = {}
        self.finished = False  # message_delta with a stop_reason was seen
        self.stopped = False  # message_stop was seen

    def feed(self, event: Any) -> list[Event]:
        kind = event.get("type") if isinstance(event, dict) else None
        if kind == "error":
            error = event.get("error") if isinstance(event.get("error"), dict) else {}
            raise EngineFailed(f"anthropic engine failed mid-stream: "
                               f"{error.get('type', 'error')}: {error.get('message', '')}",
                               extra={"engine": "anthropic", "error_type": error.get("type")})
        if kind == "message_start":
            self.prompt_usage = dict((event.get("message") or {}).get("usage") or {})
        elif kind == "content_block_start":
            return self._block_start(event.get("index"), event.get("content_block") or {})
        elif kind == "content_block_delta":
            return self._delta(event.get("index"), event.get("delta") or {})
        elif kind == "message_delta":
            return self._message_delta(event)
        elif kind == "message_stop":
            self.stopped = True
        return []  # ping, content_block_stop, and event types added after this was written

    def _block_start(self, index: Any, block: dict[str, Any]) -> list[Event]:
        kind = block.get("type")
        if kind == "tool_use":
            self.tools[index] = len(self.tools)
            # Anthropic opens with input {}; a server that sends the whole input here means it.
            given = block.get("input")
            return [ToolCallDelta(index=self.tools[index], id=block.get("id") or None,
                                  name=block.get("name") or None,
                                  arguments=_arguments(given) if given else "")]
        if kind == "text" and block.get("text"):
            return [TextDelta(block["text"])]
        if kind == "thinking" and block.get("thinking"):
            return [ReasoningDelta(block["thinking"])]
        return []

    def _delta(self, index: Any, delta: dict[str, Any]) -> list[Event]:
        kind = delta.get("type")
        if kind == "text_delta" and delta.get("text"):
            return [TextDelta(delta["text"])]
        if kind == "thinking_delta" and delta.get("thinking"):
            return [ReasoningDelta(delta["thinking"])]
        if kind == "input_json_delta" and delta.get("partial_json") and index in self.tools:
            return [ToolCallDelta(index=self.tools[index], arguments=delta["partial_json"])]
        return []  # signature_delta, citations_delta: nothing an OpenAI client can use

    def _message_delta(self, event: dict[str, Any]) -> list[Event]:
        delta = event.get("delta") or {}
        usage = {**self.prompt_usage,
                 **{k: v for k, v in (event.get("usage") or {}).items() if v is not None}}
        self.finished = True
        return [Finish(reason=finish_reason(delta.get("stop_reason")),
                       stop_sequence=_stop_sequence(delta)),
                usage_from(usage)]
