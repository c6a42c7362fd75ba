"""Limits on what a caller may send, checked before Django reads a byte of it: the request line
and headers (431), the body's size (413) and the time the body takes to arrive (408, for clients
that trickle bytes to hold connections open). Each is answered in the caller's dialect.

Two layers, because servers differ. The ASGI middleware below works under any server: it reads
the body itself under both limits and hands Django a body already complete. Daphne (what
`manage.py up` runs) receives the whole body before it calls the application, with no bound on
its size or duration, so `daphne_limits_install` enforces the same limits in its request
objects, as the bytes arrive."""

from __future__ import annotations

import asyncio
import json
import logging
import sys

from django.conf import settings

from gateway.errors import GatewayError, RequestTooLarge
from gateway.responses import error_body

log = logging.getLogger("flock.gateway")
SERVER_HEADER_BYTES = 64 * 1024  # what daphne's HTTP layer accepts, so that ours answers first


class HeadersTooLarge(GatewayError):
    status = 431
    kind = "invalid_request"


class BodyTooSlow(GatewayError):
    status = 408
    kind = "invalid_request"


def dialect_for(path: str) -> str:
    return "anthropic" if path.startswith("/v1/messages") else "openai"


def _too_large(limit: int) -> RequestTooLarge:
    return RequestTooLarge(f"Request body is larger than the limit of {limit} bytes "
                           "(FLOCK_MAX_BODY_MB).")


def _too_slow(seconds: float) -> BodyTooSlow:
    return BodyTooSlow(f"The request body did not arrive within {seconds:g} s "
                       "(FLOCK_BODY_TIMEOUT).")


def _headers_too_large(size: int, limit: int) -> HeadersTooLarge:
    return HeadersTooLarge(f"Request headers are {size} bytes; the limit is {limit} bytes "
                           "(FLOCK_MAX_HEADER_KB).")


def refusal(path: str, error: GatewayError) -> tuple[int, bytes]:
    return error.status, json.dumps(error_body(dialect_for(path), error)).encode()


# --- the ASGI layer ------------------------------------------------------------------------------

class _Disconnected(Exception):
    pass


async def _refuse(send, path: str, error: GatewayError) -> None:
    status, body = refusal(path, error)
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode()), (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": body})


async def _read_body(receive, limit: int) -> bytes:
    chunks, size = [], 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise _Disconnected
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise RequestTooLarge("")
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


def limit_requests(app):
    """ASGI middleware: refuses oversized headers and bodies and slow bodies, then passes the
    request on with its body already read."""

    async def application(scope, receive, send):
        if scope["type"] != "http":
            return await app(scope, receive, send)
        cfg = settings.FLOCK
        path = scope.get("path", "")
        header_bytes = len(scope.get("raw_path") or path) + sum(
            len(k) + len(v) + 4 for k, v in scope["headers"])
        if header_bytes > cfg.max_header_bytes:
            return await _refuse(send, path, _headers_too_large(header_bytes, cfg.max_header_bytes))
        length = next((v for k, v in scope["headers"] if k == b"content-length"), None)
        if length is not None and length.isdigit() and int(length) > cfg.max_body_bytes:
            return await _refuse(send, path, _too_large(cfg.max_body_bytes))
        try:
            async with asyncio.timeout(cfg.body_timeout_seconds):
                body = await _read_body(receive, cfg.max_body_bytes)
        except TimeoutError:
            return await _refuse(send, path, _too_slow(cfg.body_timeout_seconds))
        except RequestTooLarge:
            return await _refuse(send, path, _too_large(cfg.max_body_bytes))
        except _Disconnected:
            return None
        delivered = False

        async def replay():
            nonlocal delivered
            if not delivered:
                delivered = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()  # what comes after the body: the client leaving

        return await app(scope, replay, send)

    return application


# --- daphne --------------------------------------------------------------------------------------

def _raw_refusal(request, error: GatewayError) -> None:
    """Answers straight on the connection and closes it: the request never reaches the app."""
    if getattr(request, "_flock_refused", False):
        return
    request._flock_refused = True
    _cancel_deadline(request)
    status, body = refusal(getattr(request, "_flock_path", ""), error)
    reason = {408: b"Request Timeout", 413: b"Content Too Large"}.get(status, b"Bad Request")
    head = (b"HTTP/1.1 %d %s\r\ncontent-type: application/json\r\ncontent-length: %d\r\n"
            b"connection: close\r\n\r\n" % (status, reason, len(body)))
    transport = request.channel.transport if request.channel else None
    if transport is not None:
        transport.write(head + body)
        transport.loseConnection()


def _cancel_deadline(request) -> None:
    call = getattr(request, "_flock_deadline", None)
    if call is not None and call.active():
        call.cancel()


def daphne_limits_install() -> None:
    """Bounds daphne's request bodies (size and arrival time) and lets headers up to
    SERVER_HEADER_BYTES reach the ASGI layer, which answers in the caller's dialect. A no-op
    outside daphne."""
    if "daphne.server" not in sys.modules:
        return
    from daphne.http_protocol import WebRequest
    from twisted.web.http import HTTPChannel

    if getattr(WebRequest, "_flock_limits", False):
        return
    WebRequest._flock_limits = True
    HTTPChannel.totalHeadersSize = max(HTTPChannel.totalHeadersSize, SERVER_HEADER_BYTES)
    HTTPChannel.MAX_LENGTH = max(HTTPChannel.MAX_LENGTH, SERVER_HEADER_BYTES)
    got_length, content_chunk = WebRequest.gotLength, WebRequest.handleContentChunk
    request_received, connection_lost = WebRequest.requestReceived, WebRequest.connectionLost

    def gotLength(self, length):
        got_length(self, length)
        from twisted.internet import reactor

        cfg = settings.FLOCK
        self._flock_path = (getattr(self.channel, "_path", b"") or b"").decode("latin-1")
        self._flock_received = 0
        if length is not None and length > cfg.max_body_bytes:
            _raw_refusal(self, _too_large(cfg.max_body_bytes))
        elif length != 0:  # a body is coming (None: chunked, of unknown length)
            self._flock_deadline = reactor.callLater(
                cfg.body_timeout_seconds, _raw_refusal, self, _too_slow(cfg.body_timeout_seconds))

    def handleContentChunk(self, data):
        if getattr(self, "_flock_refused", False):
            return
        self._flock_received = getattr(self, "_flock_received", 0) + len(data)
        if self._flock_received > settings.FLOCK.max_body_bytes:
            _raw_refusal(self, _too_large(settings.FLOCK.max_body_bytes))
            return
        content_chunk(self, data)

    def requestReceived(self, command, path, version):
        _cancel_deadline(self)
        if getattr(self, "_flock_refused", False):
            return None
        return request_received(self, command, path, version)

    def connectionLost(self, reason):
        _cancel_deadline(self)
        return connection_lost(self, reason)

    WebRequest.gotLength = gotLength
    WebRequest.handleContentChunk = handleContentChunk
    WebRequest.requestReceived = requestReceived
    WebRequest.connectionLost = connectionLost
