"""Pure translation between canonical requests/events and the OpenAI wire format that vLLM,
llama.cpp's llama-server and MLX-LM speak upstream. No I/O."""

from __future__ import annotations

from typing import Any

from gateway.canonical import (
    ChatRequest,
    ChatResult,
    CompletionRequest,
    CompletionResult,
    Event,
    Finish,
    ReasoningDelta,
    TextDelta,
    ToolCall,
    ToolCallDelta,
    Usage,
)
from gateway.errors import EngineFailed

_OPTIONAL = ("temperature", "top_p", "seed", "presence_penalty", "frequency_penalty", "user",
             "tool_choice", "parallel_tool_calls", "response_format")


def chat_body(request: ChatRequest, model: str, *, stream: bool) -> dict[str, Any]:
    body: dict[str, Any] = {"model": model, "messages": request.messages}
    body.update(request.extra)
    for name in _OPTIONAL:
        value = getattr(request, name)
        if value is not None:
            body[name] = value
    if request.max_tokens is not None:
        body["max_tokens"] = request.max_tokens
    if request.stop:
        body["stop"] = request.stop
    if request.tools:
        body["tools"] = request.tools
    if request.thinking is not None:
        body["chat_template_kwargs"] = {"enable_thinking": request.thinking}
    body["stream"] = stream
    if stream:
        # Always ask for usage upstream, whatever the caller asked for: we bill from it.
        body["stream_options"] = {"include_usage": True}
    return body


def completion_body(request: CompletionRequest, model: str, *, stream: bool) -> dict[str, Any]:
    body: dict[str, Any] = {"model": model, "prompt": request.prompt}
    body.update(request.extra)
    for name in ("max_tokens", "temperature", "top_p", "seed"):
        value = getattr(request, name)
        if value is not None:
            body[name] = value
    if request.stop:
        body["stop"] = request.stop
    if request.echo:
        body["echo"] = True
    body["stream"] = stream
    if stream:
        body["stream_options"] = {"include_usage": True}
    return body


def usage_from(data: dict[str, Any] | None) -> Usage | None:
    if not data:
        return None
    details = data.get("prompt_tokens_details") or {}
    return Usage(
        prompt_tokens=int(data.get("prompt_tokens") or 0),
        completion_tokens=int(data.get("completion_tokens") or 0),
        cached_tokens=int(details.get("cached_tokens") or 0),
    )


def _stop_sequence(choice: dict[str, Any]) -> str | None:
    # vLLM reports the matched stop string in choice.stop_reason (an int means a stop token id).
    matched = choice.get("stop_reason")
    return matched if isinstance(matched, str) and matched else None


def _finish(choice: dict[str, Any]) -> Finish:
    reason = choice.get("finish_reason") or "stop"
    if reason == "function_call":
        reason = "tool_calls"
    if reason not in ("stop", "length", "tool_calls", "content_filter"):
        reason = "stop"
    return Finish(reason=reason, stop_sequence=_stop_sequence(choice))


def chat_result(data: dict[str, Any]) -> ChatResult:
    choices = data.get("choices") or [{}]
    choice = choices[0]
    message = choice.get("message") or {}
    finish = _finish(choice)
    calls = [
        ToolCall(
            id=call.get("id") or f"call_{i}",
            name=(call.get("function") or {}).get("name", ""),
            arguments=(call.get("function") or {}).get("arguments") or "",
        )
        for i, call in enumerate(message.get("tool_calls") or [])
    ]
    return ChatResult(
        text=message.get("content") or "",
        reasoning=message.get("reasoning_content") or message.get("reasoning") or "",
        tool_calls=calls,
        finish_reason=finish.reason,
        stop_sequence=finish.stop_sequence,
        usage=usage_from(data.get("usage")) or Usage(),
    )


def completion_result(data: dict[str, Any]) -> CompletionResult:
    choice = (data.get("choices") or [{}])[0]
    return CompletionResult(
        text=choice.get("text") or "",
        finish_reason=_finish(choice).reason,
        usage=usage_from(data.get("usage")) or Usage(),
    )


def chunk_events(chunk: dict[str, Any]) -> list[Event]:
    """The canonical events carried by one streamed chat or completion chunk. A chunk that does
    not have the published shape raises EngineFailed: the engine is answering garbage."""
    try:
        return _chunk_events(chunk)
    except (TypeError, AttributeError, ValueError, KeyError, OverflowError) as exc:
        raise EngineFailed(f"the engine sent a malformed stream chunk ({exc})") from None


def _text(value: Any) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise TypeError(f"expected text, got {type(value).__name__}")
    return value


def _chunk_events(chunk: dict[str, Any]) -> list[Event]:
    events: list[Event] = []
    for choice in chunk.get("choices") or []:
        if choice.get("index", 0) != 0:
            continue
        delta = choice.get("delta")
        if delta is None:  # legacy completions chunk
            if _text(choice.get("text")):
                events.append(TextDelta(choice["text"]))
        else:
            reasoning = _text(delta.get("reasoning_content") or delta.get("reasoning"))
            if reasoning:
                events.append(ReasoningDelta(reasoning))
            if _text(delta.get("content")):
                events.append(TextDelta(delta["content"]))
            for call in delta.get("tool_calls") or []:
                function = call.get("function") or {}
                events.append(ToolCallDelta(
                    index=int(call.get("index", 0)),
                    id=_text(call.get("id")) or None,
                    name=_text(function.get("name")) or None,
                    arguments=_text(function.get("arguments")),
                ))
        if choice.get("finish_reason"):
            events.append(_finish(choice))
    usage = usage_from(chunk.get("usage"))
    if usage is not None:
        events.append(usage)
    return events
