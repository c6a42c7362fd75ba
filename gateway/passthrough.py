"""Anthropic-to-Anthropic pass-through: a Messages request for a Claude model goes to the
Anthropic API byte for byte (thinking signatures, cache_control and beta fields intact), with the
server's key instead of the caller's, and the answer comes back unchanged while we read the usage
out of it for billing."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import httpx
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse

from gateway import http
from gateway.canonical import Usage
from gateway.engines.base import Engine
from gateway.engines.transport import map_transport_error
from gateway.errors import EngineError, GatewayError
from gateway.pipeline import Accounting

FORWARDED_HEADERS = ("anthropic-version", "anthropic-beta")


def upstream_headers(request: HttpRequest, engine: Engine) -> dict[str, str]:
    headers = engine.request_headers()
    for name in FORWARDED_HEADERS:
        if request.headers.get(name):
            headers[name] = request.headers[name]
    return headers


class UsageReader:
    """Follows an Anthropic SSE stream line by line (events may be split anywhere) and keeps the
    usage it reports: input and cache tokens in message_start, cumulative output in message_delta."""

    def __init__(self) -> None:
        self.buffer = b""
        self.input = self.output = self.cache_read = self.cache_write = 0
        self.error: str | None = None
        self.saw_output = False

    def feed(self, chunk: bytes) -> None:
        self.buffer += chunk
        *lines, self.buffer = self.buffer.split(b"\n")
        for line in lines:
            if line.startswith(b"data:"):
                self._event(line[5:].strip())

    def _event(self, payload: bytes) -> None:
        try:
            data = json.loads(payload)
        except ValueError:
            return
        kind = data.get("type")
        usage = (data.get("message") or {}).get("usage") if kind == "message_start" else data.get("usage")
        if isinstance(usage, dict):
            self.input = usage.get("input_tokens") or self.input
            self.output = usage.get("output_tokens") or self.output
            self.cache_read = usage.get("cache_read_input_tokens") or self.cache_read
            self.cache_write = usage.get("cache_creation_input_tokens") or self.cache_write
        if kind == "content_block_delta":
            self.saw_output = True
        if kind == "error":
            self.error = str((data.get("error") or {}).get("message") or "upstream error")

    def usage(self) -> Usage:
        cached = self.cache_read
        return Usage(prompt_tokens=self.input + self.cache_read + self.cache_write,
                     completion_tokens=self.output, cached_tokens=cached)


def usage_of_message(body: bytes) -> Usage | None:
    try:
        usage = json.loads(body).get("usage") or {}
    except (ValueError, AttributeError):
        return None
    read, write = usage.get("cache_read_input_tokens") or 0, usage.get("cache_creation_input_tokens") or 0
    return Usage(prompt_tokens=(usage.get("input_tokens") or 0) + read + write,
                 completion_tokens=usage.get("output_tokens") or 0, cached_tokens=read)


async def forward(request: HttpRequest, acct: Accounting, engine: Engine, *,
                  stream: bool) -> HttpResponse:
    """Sends the caller's exact body to the Anthropic API and relays the answer."""
    url = engine.endpoint + "/v1/messages"
    headers = upstream_headers(request, engine)
    timeout = httpx.Timeout(engine.timeout, connect=engine.connect_timeout)
    if not stream:
        try:
            response = await http.client().post(url, content=request.body, headers=headers,
                                                timeout=timeout)
        except httpx.HTTPError as exc:
            raise map_transport_error(engine, exc) from exc
        if response.status_code >= 500:
            acct.failed(EngineError(f"Anthropic answered {response.status_code}"))
        elif response.status_code >= 400:
            acct.failed(GatewayError(f"Anthropic answered {response.status_code}"))
            acct.status_code = response.status_code
        else:
            acct.answered(usage_of_message(response.content) or Usage())
        await acct.finish()
        return _relay(response.status_code, response.content, response.headers)
    upstream = http.client().stream("POST", url, content=request.body, headers=headers,
                                    timeout=timeout)
    try:
        response = await upstream.__aenter__()
    except httpx.HTTPError as exc:
        raise map_transport_error(engine, exc) from exc
    if response.status_code >= 400:
        body = await response.aread()
        await upstream.__aexit__(None, None, None)
        acct.failed(GatewayError(f"Anthropic answered {response.status_code}"))
        acct.status_code = response.status_code
        await acct.finish()
        return _relay(response.status_code, body, response.headers)
    result = StreamingHttpResponse(_relay_stream(upstream, response, acct),
                                   content_type="text/event-stream; charset=utf-8")
    result["cache-control"] = "no-cache"
    result["x-request-id"] = acct.request_id
    return result


async def _relay_stream(upstream, response: httpx.Response, acct: Accounting) -> AsyncIterator[bytes]:
    reader = UsageReader()
    try:
        async for chunk in response.aiter_raw():
            reader.feed(chunk)
            if reader.saw_output and acct.first_token_at is None:
                acct.saw_first_token()
            yield chunk
        if reader.error:
            acct.failed(GatewayError(reader.error))
    except (asyncio.CancelledError, GeneratorExit) as exc:
        acct.failed(exc, aborted=True)
        raise
    except httpx.HTTPError as exc:
        acct.failed(EngineError(f"the Anthropic stream broke ({type(exc).__name__})"))
    finally:
        acct.usage = reader.usage()
        await upstream.__aexit__(None, None, None)
        await acct.finish()


def _relay(status: int, body: bytes, headers: httpx.Headers) -> HttpResponse:
    response = HttpResponse(body, status=status,
                            content_type=headers.get("content-type", "application/json"))
    for name in ("retry-after", "anthropic-ratelimit-requests-remaining",
                 "anthropic-ratelimit-tokens-remaining"):
        if name in headers:
            response[name] = headers[name]
    return response
