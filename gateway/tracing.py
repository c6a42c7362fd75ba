"""OpenTelemetry traces over OTLP/HTTP, on when FLOCK_OTLP_ENDPOINT (observability.otlp_endpoint)
is set.

One trace per request, in the Go original's shape: the Django request span (from
opentelemetry-instrumentation-django), `router.Chat` covering the whole stream, one
`router.Chat.attempt` per candidate tried, and `<engine>.Chat`, the engine call, with the prompt
and completion token counts. Engines get the engine call's W3C `traceparent`.

Off (the default), nothing here runs: `tracer()` is None, the SDK is never imported and no span
object is created; the request path only checks that one global."""

from __future__ import annotations

import logging
import os
import socket
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.trace import Span, Tracer

    from flocksite.config import FlockConfig

log = logging.getLogger("flock.gateway")

MIDDLEWARE = "gateway.tracing_middleware.DjangoRequestSpan"
EXCLUDED_URLS = "healthz,readyz,metrics"
OPERATIONS = {"chat.completions": "Chat", "messages": "Chat", "completions": "Complete",
              "embeddings": "Embed"}
GEN_AI_OPERATIONS = {"Chat": "chat", "Complete": "text_completion", "Embed": "embeddings"}

_state: dict[str, Any] = {"provider": None, "tracer": None}


def tracer() -> Tracer | None:
    """The gateway's tracer, or None when tracing is off."""
    return _state["tracer"]


def provider() -> TracerProvider | None:
    return _state["provider"]


def tracing_configure(cfg: FlockConfig) -> bool:
    """Starts exporting to cfg.otlp_endpoint and adds the Django request span; call before the
    ASGI handler loads its middleware. Does nothing (returns False) without an endpoint."""
    if not cfg.otlp_endpoint or _state["tracer"] is not None:
        return _state["tracer"] is not None
    from django.conf import settings
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.instrumentation.django import DjangoInstrumentor
    from opentelemetry.metrics import NoOpMeterProvider
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    resource = Resource.create({"service.name": "flock",
                                "service.instance.id": f"{socket.gethostname()}:{os.getpid()}"})
    tracer_provider = TracerProvider(resource=resource)
    tracer_provider.add_span_processor(
        BatchSpanProcessor(OTLPSpanExporter(endpoint=cfg.otlp_endpoint, timeout=5)))
    DjangoInstrumentor().instrument(tracer_provider=tracer_provider,
                                    meter_provider=NoOpMeterProvider(),
                                    excluded_urls=EXCLUDED_URLS)
    # The instrumentation's own middleware is sync-only (a thread hop per request under ASGI);
    # ours is the same class made async.
    settings.MIDDLEWARE = [MIDDLEWARE if name == DjangoInstrumentor._opentelemetry_middleware
                           else name for name in settings.MIDDLEWARE]
    _state.update(provider=tracer_provider, tracer=tracer_provider.get_tracer("flock.gateway"))
    log.info("tracing: exporting spans to %s", cfg.redacted()["observability"]["otlp_endpoint"])
    return True


def tracing_shutdown() -> None:
    """Flushes and stops exporting, and takes the Django request span out again."""
    tracer_provider = _state["provider"]
    if tracer_provider is None:
        return
    from django.conf import settings
    from opentelemetry.instrumentation.django import DjangoInstrumentor

    _state.update(provider=None, tracer=None)
    settings.MIDDLEWARE = [name for name in settings.MIDDLEWARE if name != MIDDLEWARE]
    DjangoInstrumentor().uninstrument()
    tracer_provider.shutdown()


def operation(endpoint: str) -> str:
    return OPERATIONS.get(endpoint, "Chat")


def span_start(name: str, parent: Span | None = None, *, client: bool = False,
               attributes: dict[str, Any] | None = None) -> Span | None:
    """A span under `parent` (or under the current context, the Django request span)."""
    found = _state["tracer"]
    if found is None:
        return None
    from opentelemetry.trace import SpanKind, set_span_in_context

    context = set_span_in_context(parent) if parent is not None else None
    return found.start_span(name, context=context, attributes=attributes,
                            kind=SpanKind.CLIENT if client else SpanKind.INTERNAL)


def span_end(span: Span | None, *, error: str = "", attributes: dict[str, Any] | None = None
             ) -> None:
    if span is None:
        return
    from opentelemetry.trace import Status, StatusCode

    if attributes:
        span.set_attributes({k: v for k, v in attributes.items() if v is not None})
    if error:
        span.set_attribute("error.type", error)
        span.set_status(Status(StatusCode.ERROR, error))
    span.end()


def traceparent_headers(span: Span) -> dict[str, str]:
    """W3C trace context headers naming `span` as the parent."""
    from opentelemetry.trace import set_span_in_context
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

    carrier: dict[str, str] = {}
    TraceContextTextMapPropagator().inject(carrier, context=set_span_in_context(span))
    return carrier
