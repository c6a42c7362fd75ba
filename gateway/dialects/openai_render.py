"""Canonical answers and events -> OpenAI response bodies and stream chunks. Pure functions."""

from __future__ import annotations

import base64
import struct
from typing import Any

from gateway.canonical import (
    ChatResult,
    CompletionResult,
    EmbeddingResult,
    Event,
    Finish,
    ReasoningDelta,
    TextDelta,
    ToolCallDelta,
    Usage,
)


def usage_body(usage: Usage) -> dict[str, Any]:
    body: dict[str, Any] = {
        "prompt_tokens": usage.prompt_tokens,
        "completion_tokens": usage.completion_tokens,
        "total_tokens": usage.prompt_tokens + usage.completion_tokens,
    }
    if usage.cached_tokens:
        body["prompt_tokens_details"] = {"cached_tokens": usage.cached_tokens}
    return body


def chat_completion(result: ChatResult, *, id: str, model: str, created: int) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": result.text or None}
    if result.reasoning:
        message["reasoning_content"] = result.reasoning
    if result.tool_calls:
        message["tool_calls"] = [
            {"id": call.id, "type": "function",
             "function": {"name": call.name, "arguments": call.arguments}}
            for call in result.tool_calls
        ]
    elif message["content"] is None:
        message["content"] = ""
    return {
        "id": id,
        "object": "chat.completion",
        "created": created,
        "model": model,
        "system_fingerprint": None,
        "choices": [{"index": 0, "message": message, "logprobs": None,
                     "finish_reason": result.finish_reason}],
        "usage": usage_body(result.usage),
    }


class ChatChunker:
    """Turns canonical events into `chat.completion.chunk` objects, in the order OpenAI sends
    them: a role chunk first, deltas, a finish chunk, then (only if asked) a usage chunk."""

    def __init__(self, *, id: str, model: str, created: int, include_usage: bool) -> None:
        self.id, self.model, self.created = id, model, created
        self.include_usage = include_usage
        self.started = False
        self.usage: Usage | None = None
        self.finish: Finish | None = None
        self.tool_ids: dict[int, str] = {}

    def _chunk(self, delta: dict[str, Any], finish_reason: str | None = None) -> dict[str, Any]:
        chunk: dict[str, Any] = {
            "id": self.id, "object": "chat.completion.chunk", "created": self.created,
            "model": self.model, "system_fingerprint": None,
            "choices": [{"index": 0, "delta": delta, "logprobs": None,
                         "finish_reason": finish_reason}],
        }
        if self.include_usage:
            chunk["usage"] = None
        return chunk

    def start(self) -> list[dict[str, Any]]:
        if self.started:
            return []
        self.started = True
        return [self._chunk({"role": "assistant", "content": ""})]

    def feed(self, event: Event) -> list[dict[str, Any]]:
        out = self.start()
        if isinstance(event, TextDelta):
            out.append(self._chunk({"content": event.text}))
        elif isinstance(event, ReasoningDelta):
            out.append(self._chunk({"reasoning_content": event.text}))
        elif isinstance(event, ToolCallDelta):
            call: dict[str, Any] = {"index": event.index}
            if event.index not in self.tool_ids:
                # Some engines stream calls without ids; clients need one to answer the call.
                self.tool_ids[event.index] = event.id or f"call_{self.id[-12:]}_{event.index}"
                call["id"] = self.tool_ids[event.index]
                call["type"] = "function"
            elif event.id and event.id != self.tool_ids[event.index]:
                call["id"] = event.id
            function: dict[str, Any] = {"arguments": event.arguments}
            if event.name:
                function["name"] = event.name
            call["function"] = function
            out.append(self._chunk({"tool_calls": [call]}))
        elif isinstance(event, Finish):
            self.finish = event
            out.append(self._chunk({}, event.reason))
        elif isinstance(event, Usage):
            self.usage = event
        return out

    def end(self) -> list[dict[str, Any]]:
        out = self.start()
        if self.finish is None:
            out.append(self._chunk({}, "stop"))
        if self.include_usage:
            out.append({
                "id": self.id, "object": "chat.completion.chunk", "created": self.created,
                "model": self.model, "system_fingerprint": None, "choices": [],
                "usage": usage_body(self.usage or Usage()),
            })
        return out


def text_completion(result: CompletionResult, *, id: str, model: str, created: int) -> dict[str, Any]:
    return {
        "id": id, "object": "text_completion", "created": created, "model": model,
        "system_fingerprint": None,
        "choices": [{"index": 0, "text": result.text, "logprobs": None,
                     "finish_reason": result.finish_reason}],
        "usage": usage_body(result.usage),
    }


def completion_chunk(*, id: str, model: str, created: int, text: str,
                     finish_reason: str | None) -> dict[str, Any]:
    return {
        "id": id, "object": "text_completion", "created": created, "model": model,
        "system_fingerprint": None,
        "choices": [{"index": 0, "text": text, "logprobs": None, "finish_reason": finish_reason}],
    }


def embeddings(result: EmbeddingResult, *, model: str, encoding_format: str) -> dict[str, Any]:
    def encode(vector: list[float]) -> Any:
        if encoding_format == "base64":
            return base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode()
        return vector

    return {
        "object": "list",
        "data": [{"object": "embedding", "index": i, "embedding": encode(v)}
                 for i, v in enumerate(result.vectors)],
        "model": model,
        "usage": {"prompt_tokens": result.prompt_tokens, "total_tokens": result.prompt_tokens},
    }


def model_list(ids: list[tuple[str, str]], created: int) -> dict[str, Any]:
    return {"object": "list",
            "data": [{"id": model, "object": "model", "created": created, "owned_by": owner}
                     for model, owner in ids]}
