"""Anthropic Messages request bodies -> canonical requests (OpenAI-shaped messages). Pure.

Accepts what real clients send: Claude Code's mid-conversation `role: system` messages, system
prompts as block lists with `cache_control`, `$schema` keys in tool schemas, beta-only fields
(`context_management`, `output_config.effort`, ...), which local engines never see."""

from __future__ import annotations

import json
from typing import Any

from gateway.canonical import ChatRequest
from gateway.dialects.openai_parse import MAX_MESSAGES, MAX_TOOLS
from gateway.errors import InvalidRequest

BILLING_HEADER = "x-anthropic-billing-header:"


def _field(message: str, param: str) -> InvalidRequest:
    return InvalidRequest(f"{param}: {message}", param=param)


def _text_of_blocks(blocks: Any, param: str) -> str:
    if isinstance(blocks, str):
        return blocks
    if not isinstance(blocks, list):
        raise _field("Input should be a valid string or list of text blocks", param)
    texts = []
    for i, block in enumerate(blocks):
        if not isinstance(block, dict) or block.get("type") != "text" or not isinstance(
                block.get("text"), str):
            raise _field("Input should be a text block", f"{param}.{i}")
        # Claude Code puts a per-request billing line first; dropping it keeps prompts cacheable.
        if not block["text"].startswith(BILLING_HEADER):
            texts.append(block["text"])
    return "\n\n".join(texts)


def _image_part(source: Any, param: str) -> dict[str, Any]:
    if not isinstance(source, dict):
        raise _field("Field required", f"{param}.source")
    if source.get("type") == "base64":
        url = f"data:{source.get('media_type', 'image/png')};base64,{source.get('data', '')}"
    elif source.get("type") == "url" and isinstance(source.get("url"), str):
        url = source["url"]
    else:
        raise _field("image source must be base64 or url", f"{param}.source")
    return {"type": "image_url", "image_url": {"url": url}}


def _document_text(block: dict[str, Any], param: str) -> str:
    source = block.get("source") or {}
    title = block.get("title")
    if source.get("type") == "text":
        body = source.get("data", "")
    elif source.get("type") == "content":
        body = _text_of_blocks(source.get("content", []), f"{param}.source.content")
    else:
        raise _field("only text documents can be read by local engines; send PDF pages as "
                     "images or text", f"{param}.source")
    return f"{title}\n\n{body}" if title else body


def _tool_result_text(block: dict[str, Any], param: str) -> tuple[str, list[dict[str, Any]]]:
    content = block.get("content", "")
    images: list[dict[str, Any]] = []
    if isinstance(content, list):
        texts = []
        for i, part in enumerate(content):
            kind = part.get("type") if isinstance(part, dict) else None
            if kind == "text":
                texts.append(part.get("text", ""))
            elif kind == "image":
                images.append(_image_part(part.get("source"), f"{param}.content.{i}"))
            elif kind == "document":
                texts.append(_document_text(part, f"{param}.content.{i}"))
        content = "\n".join(texts)
    elif not isinstance(content, str):
        raise _field("Input should be a string or a list of blocks", f"{param}.content")
    if block.get("is_error"):
        content = f"Error: {content}" if content else "Error"
    return content, images


def _user_message(content: list[Any], param: str) -> list[dict[str, Any]]:
    """A user turn: tool results first (OpenAI wants them as `tool` messages), then the rest."""
    out: list[dict[str, Any]] = []
    parts: list[dict[str, Any]] = []
    for i, block in enumerate(content):
        kind = block.get("type") if isinstance(block, dict) else None
        where = f"{param}.content.{i}"
        if kind == "text":
            if block.get("text"):
                parts.append({"type": "text", "text": block["text"]})
        elif kind == "image":
            parts.append(_image_part(block.get("source"), where))
        elif kind == "document":
            parts.append({"type": "text", "text": _document_text(block, where)})
        elif kind == "tool_result":
            if not block.get("tool_use_id"):
                raise _field("Field required", f"{where}.tool_use_id")
            text, images = _tool_result_text(block, where)
            out.append({"role": "tool", "tool_call_id": block["tool_use_id"], "content": text})
            parts.extend(images)
        elif kind is None:
            raise _field("Input should be a content block object", where)
        # other block types (thinking echoes, server tool results) carry nothing for engines
    if parts:
        if all(p["type"] == "text" for p in parts):
            out.append({"role": "user", "content": "\n\n".join(p["text"] for p in parts)})
        else:
            out.append({"role": "user", "content": parts})
    return out


def _assistant_message(content: list[Any], param: str) -> dict[str, Any]:
    texts: list[str] = []
    calls: list[dict[str, Any]] = []
    for i, block in enumerate(content):
        kind = block.get("type") if isinstance(block, dict) else None
        if kind == "text":
            texts.append(block.get("text", ""))
        elif kind == "tool_use":
            if not block.get("id") or not block.get("name"):
                raise _field("tool_use blocks need id and name", f"{param}.content.{i}")
            calls.append({"id": block["id"], "type": "function",
                          "function": {"name": block["name"],
                                       "arguments": json.dumps(block.get("input") or {},
                                                               ensure_ascii=False)}})
        elif kind is None:
            raise _field("Input should be a content block object", f"{param}.content.{i}")
        # thinking / redacted_thinking: local engines neither need nor accept them back
    message: dict[str, Any] = {"role": "assistant", "content": "".join(texts) or None}
    if calls:
        message["tool_calls"] = calls
    elif message["content"] is None:
        message["content"] = ""
    return message


def _messages(body: dict[str, Any]) -> list[dict[str, Any]]:
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise _field("messages must contain at least one message", "messages")
    if len(messages) > MAX_MESSAGES:
        raise _field(f"at most {MAX_MESSAGES} messages are accepted", "messages")
    out: list[dict[str, Any]] = []
    system = body.get("system")
    if system:
        text = _text_of_blocks(system, "system")
        if text:
            out.append({"role": "system", "content": text})
    for i, message in enumerate(messages):
        param = f"messages.{i}"
        if not isinstance(message, dict):
            raise _field("Input should be an object", param)
        role, content = message.get("role"), message.get("content")
        if role not in ("user", "assistant", "system"):
            raise _field("role must be user or assistant", f"{param}.role")
        if isinstance(content, str):
            content = [{"type": "text", "text": content}]
        if not isinstance(content, list):
            raise _field("Field required", f"{param}.content")
        if role == "system":  # Claude Code's mid-conversation system message: keep it in place
            out.append({"role": "system", "content": _text_of_blocks(content, f"{param}.content")})
        elif role == "user":
            out.extend(_user_message(content, param))
        else:
            out.append(_assistant_message(content, param))
    return out


def _tools(body: dict[str, Any]) -> list[dict[str, Any]] | None:
    tools = body.get("tools")
    if tools is None:
        return None
    if not isinstance(tools, list):
        raise _field("Input should be a valid list", "tools")
    if len(tools) > MAX_TOOLS:
        raise _field(f"at most {MAX_TOOLS} tools are accepted", "tools")
    out = []
    for i, tool in enumerate(tools):
        if not isinstance(tool, dict) or not isinstance(tool.get("name"), str):
            raise _field("Field required", f"tools.{i}.name")
        if "input_schema" not in tool:
            continue  # server tools (web search, code execution) run only at Anthropic
        schema = {k: v for k, v in (tool.get("input_schema") or {}).items() if k != "$schema"}
        function: dict[str, Any] = {"name": tool["name"], "parameters": schema}
        if tool.get("description"):
            function["description"] = tool["description"]
        out.append({"type": "function", "function": function})
    return out or None


def _tool_choice(body: dict[str, Any]) -> tuple[Any, bool | None]:
    choice = body.get("tool_choice")
    if choice is None:
        return None, None
    if not isinstance(choice, dict):
        raise _field("Input should be an object", "tool_choice")
    parallel = False if choice.get("disable_parallel_tool_use") else None
    kind = choice.get("type")
    if kind == "auto":
        return "auto", parallel
    if kind == "any":
        return "required", parallel
    if kind == "none":
        return "none", parallel
    if kind == "tool":
        if not isinstance(choice.get("name"), str):
            raise _field("Field required", "tool_choice.name")
        return {"type": "function", "function": {"name": choice["name"]}}, parallel
    raise _field("type must be auto, any, tool or none", "tool_choice.type")


def _thinking(body: dict[str, Any]) -> bool | None:
    thinking = body.get("thinking")
    if not isinstance(thinking, dict):
        return None
    return {"enabled": True, "disabled": False}.get(thinking.get("type"))  # adaptive: engine's call


def _response_format(body: dict[str, Any]) -> dict[str, Any] | None:
    fmt = (body.get("output_config") or {}).get("format") or body.get("output_format")
    if isinstance(fmt, dict) and fmt.get("type") == "json_schema" and isinstance(fmt.get("schema"), dict):
        return {"type": "json_schema", "json_schema": {"name": "output", "schema": fmt["schema"]}}
    return None


def _number(body: dict[str, Any], name: str, lo: float, hi: float) -> float | None:
    value = body.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not lo <= value <= hi:
        raise _field(f"must be a number between {lo} and {hi}", name)
    return value


def parse_messages(body: Any, *, count_only: bool = False) -> ChatRequest:
    try:
        return _parse(body, count_only)
    except (AttributeError, TypeError, KeyError) as exc:
        # A field of the wrong type somewhere deep in the body: still the caller's mistake.
        raise InvalidRequest(f"The request body has a field of the wrong type ({exc}).") from None


def _parse(body: Any, count_only: bool) -> ChatRequest:
    if not isinstance(body, dict):
        raise InvalidRequest("The request body must be a JSON object.")
    model = body.get("model")
    if not isinstance(model, str) or not model.strip():
        raise _field("Field required", "model")
    max_tokens = body.get("max_tokens")
    if not count_only and (isinstance(max_tokens, bool) or not isinstance(max_tokens, int)
                           or max_tokens < 1):
        raise _field("Field required: an integer of at least 1", "max_tokens")
    stream = body.get("stream", False)
    if not isinstance(stream, bool):
        raise _field("Input should be a valid boolean", "stream")
    stops = body.get("stop_sequences") or []
    if not isinstance(stops, list) or not all(isinstance(s, str) for s in stops):
        raise _field("Input should be a list of strings", "stop_sequences")
    tool_choice, parallel = _tool_choice(body)
    metadata = body.get("metadata") if isinstance(body.get("metadata"), dict) else {}
    extra = {}
    top_k = body.get("top_k")
    if isinstance(top_k, int) and not isinstance(top_k, bool) and top_k > 0:
        extra["top_k"] = top_k
    return ChatRequest(
        model=model.strip(),
        messages=_messages(body),
        stream=stream,
        max_tokens=None if count_only else max_tokens,
        temperature=_number(body, "temperature", 0, 1),
        top_p=_number(body, "top_p", 0, 1),
        stop=stops,
        tools=_tools(body),
        tool_choice=tool_choice,
        parallel_tool_calls=parallel,
        response_format=_response_format(body),
        include_usage=True,
        user=metadata.get("user_id") if isinstance(metadata.get("user_id"), str) else None,
        thinking=_thinking(body),
        extra=extra,
    )
