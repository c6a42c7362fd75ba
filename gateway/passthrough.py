"""/v1/messages to an Anthropic-speaking upstream (Anthropic itself, or a compatible server):
the caller's body goes through byte for byte (thinking blocks and their signatures,
cache_control, fields this gateway has never heard of) with its `anthropic-version` and
`anthropic-beta` headers and the server's key, and the answer or stream comes back as the
upstream sent it. Usage is read from the answer as it passes, for quotas, records and metrics."""

from __future__ import annotations

import json
from typing import Any

from django.http import HttpRequest, HttpResponse

from gateway.attempts import PING, call_first, open_stream
from gateway.dialects import anthropic_errors, anthropic_upstream
from gateway.engines.anthropic_vendor import RELAYED_HEADERS, VendorRejected
from gateway.errors import EngineFailed, GatewayError
from gateway.pipeline import Accounting
from gateway.router import Candidate
from gateway.sse import PING_FRAME, frame
from gateway.streaming import accounted_sse, sse_response


def relayable(candidates: list[Candidate]) -> bool:
    """True when every candidate speaks Anthropic's Messages API itself."""
    return bool(candidates) and all(hasattr(c.engine, "relay") for c in candidates)


def _body_for(raw: bytes, data: dict[str, Any], candidate: Candidate) -> bytes:
    if data.get("model") == candidate.model:
        return raw
    # The caller's name resolved to another id (say, without `:latest`): only then re-encode.
    return json.dumps({**data, "model": candidate.model}, ensure_ascii=False).encode()


def _refusal(acct: Accounting | None, exc: VendorRejected) -> HttpResponse:
    response = HttpResponse(exc.body, status=exc.status,
                            content_type=exc.headers.get("content-type", "application/json"))
    for name, value in exc.headers.items():
        if name != "content-type":
            response[name] = value
    if acct is not None:
        response["x-request-id"] = acct.request_id
    return response


def caller_headers(request: HttpRequest) -> dict[str, str]:
    return {name: request.headers[name] for name in RELAYED_HEADERS if name in request.headers}


async def relay_count_tokens(request: HttpRequest, data: dict[str, Any],
                             candidates: list[Candidate]) -> HttpResponse:
    """/v1/messages/count_tokens on the first upstream that answers, body and answer as they
    are (a refusal too)."""
    failure: GatewayError | None = None
    for candidate in candidates:
        try:
            body = await candidate.engine.relay(_body_for(request.body, data, candidate),
                                                caller_headers(request),
                                                path="/v1/messages/count_tokens")
        except VendorRejected as exc:
            return _refusal(None, exc)
        except GatewayError as exc:  # down: the next one may answer
            failure = exc
            continue
        return HttpResponse(body, content_type="application/json")
    assert failure is not None
    raise failure


async def relay_messages(request: HttpRequest, acct: Accounting, raw: bytes, data: dict[str, Any],
                         candidates: list[Candidate]) -> HttpResponse:
    caller = caller_headers(request)
    try:
        if data.get("stream") is True:
            return await _relay_stream(acct, raw, data, candidates, caller)
        body = await acct.watch(call_first(
            candidates, acct, lambda c: c.engine.relay(_body_for(raw, data, c), caller)))
    except VendorRejected as exc:  # already recorded as failed by acct.watch
        return _refusal(acct, exc)
    try:
        usage = json.loads(body).get("usage")
    except (ValueError, AttributeError):
        usage = None
    acct.answered(anthropic_upstream.usage_from(usage))
    await acct.finish()
    response = HttpResponse(body, content_type="application/json")
    response["x-request-id"] = acct.request_id
    return response


async def _relay_stream(acct: Accounting, raw: bytes, data: dict[str, Any],
                        candidates: list[Candidate], caller: dict[str, str]) -> HttpResponse:
    chunks = await acct.watch(open_stream(
        candidates, acct, lambda c: c.engine.relay_stream(_body_for(raw, data, c), caller)))
    tap = UsageTap(acct)

    def feed(chunk: Any) -> list[bytes]:
        if chunk is PING:
            # The upstream is slow to start. An SSE comment keeps the line open; a `ping` event
            # before the upstream's message_start would break the SDKs' event order.
            return [PING_FRAME]
        tap.feed(chunk)
        return [chunk]

    def end() -> list[bytes]:
        tap.feed(b"\n")
        if tap.reader.stopped or tap.upstream_error:
            return []
        failure = EngineFailed(f"{acct.engine} upstream ended the stream early")
        acct.failed(failure)
        return error(failure)

    def error(exc: GatewayError) -> list[bytes]:
        body = anthropic_errors.error_body(exc)
        return [frame(body, event="error")]

    body = accounted_sse(chunks, acct, feed=feed, end=end, error=error)
    return sse_response(body, acct)


class UsageTap:
    """Reads the upstream's SSE bytes as they pass (never changing them): tokens for the first
    token time, usage for accounting, and an `error` event the upstream sent."""

    def __init__(self, acct: Accounting) -> None:
        self.acct = acct
        self.reader = anthropic_upstream.StreamReader()
        self.pending = b""
        self.upstream_error = False

    def feed(self, chunk: bytes) -> None:
        self.pending += chunk
        while b"\n" in self.pending:
            line, _, self.pending = self.pending.partition(b"\n")
            if line.startswith(b"data:"):
                self._event(line[5:])

    def _event(self, data: bytes) -> None:
        try:
            event = json.loads(data)
        except ValueError:
            return
        try:
            events = self.reader.feed(event)
        except EngineFailed as exc:  # the upstream's own error event, relayed as it sent it
            self.upstream_error = True
            self.acct.failed(exc)
            return
        for item in events:
            self.acct.saw(item)
