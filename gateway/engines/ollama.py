"""Driver for Ollama's native API (/api/chat, /api/generate, /api/embed), which streams NDJSON."""

from __future__ import annotations

import json
from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import aclosing
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
    TextDelta,
)
from gateway.engines import ollama_wire
from gateway.engines.base import Engine
from gateway.engines.transport import request_json, stream_lines
from gateway.errors import EngineError, EngineFailed, EngineRejected, GatewayError


def _no_thinking_support(exc: EngineRejected, body: dict[str, Any]) -> bool:
    # Ollama answers 400 '"<model>" does not support thinking' to think=true on other models.
    # Thinking is a preference, not a requirement: the answer without it beats an error.
    return body.get("think") is True and "does not support thinking" in exc.message


class OllamaEngine(Engine):
    kind = "ollama"

    async def list_models(self) -> list[EngineModel]:
        tags = await request_json(self, "GET", "/api/tags", timeout=10)
        try:
            running = await request_json(self, "GET", "/api/ps", timeout=5)
        except EngineError:
            running = None  # older Ollama, or a hiccup: the list matters more than warmth
        return ollama_wire.models_from(tags, running)

    async def health(self) -> bool:
        try:
            await request_json(self, "GET", "/api/version", timeout=5)
        except GatewayError:  # down, or refusing us (a wrong key)
            return False
        return True

    async def chat(self, request: ChatRequest, model: str) -> ChatResult:
        body = ollama_wire.chat_body(request, model, stream=False)
        return ollama_wire.chat_result(await self._post("/api/chat", body))

    def chat_stream(self, request: ChatRequest, model: str) -> AsyncIterator[Event]:
        return self._ndjson("/api/chat", ollama_wire.chat_body(request, model, stream=True))

    async def complete(self, request: CompletionRequest, model: str) -> CompletionResult:
        body = ollama_wire.completion_body(request, model, stream=False)
        result = ollama_wire.completion_result(await self._post("/api/generate", body))
        if request.echo:  # Ollama cannot echo; the prompt is exactly what we sent
            result.text = body["prompt"] + result.text
        return result

    def complete_stream(self, request: CompletionRequest, model: str) -> AsyncIterator[Event]:
        body = ollama_wire.completion_body(request, model, stream=True)
        events = self._ndjson("/api/generate", body)
        return _echoed(body["prompt"], events) if request.echo else events

    async def embed(self, request: EmbeddingRequest, model: str) -> EmbeddingResult:
        body = ollama_wire.embed_body(request, model)
        return ollama_wire.embed_result(await self._post("/api/embed", body))

    async def _post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        try:
            data = await request_json(self, "POST", path, body)
        except EngineRejected as exc:
            if not _no_thinking_support(exc, body):
                raise
            data = await request_json(self, "POST", path, _without_think(body))
        if not isinstance(data, dict):
            raise EngineFailed(f"{self.kind} engine at {self.endpoint} sent an unexpected body",
                               extra={"engine": self.kind})
        if data.get("error"):
            raise self._failed(data["error"])
        return data

    async def _ndjson(self, path: str, body: dict[str, Any]) -> AsyncGenerator[Event, None]:
        try:
            async with aclosing(self._ndjson_once(path, body)) as events:
                async for event in events:
                    yield event
        except EngineRejected as exc:
            # A rejection comes with the status line, before any event, so retrying is safe.
            if not _no_thinking_support(exc, body):
                raise
            async with aclosing(self._ndjson_once(path, _without_think(body))) as events:
                async for event in events:
                    yield event

    async def _ndjson_once(self, path: str,
                           body: dict[str, Any]) -> AsyncGenerator[Event, None]:
        state = ollama_wire.StreamState()
        # aclosing: when our caller closes us early, close the HTTP stream now (not at garbage
        # collection) so Ollama sees the disconnect and stops generating.
        # (stream_lines is declared an AsyncIterator but is an async generator: it has aclose.)
        upstream = stream_lines(self, path, body)
        async with aclosing(upstream) as lines:
            async for line in lines:
                if state.done:
                    continue  # read to the end of the body so the connection can be reused
                try:
                    data = json.loads(line)
                except ValueError:
                    raise EngineFailed(f"{self.kind} engine sent a malformed stream line",
                                       extra={"engine": self.kind}) from None
                if not isinstance(data, dict):
                    continue
                if data.get("error"):
                    raise self._failed(data["error"], mid_stream=True)
                for event in ollama_wire.line_events(data, state):
                    yield event
        if not state.done:
            raise EngineFailed(f"{self.kind} engine at {self.endpoint} ended the stream early",
                               extra={"engine": self.kind})

    def _failed(self, error: Any, *, mid_stream: bool = False) -> EngineFailed:
        where = "failed mid-stream" if mid_stream else "failed"
        return EngineFailed(f"{self.kind} engine at {self.endpoint} {where}: {error}",
                            extra={"engine": self.kind})


def _without_think(body: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in body.items() if key != "think"}


async def _echoed(prompt: str, events: AsyncGenerator[Event, None]) -> AsyncGenerator[Event, None]:
    yield TextDelta(prompt)
    async with aclosing(events):
        async for event in events:
            yield event
