"""OpenAI request bodies -> canonical requests, with errors that name the offending field."""

from __future__ import annotations

from typing import Any

from gateway.canonical import ChatRequest, CompletionRequest, EmbeddingRequest
from gateway.errors import InvalidRequest

MAX_MESSAGES = 10_000
MAX_TOOLS = 512
ROLES = ("system", "developer", "user", "assistant", "tool", "function")
# Sampling options engines understand beyond the standard set; anything else is dropped.
PASS_THROUGH = ("top_k", "min_p", "repetition_penalty", "logit_bias", "logprobs", "top_logprobs",
                "reasoning_effort", "ignore_eos", "n_probs")


def _require_object(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise InvalidRequest("The request body must be a JSON object.")
    return body


def _model(body: dict[str, Any]) -> str:
    model = body.get("model")
    if not isinstance(model, str) or not model.strip():
        raise InvalidRequest("you must provide a model parameter", param="model")
    return model.strip()


def _number(body: dict[str, Any], name: str, lo: float, hi: float) -> float | None:
    value = body.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not lo <= value <= hi:
        raise InvalidRequest(f"{name} must be a number between {lo} and {hi}", param=name)
    return value


def _int(body: dict[str, Any], name: str, minimum: int = 1) -> int | None:
    value = body.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise InvalidRequest(f"{name} must be an integer of at least {minimum}", param=name)
    return value


def _bool(body: dict[str, Any], name: str, default: bool = False) -> bool:
    value = body.get(name, default)
    if value is None:
        return default
    if not isinstance(value, bool):
        raise InvalidRequest(f"{name} must be true or false", param=name)
    return value


def _stop(body: dict[str, Any]) -> list[str]:
    stop = body.get("stop")
    if stop is None:
        return []
    if isinstance(stop, str):
        return [stop]
    if isinstance(stop, list) and all(isinstance(s, str) for s in stop) and len(stop) <= 4:
        return stop
    raise InvalidRequest("stop must be a string or a list of at most 4 strings", param="stop")


def _include_usage(body: dict[str, Any], stream: bool) -> bool:
    options = body.get("stream_options")
    if options is None:
        return False
    if not isinstance(options, dict):
        raise InvalidRequest("stream_options must be an object", param="stream_options")
    if not stream:
        raise InvalidRequest("stream_options is only allowed when stream is true",
                             param="stream_options")
    return bool(options.get("include_usage"))


def _messages(body: dict[str, Any]) -> list[dict[str, Any]]:
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise InvalidRequest("messages must be a non-empty array", param="messages")
    if len(messages) > MAX_MESSAGES:
        raise InvalidRequest(f"messages has {len(messages)} items; at most {MAX_MESSAGES} are "
                             "accepted", param="messages")
    for i, message in enumerate(messages):
        if not isinstance(message, dict):
            raise InvalidRequest(f"messages[{i}] must be an object", param=f"messages[{i}]")
        role = message.get("role")
        if role not in ROLES:
            raise InvalidRequest(f"messages[{i}].role must be one of {', '.join(ROLES)}",
                                 param=f"messages[{i}].role")
        content = message.get("content")
        if content is not None and not isinstance(content, (str, list)):
            raise InvalidRequest(f"messages[{i}].content must be a string or an array of parts",
                                 param=f"messages[{i}].content")
        if isinstance(content, list):
            for j, part in enumerate(content):
                if not isinstance(part, dict) or not isinstance(part.get("type"), str):
                    raise InvalidRequest(f"messages[{i}].content[{j}] must be an object with a type",
                                         param=f"messages[{i}].content[{j}]")
        if role == "tool" and not message.get("tool_call_id"):
            raise InvalidRequest(f"messages[{i}].tool_call_id is required for role tool",
                                 param=f"messages[{i}].tool_call_id")
    return messages


def _tools(body: dict[str, Any]) -> list[dict[str, Any]] | None:
    tools = body.get("tools")
    if tools is None:
        return None
    if not isinstance(tools, list):
        raise InvalidRequest("tools must be an array", param="tools")
    if len(tools) > MAX_TOOLS:
        raise InvalidRequest(f"tools has {len(tools)} items; at most {MAX_TOOLS} are accepted",
                             param="tools")
    for i, tool in enumerate(tools):
        function = tool.get("function") if isinstance(tool, dict) else None
        if not isinstance(function, dict) or not isinstance(function.get("name"), str):
            raise InvalidRequest(f"tools[{i}].function.name is required",
                                 param=f"tools[{i}].function.name")
    return tools or None


def _response_format(body: dict[str, Any]) -> dict[str, Any] | None:
    value = body.get("response_format")
    if value is None:
        return None
    if not isinstance(value, dict):
        raise InvalidRequest("response_format must be an object", param="response_format")
    if value.get("type") not in ("text", "json_object", "json_schema"):
        raise InvalidRequest("response_format.type must be text, json_object or json_schema",
                             param="response_format.type")
    return None if value["type"] == "text" else value


def parse_chat(body: Any) -> ChatRequest:
    body = _require_object(body)
    model = _model(body)
    messages = _messages(body)
    stream = _bool(body, "stream")
    n = _int(body, "n")
    if n not in (None, 1):
        raise InvalidRequest("only n=1 is supported", param="n")
    max_tokens = _int(body, "max_completion_tokens") or _int(body, "max_tokens")
    return ChatRequest(
        model=model,
        messages=messages,
        stream=stream,
        max_tokens=max_tokens,
        temperature=_number(body, "temperature", 0, 2),
        top_p=_number(body, "top_p", 0, 1),
        stop=_stop(body),
        tools=_tools(body),
        tool_choice=body.get("tool_choice"),
        parallel_tool_calls=body.get("parallel_tool_calls"),
        response_format=_response_format(body),
        include_usage=_include_usage(body, stream),
        seed=_int(body, "seed", minimum=-(2**63)),
        presence_penalty=_number(body, "presence_penalty", -2, 2),
        frequency_penalty=_number(body, "frequency_penalty", -2, 2),
        user=body.get("user") if isinstance(body.get("user"), str) else None,
        extra={k: body[k] for k in PASS_THROUGH if body.get(k) is not None},
    )


def parse_completion(body: Any) -> CompletionRequest:
    body = _require_object(body)
    model = _model(body)
    prompt = body.get("prompt")
    if not isinstance(prompt, (str, list)) or (isinstance(prompt, list) and not prompt):
        raise InvalidRequest("prompt must be a string or a non-empty array", param="prompt")
    if not _text_or_tokens(prompt):
        raise InvalidRequest("prompt must be a string, an array of strings, an array of tokens or "
                             "an array of token arrays", param="prompt")
    stream = _bool(body, "stream")
    n = _int(body, "n")
    if n not in (None, 1):
        raise InvalidRequest("only n=1 is supported", param="n")
    return CompletionRequest(
        model=model,
        prompt=prompt,
        stream=stream,
        max_tokens=_int(body, "max_tokens"),
        temperature=_number(body, "temperature", 0, 2),
        top_p=_number(body, "top_p", 0, 1),
        stop=_stop(body),
        include_usage=_include_usage(body, stream),
        seed=_int(body, "seed", minimum=-(2**63)),
        echo=_bool(body, "echo"),
        extra={k: body[k] for k in PASS_THROUGH if body.get(k) is not None},
    )


def _tokens(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(
        isinstance(t, int) and not isinstance(t, bool) for t in value)


def _text_or_tokens(value: Any) -> bool:
    """What OpenAI accepts as a prompt: text, texts, tokens, or token arrays."""
    if isinstance(value, str) or _tokens(value):
        return True
    return isinstance(value, list) and bool(value) and (
        all(isinstance(v, str) for v in value) or all(_tokens(v) for v in value))


def parse_embeddings(body: Any) -> EmbeddingRequest:
    body = _require_object(body)
    model = _model(body)
    value = body.get("input")
    if isinstance(value, str):
        inputs: list = [value]
    elif isinstance(value, list) and value and all(isinstance(v, str) for v in value):
        inputs = value
    elif isinstance(value, list) and value and all(isinstance(v, int) for v in value):
        inputs = [value]
    elif isinstance(value, list) and value and all(
            isinstance(v, list) and all(isinstance(t, int) for t in v) for v in value):
        inputs = value
    else:
        raise InvalidRequest("input must be a string, an array of strings or an array of token "
                             "arrays, and not empty", param="input")
    fmt = body.get("encoding_format") or "float"
    if fmt not in ("float", "base64"):
        raise InvalidRequest("encoding_format must be float or base64", param="encoding_format")
    return EmbeddingRequest(model=model, input=inputs, dimensions=_int(body, "dimensions"),
                            encoding_format=fmt)
