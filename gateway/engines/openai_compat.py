"""Driver for engines with an OpenAI-compatible server: vLLM, llama.cpp's llama-server, MLX-LM."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import aclosing

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
)
from gateway.engines import openai_wire
from gateway.engines.base import Engine
from gateway.engines.transport import request_json, stream_lines
from gateway.errors import EngineFailed, GatewayError

# Fields only the open-source servers take; OpenAI's own API refuses unknown arguments.
_LOCAL_ONLY = ("chat_template_kwargs", "top_k", "min_p", "repetition_penalty")


def vendor_body(body: dict) -> dict:
    """A chat body for OpenAI itself: its current models take `max_completion_tokens` (the o-series
    refuse `max_tokens`), and none of the engines' own extensions."""
    body = {k: v for k, v in body.items() if k not in _LOCAL_ONLY}
    if "max_tokens" in body:
        body["max_completion_tokens"] = body.pop("max_tokens")
    return body


def _int_or_none(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None


class OpenAICompatEngine(Engine):
    kind = "vllm"

    async def list_models(self) -> list[EngineModel]:
        data = await request_json(self, "GET", "/v1/models", timeout=10)
        models = [EngineModel(id=item["id"], details=item,
                              context_length=_int_or_none(item.get("max_model_len")))
                  for item in data.get("data") or [] if isinstance(item, dict) and item.get("id")]
        if self.kind == "llamacpp" and models:
            # llama-server reports its real context (-c) only in /props.
            try:
                props = await request_json(self, "GET", "/props", timeout=5)
                n_ctx = _int_or_none((props.get("default_generation_settings") or {}).get("n_ctx"))
            except GatewayError:  # an older server without /props
                n_ctx = None
            for model in models:
                model.context_length = n_ctx or model.context_length
        return models

    async def count_tokens(self, request: ChatRequest, model: str) -> int | None:
        if self.kind == "vllm":
            body = {"model": model, "messages": request.messages}
            if request.tools:
                body["tools"] = request.tools
            data = await request_json(self, "POST", "/tokenize", body, timeout=30)
            return _int_or_none(data.get("count"))
        if self.kind == "llamacpp":
            body = {"messages": request.messages}
            if request.tools:
                body["tools"] = request.tools
            prompt = (await request_json(self, "POST", "/apply-template", body, timeout=30))["prompt"]
            data = await request_json(self, "POST", "/tokenize", {"content": prompt}, timeout=30)
            return len(data.get("tokens") or [])
        return None

    async def health(self) -> bool:
        try:
            await request_json(self, "GET", "/v1/models", timeout=5)
        except GatewayError:  # down, or refusing us (a wrong key)
            return False
        return True

    def _chat_body(self, request: ChatRequest, model: str, *, stream: bool) -> dict:
        body = openai_wire.chat_body(request, model, stream=stream)
        return vendor_body(body) if self.kind == "openai" else body

    async def chat(self, request: ChatRequest, model: str) -> ChatResult:
        body = self._chat_body(request, model, stream=False)
        return openai_wire.chat_result(await request_json(self, "POST", "/v1/chat/completions", body))

    def chat_stream(self, request: ChatRequest, model: str) -> AsyncIterator[Event]:
        body = self._chat_body(request, model, stream=True)
        return self._sse("/v1/chat/completions", body)

    async def complete(self, request: CompletionRequest, model: str) -> CompletionResult:
        body = openai_wire.completion_body(request, model, stream=False)
        return openai_wire.completion_result(await request_json(self, "POST", "/v1/completions", body))

    def complete_stream(self, request: CompletionRequest, model: str) -> AsyncIterator[Event]:
        body = openai_wire.completion_body(request, model, stream=True)
        return self._sse("/v1/completions", body)

    async def embed(self, request: EmbeddingRequest, model: str) -> EmbeddingResult:
        body: dict = {"model": model, "input": request.input, "encoding_format": "float"}
        if request.dimensions:
            body["dimensions"] = request.dimensions
        data = await request_json(self, "POST", "/v1/embeddings", body)
        rows = sorted(data.get("data") or [], key=lambda row: row.get("index", 0))
        usage = data.get("usage") or {}
        return EmbeddingResult(vectors=[row["embedding"] for row in rows],
                               prompt_tokens=int(usage.get("prompt_tokens") or 0))

    async def _sse(self, path: str, body: dict) -> AsyncIterator[Event]:
        finished = False
        # aclosing: when our caller stops reading, the upstream connection closes at once.
        async with aclosing(stream_lines(self, path, body)) as lines:
            async for line in lines:
                if not line.startswith("data:"):
                    continue  # comments, event names, keep-alives
                payload = line[5:].strip()
                if payload == "[DONE]":
                    break
                try:
                    chunk = json.loads(payload)
                except ValueError:
                    raise EngineFailed(f"{self.kind} engine sent a malformed stream chunk",
                                       extra={"engine": self.kind}) from None
                if "error" in chunk and not chunk.get("choices"):
                    error = chunk["error"]
                    message = error.get("message") if isinstance(error, dict) else str(error)
                    raise EngineFailed(f"{self.kind} engine failed mid-stream: {message}",
                                       extra={"engine": self.kind})
                for event in openai_wire.chunk_events(chunk):
                    finished = finished or isinstance(event, Finish)
                    yield event
        if not finished:
            raise EngineFailed(f"{self.kind} engine at {self.endpoint} ended the stream early",
                               extra={"engine": self.kind})
