"""HTTP plumbing shared by the drivers: requests with bounded timeouts, and upstream failures
mapped to the gateway's error types. Engines at http:// endpoints are reached through the lean
keep-alive client in gateway/engines/http11.py; https:// ones through httpx (gateway/http.py)."""

from __future__ import annotations

import json
from collections.abc import AsyncGenerator, Mapping
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

import httpx
import orjson

from gateway import http
from gateway.engines import http11
from gateway.errors import EngineFailed, EngineRejected, EngineTimeout, EngineUnreachable

if TYPE_CHECKING:
    from gateway.engines.base import Engine


# Extra headers for the engine requests made in the current context: the W3C trace context of
# the request being served (set around each attempt by gateway/observe.py).
extra_headers: ContextVar[Mapping[str, str] | None] = ContextVar("flock_engine_headers",
                                                                 default=None)


def _headers(engine: Engine) -> dict[str, str]:
    headers = engine.request_headers()
    extra = extra_headers.get()
    return {**headers, **extra} if extra else headers


def _timeout(engine: Engine, read: float | None = None) -> httpx.Timeout:
    return httpx.Timeout(read or engine.timeout, connect=engine.connect_timeout)


def upstream_message(body: bytes) -> str:
    """The error text an engine put in its body, whatever its shape."""
    try:
        data = json.loads(body)
    except ValueError:
        return body.decode("utf-8", "replace").strip()[:500]
    if isinstance(data, dict):
        error = data.get("error", data.get("detail", data.get("message")))
        if isinstance(error, dict):
            return str(error.get("message") or error)[:500]
        if error:
            return str(error)[:500]
    return str(data)[:500]


def raise_for_status(engine: Engine, status: int, body: bytes) -> None:
    if status < 400:
        return
    message = upstream_message(body) or f"HTTP {status}"
    if status >= 500:
        raise EngineFailed(f"{engine.kind} engine at {engine.endpoint} failed: {message}",
                           extra={"engine": engine.kind, "upstream_status": status})
    raise EngineRejected(message, status=status)


def map_transport_error(engine: Engine, exc: httpx.HTTPError | http11.TransportError) -> Exception:
    if isinstance(exc, (httpx.ConnectError, httpx.ConnectTimeout, http11.ConnectFailed)):
        return EngineUnreachable(engine=engine.kind, endpoint=engine.endpoint,
                                 hint=engine.start_hint, detail=str(exc)
                                 if isinstance(exc, http11.ConnectFailed) else type(exc).__name__)
    if isinstance(exc, (httpx.TimeoutException, http11.ReadTimeout)):
        return EngineTimeout(f"{engine.kind} engine at {engine.endpoint} timed out",
                             extra={"engine": engine.kind})
    return EngineFailed(f"{engine.kind} engine at {engine.endpoint} broke the connection "
                        f"({exc if isinstance(exc, http11.TransportError) else type(exc).__name__})",
                        extra={"engine": engine.kind})


def _plain(engine: Engine) -> bool:
    return engine.endpoint.startswith("http://")


def _body(body: Any) -> bytes:
    return b"" if body is None else orjson.dumps(body)


def _json_headers(engine: Engine, body: Any) -> dict[str, str]:
    headers = _headers(engine)
    if body is not None:
        headers = {"content-type": "application/json", **headers}
    return headers


def _not_json(engine: Engine) -> EngineFailed:
    return EngineFailed(f"{engine.kind} engine at {engine.endpoint} sent a body that is not JSON",
                        extra={"engine": engine.kind})


async def request_json(engine: Engine, method: str, path: str, body: Any = None, *,
                       timeout: float | None = None) -> Any:
    if not _plain(engine):
        return await _request_json_httpx(engine, method, path, body, timeout=timeout)
    try:
        response = await http11.request(
            method, engine.endpoint + path, headers=_json_headers(engine, body), body=_body(body),
            connect_timeout=engine.connect_timeout, read_timeout=timeout or engine.timeout)
        content = await response.read()
    except http11.TransportError as exc:
        raise map_transport_error(engine, exc) from exc
    raise_for_status(engine, response.status_code, content)
    try:
        return orjson.loads(content)
    except orjson.JSONDecodeError as exc:
        raise _not_json(engine) from exc


async def _request_json_httpx(engine: Engine, method: str, path: str, body: Any, *,
                              timeout: float | None) -> Any:
    try:
        response = await http.client().request(
            method, engine.endpoint + path, json=body, headers=_headers(engine),
            timeout=_timeout(engine, timeout))
    except httpx.HTTPError as exc:
        raise map_transport_error(engine, exc) from exc
    raise_for_status(engine, response.status_code, response.content)
    try:
        return response.json()
    except ValueError as exc:
        raise _not_json(engine) from exc


async def stream_lines(engine: Engine, path: str, body: Any) -> AsyncGenerator[str, None]:
    """Non-empty lines of a streamed response. Closing the generator closes the upstream
    connection, which is how an engine learns the caller went away."""
    if not _plain(engine):
        async for line in _stream_lines_httpx(engine, path, body):
            yield line
        return
    response = None
    try:
        response = await http11.request(
            "POST", engine.endpoint + path, headers=_json_headers(engine, body), body=_body(body),
            connect_timeout=engine.connect_timeout, read_timeout=engine.timeout)
        if response.status_code >= 400:
            raise_for_status(engine, response.status_code, await response.read())
        async for line in response.lines():
            yield line
    except http11.TransportError as exc:
        raise map_transport_error(engine, exc) from exc
    finally:
        if response is not None:
            response.close()  # at the end, kept for the next request; cut short, dropped


async def _stream_lines_httpx(engine: Engine, path: str, body: Any) -> AsyncGenerator[str, None]:
    try:
        async with http.client().stream(
            "POST", engine.endpoint + path, json=body, headers=_headers(engine),
            timeout=_timeout(engine),
        ) as response:
            if response.status_code >= 400:
                raise_for_status(engine, response.status_code, await response.aread())
            async for line in response.aiter_lines():
                if line:
                    yield line
    except httpx.HTTPError as exc:
        raise map_transport_error(engine, exc) from exc
