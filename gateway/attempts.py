"""Trying candidates in order. Before an engine has produced anything, its failure moves the
request to the next candidate; errors caused by the request itself do not. While an engine is slow
to produce its first event, a stream yields PING markers so the caller can keep the connection
alive (Anthropic `ping` events, SSE comments)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TypeVar

from gateway import balancing, observe
from gateway.canonical import Event
from gateway.errors import EngineError, EngineFailed, EngineUnreachable
from gateway.pipeline import Accounting
from gateway.router import Candidate

T = TypeVar("T")
PING_SECONDS = 2.0


class _Ping:
    def __repr__(self) -> str:
        return "PING"


PING = _Ping()


async def call_first(candidates: list[Candidate], acct: Accounting,
                     call: Callable[[Candidate], Awaitable[T]]) -> T:
    """Runs `call` on each candidate until one succeeds."""
    last: EngineError | None = None
    for candidate in candidates:
        acct.served_by(candidate)
        try:
            async with balancing.outstanding(candidate):
                return await observe.attempt_call(acct, candidate, call)
        except EngineError as exc:
            await _failed(candidate, exc)
            last = exc
    assert last is not None
    raise last


async def _failed(candidate: Candidate, exc: EngineError) -> None:
    if isinstance(exc, EngineUnreachable):
        await balancing.note_unreachable(candidate)


async def _first_event(stream: AsyncIterator[Event], kind: str) -> AsyncIterator[Event | _Ping]:
    """Waits for the stream's first event, yielding PING every PING_SECONDS meanwhile."""
    task = asyncio.ensure_future(stream.__anext__())
    try:
        while True:
            done, _ = await asyncio.wait({task}, timeout=PING_SECONDS)
            if done:
                try:
                    first = task.result()
                except StopAsyncIteration:
                    raise EngineFailed(f"{kind} engine returned an empty stream") from None
                yield first
                return
            yield PING
    finally:
        if not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task


async def candidate_stream(candidates: list[Candidate], acct: Accounting,
                           start: Callable[[Candidate], AsyncIterator[Event]]
                           ) -> AsyncIterator[Event | _Ping]:
    """Events from the first candidate that produces one, with PINGs while waiting."""
    last: EngineError | None = None
    for candidate in candidates:
        acct.served_by(candidate)
        stream = observe.attempt_stream(acct, candidate, start)
        try:
            async with balancing.outstanding(candidate):
                try:
                    async with contextlib.aclosing(_first_event(stream, candidate.engine.kind)) \
                            as first:
                        async for item in first:
                            yield item
                except EngineError as exc:
                    await _failed(candidate, exc)
                    last = exc
                    continue
                async for event in stream:
                    yield event
                return
        finally:
            await stream.aclose()  # type: ignore[attr-defined]
    assert last is not None
    raise last


async def open_stream(candidates: list[Candidate], acct: Accounting,
                      start: Callable[[Candidate], AsyncIterator[Event]], *,
                      patience: float = PING_SECONDS) -> AsyncIterator[Event | _Ping]:
    """Starts the stream and waits up to `patience` seconds for its first event, so that fast
    failures still become a proper HTTP error status; a slower engine gets its answer streamed
    with PINGs first, and any later failure arrives as an error event."""
    stream = candidate_stream(candidates, acct, start)
    head: list[Event | _Ping] = []
    deadline = time.monotonic() + patience
    try:
        while True:
            item = await stream.__anext__()
            head.append(item)
            if item is not PING or time.monotonic() >= deadline:
                break
    except StopAsyncIteration:
        pass
    except BaseException:
        await stream.aclose()
        raise
    return _prepend(head, stream)


async def _prepend(head: list, rest: AsyncIterator) -> AsyncIterator:
    try:
        for item in head:
            yield item
        async for item in rest:
            yield item
    finally:
        await rest.aclose()  # type: ignore[attr-defined]
