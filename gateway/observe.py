"""Where the request path reports to metrics and traces: three hooks in Accounting (started,
recorded) and one per attempt (gateway.attempts). Each costs a few in-process counter updates;
with tracing off no span is created, and the caller's W3C trace context, when it sent one, is
passed to the engine unchanged."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import aclosing
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from gateway import metrics, tracing
from gateway.canonical import Usage
from gateway.engines.transport import extra_headers

if TYPE_CHECKING:
    from opentelemetry.trace import Span

    from gateway.pipeline import Accounting
    from gateway.router import Candidate

T = TypeVar("T")


@dataclass
class Observation:
    """What the hooks keep about one request."""

    caller_trace: Mapping[str, str] | None = None  # the caller's traceparent, with tracing off
    route_span: Span | None = None
    attempts: int = 0
    last_node: str = ""


def request_started(acct: Accounting, request: Any) -> Observation:
    meta = getattr(request, "META", None) or {}
    if tracing.tracer() is None:
        parent = meta.get("HTTP_TRACEPARENT")
        if not parent:
            return Observation()
        state = meta.get("HTTP_TRACESTATE")
        return Observation(caller_trace={"traceparent": parent, **({"tracestate": state}
                                                                    if state else {})})
    op = tracing.operation(acct.endpoint)
    span = tracing.span_start(f"router.{op}", attributes={
        "flock.request_id": acct.request_id, "flock.protocol": acct.protocol,
        "flock.endpoint": acct.endpoint, "flock.stream": acct.stream,
        "gen_ai.request.model": acct.model})
    return Observation(route_span=span)


def request_recorded(acct: Accounting, usage: Usage, latency: float, ttft: float | None) -> None:
    metrics.request_recorded(acct, usage, latency, ttft)
    seen = acct.observed
    if seen is None or seen.route_span is None:
        return
    tracing.span_end(seen.route_span, error=acct.error_type if acct.outcome == "error" else "",
                     attributes={
                         "gen_ai.response.model": acct.model, "flock.node": acct.node,
                         "flock.engine": acct.engine, "flock.outcome": acct.outcome,
                         "flock.attempts": seen.attempts,
                         "http.response.status_code": acct.status_code,
                         "gen_ai.usage.input_tokens": usage.prompt_tokens,
                         "gen_ai.usage.output_tokens": usage.completion_tokens,
                         "flock.ttft_ms": int(ttft * 1000) if ttft is not None else None})


class _Attempt:
    """One candidate tried: counted in flight while it runs, traced when tracing is on."""

    def __init__(self, acct: Accounting, candidate: Candidate) -> None:
        seen = acct.observed
        if seen is None:
            seen = acct.observed = Observation()
        if seen.attempts:
            metrics.fallback(seen.last_node)
        seen.attempts += 1
        seen.last_node = candidate.node
        self.acct, self.candidate = acct, candidate
        self.gauge = metrics.inflight(candidate.node, candidate.engine.kind)
        self.gauge.inc()
        self.span: Span | None = None
        self.engine_span: Span | None = None
        self.headers = seen.caller_trace
        if seen.route_span is not None:
            self._trace(seen.route_span, seen.attempts)

    def _trace(self, parent: Span, number: int) -> None:
        op = tracing.operation(self.acct.endpoint)
        kind, model = self.candidate.engine.kind, self.candidate.model
        self.span = tracing.span_start(f"router.{op}.attempt", parent, attributes={
            "flock.attempt": number, "flock.node": self.candidate.node, "flock.engine": kind,
            "gen_ai.request.model": model})
        self.engine_span = tracing.span_start(f"{kind}.{op}", self.span, client=True, attributes={
            "gen_ai.system": kind, "gen_ai.operation.name": tracing.GEN_AI_OPERATIONS[op],
            "gen_ai.request.model": model, "server.address": self.candidate.engine.endpoint})
        if self.engine_span is not None:
            self.headers = tracing.traceparent_headers(self.engine_span)

    def end(self, error: BaseException | str | None, usage: Usage | None = None) -> None:
        self.gauge.dec()
        if self.span is None:
            return
        outcome, kind = "ok", ""
        if isinstance(error, (GeneratorExit, asyncio.CancelledError)):
            outcome = "aborted"
        elif isinstance(error, str):
            outcome, kind = "error", error
        elif error is not None:
            outcome, kind = "error", getattr(error, "code", None) or type(error).__name__
        tokens = {}
        if usage is not None:
            tokens = {"gen_ai.usage.input_tokens": usage.prompt_tokens,
                      "gen_ai.usage.output_tokens": usage.completion_tokens}
        tracing.span_end(self.engine_span, error=kind, attributes=tokens)
        tracing.span_end(self.span, error=kind, attributes={"flock.outcome": outcome})


def _result_usage(result: Any) -> Usage | None:
    usage = getattr(result, "usage", None)
    if isinstance(usage, Usage):
        return usage
    prompt = getattr(result, "prompt_tokens", None)  # embeddings
    return Usage(prompt_tokens=prompt) if isinstance(prompt, int) else None


async def attempt_call(acct: Accounting, candidate: Candidate,
                       call: Callable[[Candidate], Awaitable[T]]) -> T:
    """`call(candidate)`, as one observed attempt."""
    attempt = _Attempt(acct, candidate)
    token = extra_headers.set(attempt.headers) if attempt.headers else None
    try:
        result = await call(candidate)
    except BaseException as exc:
        attempt.end(exc)
        raise
    finally:
        if token is not None:
            extra_headers.reset(token)
    attempt.end(None, _result_usage(result))
    return result


async def attempt_stream(acct: Accounting, candidate: Candidate,
                         start: Callable[[Candidate], AsyncIterator[Any]]) -> AsyncIterator[Any]:
    """The events of `start(candidate)`, as one observed attempt (it ends with the stream)."""
    attempt = _Attempt(acct, candidate)
    usage: Usage | None = None
    error: BaseException | str | None = None
    try:
        async with aclosing(start(candidate)) as stream:  # type: ignore[type-var]
            # The engine request goes out during the first step: the headers apply to it only.
            token = extra_headers.set(attempt.headers) if attempt.headers else None
            try:
                first = await stream.__anext__()
            except StopAsyncIteration:
                error = "empty_stream"
                return
            finally:
                if token is not None:
                    extra_headers.reset(token)
            if isinstance(first, Usage):
                usage = first
            yield first
            async for event in stream:
                if isinstance(event, Usage):
                    usage = event
                yield event
    except BaseException as exc:
        error = exc
        raise
    finally:
        if error is None and usage is None and attempt.span is not None:
            usage = acct.final_usage()
        attempt.end(error, usage if error is None else None)
