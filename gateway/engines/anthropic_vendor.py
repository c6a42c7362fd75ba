"""Driver for upstreams that speak only Anthropic's Messages API (Anthropic itself, or a server
compatible with it), so that OpenAI clients can reach their models too."""

from __future__ import annotations

import json
from collections.abc import AsyncGenerator, AsyncIterator, Mapping
from contextlib import aclosing
from typing import Any
from urllib.parse import quote

import httpx

from gateway import http
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
    TextDelta,
    Usage,
)
from gateway.dialects import anthropic_upstream
from gateway.engines.base import Engine
from gateway.engines.transport import (
    extra_headers,
    map_transport_error,
    raise_for_status,
    request_json,
    stream_lines,
    upstream_message,
)
from gateway.errors import EngineFailed, EngineRejected, GatewayError, InvalidRequest

API_VERSION = "2023-06-01"
MODELS_PAGE = 1000  # the most /v1/models gives per page; its default is 20
# Caller headers a relayed request carries to the upstream; its key is always the server's own.
RELAYED_HEADERS = ("anthropic-version", "anthropic-beta")
# Upstream response headers relayed back with a refusal (the SDKs read them to back off).
RELAYED_BACK = ("retry-after", "request-id")


class VendorRejected(EngineRejected):
    """The upstream refused a relayed request (a 4xx): its own error body goes back as it is."""

    def __init__(self, message: str, *, status: int, body: bytes, headers: dict[str, str]) -> None:
        super().__init__(message, status=status)
        self.status = status
        self.body = body
        self.headers = headers


def _prompt_text(request: CompletionRequest) -> str:
    prompt = request.prompt
    if isinstance(prompt, list) and len(prompt) == 1 and isinstance(prompt[0], str):
        prompt = prompt[0]
    if not isinstance(prompt, str):
        raise InvalidRequest("an Anthropic engine takes one text prompt, not several prompts or "
                             "token ids", param="prompt")
    return prompt


def _as_chat(request: CompletionRequest) -> ChatRequest:
    """Anthropic has no raw completions: the prompt becomes the one user message."""
    return ChatRequest(model=request.model,
                       messages=[{"role": "user", "content": _prompt_text(request)}],
                       stream=request.stream, max_tokens=request.max_tokens,
                       temperature=request.temperature, top_p=request.top_p,
                       stop=request.stop, include_usage=request.include_usage,
                       extra=dict(request.extra))


def _context_length(item: dict[str, Any]) -> int | None:
    value = item.get("max_input_tokens")
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None


class AnthropicEngine(Engine):
    kind = "anthropic"

    def request_headers(self) -> dict[str, str]:
        # Anthropic wants its own key header and an API version, not `authorization: Bearer`.
        headers = {"content-type": "application/json", "anthropic-version": API_VERSION}
        if self.api_key:
            headers["x-api-key"] = self.api_key
        return headers

    async def list_models(self) -> list[EngineModel]:
        models: list[EngineModel] = []
        after = ""
        while True:
            page = await request_json(self, "GET", f"/v1/models?limit={MODELS_PAGE}{after}",
                                      timeout=10)
            items = [item for item in (page.get("data") or [])
                     if isinstance(item, dict) and item.get("id")]
            models += [EngineModel(id=item["id"], details=item,
                                   context_length=_context_length(item)) for item in items]
            if not page.get("has_more") or not items:
                return models
            after = "&after_id=" + quote(str(page.get("last_id") or items[-1]["id"]))

    async def health(self) -> bool:
        try:
            await request_json(self, "GET", "/v1/models?limit=1", timeout=5)
        except GatewayError:  # a refused key too (a 401 is EngineRejected): it cannot serve
            return False
        return True

    async def count_tokens(self, request: ChatRequest, model: str) -> int | None:
        body = anthropic_upstream.count_tokens_body(request, model)
        data = await request_json(self, "POST", "/v1/messages/count_tokens", body, timeout=30)
        count = data.get("input_tokens") if isinstance(data, dict) else None
        return count if isinstance(count, int) and not isinstance(count, bool) else None

    async def chat(self, request: ChatRequest, model: str) -> ChatResult:
        body = anthropic_upstream.messages_body(request, model, stream=False)
        return anthropic_upstream.message_result(
            await request_json(self, "POST", "/v1/messages", body))

    def chat_stream(self, request: ChatRequest, model: str) -> AsyncIterator[Event]:
        return self._sse(anthropic_upstream.messages_body(request, model, stream=True))

    async def complete(self, request: CompletionRequest, model: str) -> CompletionResult:
        result = await self.chat(_as_chat(request), model)
        text = _prompt_text(request) + result.text if request.echo else result.text
        return CompletionResult(text=text, finish_reason=result.finish_reason,
                                usage=result.usage)

    def complete_stream(self, request: CompletionRequest, model: str) -> AsyncIterator[Event]:
        return self._completion_events(request, self.chat_stream(_as_chat(request), model))

    async def embed(self, request: EmbeddingRequest, model: str) -> EmbeddingResult:
        raise EngineRejected(f"{self.kind} engine at {self.endpoint} does not offer embeddings",
                             status=400)

    async def _completion_events(self, request: CompletionRequest,
                                 events: AsyncIterator[Event]) -> AsyncGenerator[Event, None]:
        if request.echo:
            yield TextDelta(_prompt_text(request))
        # chat_stream is declared an AsyncIterator but is an async generator: it has aclose.
        async with aclosing(events) as upstream:  # type: ignore[type-var]
            async for event in upstream:
                if isinstance(event, (TextDelta, Finish, Usage)):
                    yield event

    async def _sse(self, body: dict[str, Any]) -> AsyncGenerator[Event, None]:
        reader = anthropic_upstream.StreamReader()
        # aclosing: when our caller stops reading, the upstream connection closes at once.
        async with aclosing(stream_lines(self, "/v1/messages", body)) as lines:
            async for line in lines:
                if reader.stopped or not line.startswith("data:"):
                    # `event:` lines repeat data.type; after message_stop, read to the end of
                    # the body so the connection can be reused.
                    continue
                try:
                    event = json.loads(line[5:].strip())
                except ValueError:
                    raise EngineFailed(f"{self.kind} engine sent a malformed stream event",
                                       extra={"engine": self.kind}) from None
                for canonical in reader.feed(event):
                    yield canonical
        if not reader.finished:
            raise EngineFailed(f"{self.kind} engine at {self.endpoint} ended the stream early",
                               extra={"engine": self.kind})

    # --- relaying: the caller's Messages body goes upstream byte for byte, and the answer back

    def _relay_headers(self, caller: Mapping[str, str]) -> dict[str, str]:
        headers = self.request_headers()
        for name in RELAYED_HEADERS:
            if caller.get(name):
                headers[name] = caller[name]
        extra = extra_headers.get()
        return {**headers, **extra} if extra else headers

    def _refused(self, status: int, body: bytes, headers: httpx.Headers) -> None:
        if status >= 500:  # 500, 529 overloaded, ...: the upstream failed, another may not
            raise_for_status(self, status, body)
        if status >= 400:
            kept = {k: headers[k] for k in ("content-type", *RELAYED_BACK) if k in headers}
            raise VendorRejected(upstream_message(body) or f"HTTP {status}", status=status,
                                 body=body, headers=kept)

    async def relay(self, raw: bytes, caller: Mapping[str, str], *,
                    path: str = "/v1/messages") -> bytes:
        """POSTs `raw` to `path` as it is; returns the upstream's answer as it is."""
        try:
            response = await http.client().post(
                self.endpoint + path, content=raw, headers=self._relay_headers(caller),
                timeout=httpx.Timeout(self.timeout, connect=self.connect_timeout))
        except httpx.HTTPError as exc:
            raise map_transport_error(self, exc) from exc
        self._refused(response.status_code, response.content, response.headers)
        return response.content

    async def relay_stream(self, raw: bytes, caller: Mapping[str, str]
                           ) -> AsyncGenerator[bytes, None]:
        """The upstream's streamed answer to `raw`, chunk by chunk as it arrives. Closing the
        generator closes the upstream request."""
        try:
            async with http.client().stream(
                "POST", self.endpoint + "/v1/messages", content=raw,
                headers=self._relay_headers(caller),
                timeout=httpx.Timeout(self.timeout, connect=self.connect_timeout),
            ) as response:
                if response.status_code >= 400:
                    self._refused(response.status_code, await response.aread(), response.headers)
                async for chunk in response.aiter_bytes():
                    if chunk:
                        yield chunk
        except httpx.HTTPError as exc:
            raise map_transport_error(self, exc) from exc
