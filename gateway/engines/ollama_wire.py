"""Pure translation between canonical requests/events and Ollama's native API (/api/chat,
/api/generate, /api/embed, /api/tags, /api/ps), following Ollama's docs/api.md. No I/O.

Canonical messages are OpenAI-shaped; Ollama differs in a few ways handled here: content is one
string with images beside it as bare base64, tool-call arguments are objects rather than JSON
strings, tool results name the tool instead of the call id, and sampling settings live under
`options`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from gateway.canonical import (
    ChatRequest,
    ChatResult,
    CompletionRequest,
    CompletionResult,
    EmbeddingRequest,
    EmbeddingResult,
    EngineModel,
    Event,
    Finish,
    ReasoningDelta,
    TextDelta,
    ToolCall,
    ToolCallDelta,
    Usage,
)
from gateway.errors import EngineFailed, InvalidRequest

# `extra` keys that are top-level request fields; every other extra key is a model option.
_CHAT_FIELDS = frozenset({"keep_alive"})
_GENERATE_FIELDS = frozenset({"keep_alive", "suffix"})
# OpenAI-world spellings of Ollama options (vLLM's name for repeat_penalty).
_OPTION_NAMES = {"repetition_penalty": "repeat_penalty"}


# --- requests ----------------------------------------------------------------------------------


def chat_body(request: ChatRequest, model: str, *, stream: bool) -> dict[str, Any]:
    body: dict[str, Any] = {"model": model, "messages": chat_messages(request.messages),
                            "stream": stream}
    tools = _tools(request)
    if tools:
        body["tools"] = tools
    fmt = _format(request.response_format)
    if fmt is not None:
        body["format"] = fmt
    if request.thinking is not None:
        body["think"] = request.thinking
    fields, options = _split_extra(request.extra, _CHAT_FIELDS)
    body.update(fields)
    options.update(_sampling(request.max_tokens, request.temperature, request.top_p,
                             request.seed, request.stop))
    for name in ("presence_penalty", "frequency_penalty"):
        value = getattr(request, name)
        if value is not None:
            options[name] = value
    if options:
        body["options"] = options
    return body


def completion_body(request: CompletionRequest, model: str, *, stream: bool) -> dict[str, Any]:
    # raw: the caller's prompt is already the whole text; Ollama must not wrap it in the chat
    # template, which is what /v1/completions means.
    body: dict[str, Any] = {"model": model, "prompt": _single_prompt(request.prompt),
                            "raw": True, "stream": stream}
    fields, options = _split_extra(request.extra, _GENERATE_FIELDS)
    body.update(fields)
    options.update(_sampling(request.max_tokens, request.temperature, request.top_p,
                             request.seed, request.stop))
    if options:
        body["options"] = options
    return body


def embed_body(request: EmbeddingRequest, model: str) -> dict[str, Any]:
    if any(not isinstance(item, str) for item in request.input):
        raise InvalidRequest("Ollama embeds text only, not token ids", param="input")
    body: dict[str, Any] = {"model": model, "input": list(request.input)}
    if request.dimensions:
        body["dimensions"] = request.dimensions
    return body


def chat_messages(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    names: dict[str, str] = {}  # tool call id -> function name, to label the tool's result
    out: list[dict[str, Any]] = []
    for message in messages:
        role = message.get("role") or "user"
        if role == "developer":  # OpenAI's newer name for system
            role = "system"
        text, images = _content(message.get("content"))
        item: dict[str, Any] = {"role": role, "content": text}
        if images:
            item["images"] = images
        if role == "assistant":
            reasoning = message.get("reasoning_content") or message.get("reasoning")
            if reasoning:
                item["thinking"] = reasoning
            calls = [_call_to_ollama(call, names) for call in message.get("tool_calls") or []]
            if calls:
                item["tool_calls"] = calls
        elif role == "tool":
            name = message.get("name") or names.get(message.get("tool_call_id") or "")
            if name:
                item["tool_name"] = name
        out.append(item)
    return out


def _content(content: Any) -> tuple[str, list[str]]:
    if content is None:
        return "", []
    if isinstance(content, str):
        return content, []
    texts: list[str] = []
    images: list[str] = []
    for part in content:
        kind = part.get("type")
        if kind == "text":
            texts.append(part.get("text") or "")
        elif kind == "image_url":
            image = part.get("image_url")
            url = image.get("url", "") if isinstance(image, dict) else str(image or "")
            images.append(_image_base64(url))
        else:
            raise InvalidRequest(f"Ollama cannot take a {kind!r} content part", param="messages")
    return "\n".join(texts), images


def _image_base64(url: str) -> str:
    # Ollama wants the bytes, base64-encoded, and never fetches a URL itself.
    if not url.startswith("data:") or "," not in url:
        raise InvalidRequest("Ollama takes images only as inline data: URLs (base64)",
                             param="messages")
    header, data = url.split(",", 1)
    if not header.endswith(";base64"):
        raise InvalidRequest("image data: URLs must be base64-encoded", param="messages")
    return data


def _call_to_ollama(call: dict[str, Any], names: dict[str, str]) -> dict[str, Any]:
    function = call.get("function") or {}
    name = function.get("name") or ""
    if call.get("id"):
        names[call["id"]] = name
    raw = function.get("arguments")
    if isinstance(raw, dict):
        arguments = raw
    else:
        try:
            arguments = json.loads(raw) if raw else {}
        except ValueError:
            raise InvalidRequest(f"tool call {name!r} has arguments that are not JSON",
                                 param="messages") from None
        if not isinstance(arguments, dict):
            raise InvalidRequest(f"tool call {name!r} arguments must be a JSON object",
                                 param="messages")
    return {"function": {"name": name, "arguments": arguments}}


def _tools(request: ChatRequest) -> list[dict[str, Any]]:
    # Ollama has no tool_choice: "none" is honoured by not offering the tools; "required" or a
    # named tool cannot be forced, so the model just gets the tools.
    if not request.tools or request.tool_choice == "none":
        return []
    return [{"type": "function", "function": tool["function"]} for tool in request.tools
            if tool.get("type", "function") == "function" and tool.get("function")]


def _format(response_format: dict[str, Any] | None) -> Any:
    if not response_format:
        return None
    kind = response_format.get("type")
    if kind == "json_object":
        return "json"
    if kind == "json_schema":
        schema = (response_format.get("json_schema") or {}).get("schema")
        return schema if schema else "json"
    return None


def _sampling(max_tokens: int | None, temperature: float | None, top_p: float | None,
              seed: int | None, stop: list[str]) -> dict[str, Any]:
    options: dict[str, Any] = {}
    if max_tokens is not None:
        options["num_predict"] = max_tokens
    if temperature is not None:
        options["temperature"] = temperature
    if top_p is not None:
        options["top_p"] = top_p
    if seed is not None:
        options["seed"] = seed
    if stop:
        options["stop"] = list(stop)
    return options


def _split_extra(extra: dict[str, Any], fields: frozenset[str]) -> tuple[dict, dict]:
    top = {key: value for key, value in extra.items() if key in fields}
    options = {_OPTION_NAMES.get(key, key): value for key, value in extra.items()
               if key not in fields}
    return top, options


def _single_prompt(prompt: str | list[Any]) -> str:
    if isinstance(prompt, str):
        return prompt
    if len(prompt) == 1 and isinstance(prompt[0], str):
        return prompt[0]
    raise InvalidRequest("Ollama completes one text prompt per request (no batches or token "
                         "ids)", param="prompt")


# --- answers -----------------------------------------------------------------------------------


@dataclass
class StreamState:
    """What a stream translation must remember between NDJSON lines."""

    tool_calls: int = 0
    done: bool = False


def usage_from(data: dict[str, Any]) -> Usage:
    return Usage(prompt_tokens=int(data.get("prompt_eval_count") or 0),
                 completion_tokens=int(data.get("eval_count") or 0))


def _finish_reason(data: dict[str, Any], tool_calls: int) -> str:
    # Ollama reports "stop" after a tool call; OpenAI callers expect "tool_calls".
    if tool_calls:
        return "tool_calls"
    return "length" if data.get("done_reason") == "length" else "stop"


def _arguments(raw: Any) -> str:
    if isinstance(raw, str):
        return raw
    return json.dumps(raw if raw is not None else {}, ensure_ascii=False)


def _call_from_ollama(call: dict[str, Any], index: int) -> ToolCall:
    function = call.get("function") or {}
    return ToolCall(id=call.get("id") or f"call_{index}", name=function.get("name") or "",
                    arguments=_arguments(function.get("arguments")))


def chat_result(data: dict[str, Any]) -> ChatResult:
    message = data.get("message") or {}
    calls = [_call_from_ollama(call, i) for i, call in enumerate(message.get("tool_calls") or [])]
    return ChatResult(text=message.get("content") or "", reasoning=message.get("thinking") or "",
                      tool_calls=calls, finish_reason=_finish_reason(data, len(calls)),
                      usage=usage_from(data))


def completion_result(data: dict[str, Any]) -> CompletionResult:
    return CompletionResult(text=data.get("response") or "",
                            finish_reason=_finish_reason(data, 0), usage=usage_from(data))


def line_events(data: dict[str, Any], state: StreamState) -> list[Event]:
    """The canonical events in one NDJSON line of /api/chat or /api/generate. Each tool call
    arrives whole in one line, so it becomes one complete ToolCallDelta. A line without the
    published shape raises EngineFailed: the engine is answering garbage."""
    try:
        return _line_events(data, state)
    except (TypeError, AttributeError, ValueError, KeyError, OverflowError) as exc:
        raise EngineFailed(f"Ollama sent a malformed stream line ({exc})") from None


def _line_events(data: dict[str, Any], state: StreamState) -> list[Event]:
    events: list[Event] = []
    message = data.get("message") or {}
    thinking = message.get("thinking") or data.get("thinking")
    if thinking:
        events.append(ReasoningDelta(thinking))
    text = message.get("content") or data.get("response")
    if text:
        events.append(TextDelta(text))
    for call in message.get("tool_calls") or []:
        whole = _call_from_ollama(call, state.tool_calls)
        events.append(ToolCallDelta(index=state.tool_calls, id=whole.id, name=whole.name,
                                    arguments=whole.arguments))
        state.tool_calls += 1
    if data.get("done"):
        state.done = True
        events.append(Finish(reason=_finish_reason(data, state.tool_calls)))
        events.append(usage_from(data))
    return events


def embed_result(data: dict[str, Any]) -> EmbeddingResult:
    return EmbeddingResult(vectors=[list(row) for row in data.get("embeddings") or []],
                           prompt_tokens=int(data.get("prompt_eval_count") or 0))


def models_from(tags: dict[str, Any], running: dict[str, Any] | None) -> list[EngineModel]:
    """Models from /api/tags, marked loaded when /api/ps lists them (`running` None: unknown,
    so none is claimed to be warm)."""
    loaded = {item.get("name") or item.get("model")
              for item in (running or {}).get("models") or [] if isinstance(item, dict)}
    models = []
    for item in tags.get("models") or []:
        name = item.get("name") or item.get("model") if isinstance(item, dict) else None
        if name:
            models.append(EngineModel(id=name, loaded=name in loaded, details=item))
    return models
