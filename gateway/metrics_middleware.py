"""django-prometheus's request metrics (django_http_*), without the thread hops.

Its middlewares are sync-style: under ASGI, Django would run each of their hooks through
sync_to_async, a trip to a worker thread and back, several times per request. Their hooks only
bump in-process counters, so these subclasses call them inline from async code."""

from __future__ import annotations

from timeit import default_timer

from asgiref.sync import markcoroutinefunction
from django_prometheus import middleware as base

from gateway.metrics import series


class PrometheusBeforeMiddleware(base.PrometheusBeforeMiddleware):
    sync_capable = False
    async_capable = True

    async def __call__(self, request):
        self.process_request(request)
        response = await self.get_response(request)
        return self.process_response(request, response)


class PrometheusAfterMiddleware(base.PrometheusAfterMiddleware):
    sync_capable = False
    async_capable = True

    async def __call__(self, request):
        self.process_request(request)
        response = await self.get_response(request)
        return self.process_response(request, response)

    async def process_view(self, request, view_func, *view_args, **view_kwargs):
        return super().process_view(request, view_func, *view_args, **view_kwargs)

    async def process_template_response(self, request, response):
        return super().process_template_response(request, response)

    async def process_exception(self, request, exception):
        return super().process_exception(request, exception)


_METHODS = frozenset(("GET", "HEAD", "POST", "PUT", "DELETE", "TRACE", "OPTIONS", "CONNECT",
                      "PATCH"))


class APIRequestMetrics:
    """The same django_http_* families as the pair above, recorded by one middleware for the API
    routes (settings.API_MIDDLEWARE), with each labelled series looked up once per process
    rather than on every request: the pair cost a tenth of a request's CPU. It takes the
    outer place, so both latency histograms time the whole request."""

    async_capable = True
    sync_capable = False

    def __init__(self, get_response) -> None:
        self.get_response = get_response
        self.metrics = base.Metrics.get_instance()
        markcoroutinefunction(self)

    async def __call__(self, request):
        m = self.metrics
        started = default_timer()
        m.requests_total.inc()
        method = request.method if request.method in _METHODS else "<invalid method>"
        transport = "https" if request.is_secure() else "http"
        series(m.requests_by_method, method).inc()
        series(m.requests_by_transport, transport).inc()
        headers = request.META
        if headers.get("HTTP_X_REQUESTED_WITH") == "XMLHttpRequest":
            m.requests_ajax.inc()
        m.requests_body_bytes.observe(int(headers.get("CONTENT_LENGTH") or 0))
        request.prometheus_after_middleware_event = started
        response = await self.get_response(request)
        match = getattr(request, "resolver_match", None)
        view = (match.view_name if match is not None else None) or "<unnamed view>"
        if match is not None:
            series(m.requests_by_view_transport_method, view, transport, method).inc()
        status = str(response.status_code)
        series(m.responses_by_status, status).inc()
        series(m.responses_by_status_view_method, status, view, method).inc()
        series(m.responses_by_charset, str(response.charset)).inc()
        if response.streaming:
            m.responses_streaming.inc()
        else:
            m.responses_body_bytes.observe(len(response.content))
        elapsed = default_timer() - started
        series(m.requests_latency_by_view_method, view, request.method).observe(elapsed)
        m.responses_total.inc()
        m.requests_latency_before.observe(elapsed)
        return response

    def process_exception(self, request, exception):  # Django runs these in a thread
        m = self.metrics
        series(m.exceptions_by_type, type(exception).__name__).inc()
        match = getattr(request, "resolver_match", None)
        if match is not None:
            series(m.exceptions_by_view, match.view_name or "<unnamed view>").inc()
        return None
