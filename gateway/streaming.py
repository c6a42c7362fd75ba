"""Turning a canonical event stream into an SSE response that accounts for itself: usage is
recorded however the stream ends (finished, failed mid-way, or the client hung up), and a client
that hangs up closes the upstream request."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable, Iterable

from django.http import StreamingHttpResponse

from gateway.canonical import Event
from gateway.errors import GatewayError
from gateway.pipeline import Accounting

log = logging.getLogger("flock.gateway")


def sse_response(body: AsyncIterator[bytes], acct: Accounting) -> StreamingHttpResponse:
    response = StreamingHttpResponse(body, content_type="text/event-stream; charset=utf-8")
    response["cache-control"] = "no-cache"
    response["x-accel-buffering"] = "no"
    response["x-request-id"] = acct.request_id
    return response


async def accounted_sse(
    events: AsyncIterator[Event],
    acct: Accounting,
    *,
    feed: Callable[[Event], Iterable[bytes]],
    end: Callable[[], Iterable[bytes]],
    error: Callable[[GatewayError], Iterable[bytes]],
    begin: Callable[[], Iterable[bytes]] | None = None,
) -> AsyncIterator[bytes]:
    """Renders `events` through the dialect's `begin`/`feed`/`end`/`error` framers."""
    try:
        if begin is not None:
            for frame in begin():
                yield frame
        async for event in events:
            acct.saw(event)
            for frame in feed(event):
                yield frame
        for frame in end():
            yield frame
    except GatewayError as exc:
        acct.failed(exc)
        log.warning("stream %s failed mid-way: %s", acct.request_id, exc.message)
        for frame in error(exc):
            yield frame
    except (asyncio.CancelledError, GeneratorExit) as exc:
        acct.failed(exc, aborted=True)
        raise
    except Exception as exc:
        acct.failed(exc)
        log.exception("stream %s crashed", acct.request_id)
        for frame in error(GatewayError("The gateway failed while streaming the answer.")):
            yield frame
    finally:
        await events.aclose()  # type: ignore[attr-defined]
        await acct.finish()
