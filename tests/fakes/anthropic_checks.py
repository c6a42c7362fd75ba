"""Request validation for the fake Anthropic server: it refuses what the real API refuses, with
the same error types, so a test fails when the gateway sends Anthropic something invalid."""

from __future__ import annotations

from typing import Any

MESSAGE_FIELDS = {"model", "messages", "max_tokens", "system", "stop_sequences", "stream",
                  "temperature", "top_p", "top_k", "tools", "tool_choice", "metadata", "thinking",
                  "output_config", "service_tier", "container", "context_management",
                  "mcp_servers", "inference_geo"}
COUNT_FIELDS = {"model", "messages", "system", "tools", "tool_choice", "thinking",
                "output_config", "context_management", "mcp_servers"}
IMAGE_TYPES = ("image/jpeg", "image/png", "image/gif", "image/webp")


class Refused(Exception):
    def __init__(self, status: int, kind: str, message: str) -> None:
        super().__init__(message)
        self.status, self.kind, self.message = status, kind, message


def _words(value: Any) -> int:
    if isinstance(value, str):
        return len(value.split())
    if isinstance(value, list):
        return sum(_words(item) for item in value)
    if isinstance(value, dict):
        return sum(_words(v) for k, v in value.items()
                   if k not in ("type", "id", "tool_use_id", "role"))
    return 0


def _bad(message: str) -> Refused:
    return Refused(400, "invalid_request_error", message)


def _check_fields(body: dict[str, Any], allowed: set[str]) -> None:
    for name in body:
        if name not in allowed:
            raise _bad(f"{name}: Extra inputs are not permitted")
    if not isinstance(body.get("model"), str):
        raise _bad("model: Field required")
    if not isinstance(body.get("messages"), list) or not body["messages"]:
        raise _bad("messages: Field required")


def _check_block(block: Any, where: str) -> None:
    if not isinstance(block, dict) or not isinstance(block.get("type"), str):
        raise _bad(f"{where}: Input should be an object")
    if block["type"] == "text" and not block.get("text"):
        raise _bad("messages: text content blocks must be non-empty")
    source = block.get("source") or {}
    if block["type"] == "image" and source.get("type") not in ("base64", "url"):
        raise _bad(f"{where}.source: Input tag does not match any of the expected tags")
    if block["type"] == "image" and source["type"] == "base64" and \
            source.get("media_type") not in IMAGE_TYPES:
        raise _bad(f"{where}.source.media_type: Input should be {', '.join(IMAGE_TYPES)}")
    if block["type"] == "tool_use" and not isinstance(block.get("input"), dict):
        raise _bad(f"{where}.input: Input should be an object")


def _check_tool_results(messages: list[dict[str, Any]]) -> None:
    for i, message in enumerate(messages):
        calls = [b["id"] for b in message["content"] if b.get("type") == "tool_use"]
        after = messages[i + 1]["content"] if calls and i + 1 < len(messages) else []
        leading = []
        for block in after if isinstance(after, list) else []:
            if block.get("type") != "tool_result":
                break
            leading.append(block.get("tool_use_id"))
        missing = [call for call in calls if call not in leading]
        if missing:
            raise _bad(f"messages.{i + 1}: `tool_use` ids were found without `tool_result` "
                       f"blocks immediately after: {', '.join(missing)}. Each `tool_use` block "
                       "must have a corresponding `tool_result` block in the next message.")


def _check_messages(messages: list[Any]) -> None:
    for i, message in enumerate(messages):
        if not isinstance(message, dict) or message.get("role") not in ("user", "assistant"):
            raise _bad(f"messages.{i}.role: Input should be 'user' or 'assistant'")
        content = message.get("content")
        if not isinstance(content, (str, list)) or (not content and i + 1 < len(messages)):
            raise _bad(f"messages.{i}: all messages must have non-empty content except for the "
                       "optional final assistant message")
        for j, block in enumerate(content if isinstance(content, list) else []):
            _check_block(block, f"messages.{i}.content.{j}")
    _check_tool_results([{**m, "content": m["content"] if isinstance(m["content"], list) else []}
                         for m in messages])


def _check_options(body: dict[str, Any]) -> None:
    system = body.get("system")
    if system is not None and not isinstance(system, str) and not (
            isinstance(system, list) and all(isinstance(b, dict) and b.get("type") == "text"
                                             and b.get("text") for b in system)):
        raise _bad("system: Input should be a valid string or a list of non-empty text blocks")
    if not 0 <= (body.get("temperature") or 0) <= 1:
        raise _bad("temperature: range: 0..1")
    for i, tool in enumerate(body.get("tools") or []):
        schema = tool.get("input_schema") if isinstance(tool, dict) else None
        if not isinstance(schema, dict) or schema.get("type") != "object" or \
                not isinstance(tool.get("name"), str):
            raise _bad(f"tools.{i}.input_schema: Field required")
    if "tool_choice" in body and not body.get("tools"):
        raise _bad("tool_choice: tool_choice may only be specified while providing tools.")
    thinking = body.get("thinking") or {}
    if thinking.get("type") != "enabled":
        return
    budget = thinking.get("budget_tokens")
    if not isinstance(budget, int) or budget < 1024:
        raise _bad("thinking.enabled.budget_tokens: Input should be greater than or equal to 1024")
    if "max_tokens" in body and budget >= body["max_tokens"]:
        raise _bad("`max_tokens` must be greater than `thinking.budget_tokens`.")
    if body.get("temperature") not in (None, 1) or "top_k" in body:
        raise _bad("`temperature` may only be set to 1 when thinking is enabled.")


# --- answers ------------------------------------------------------------------------------------
