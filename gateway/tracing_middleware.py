"""The Django request span, from opentelemetry-instrumentation-django, run natively async.

The instrumentation's middleware is sync-only, so under ASGI Django would run every request
through it on a worker thread. Its hooks do no I/O (the exporter works in its own thread), so this
subclass calls them from the event loop; the span's context is attached in the request's own task,
where the view and the router span find it. Listed in MIDDLEWARE only while tracing is on
(gateway.tracing.tracing_configure)."""

from __future__ import annotations

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from opentelemetry.instrumentation.django.middleware.otel_middleware import _DjangoMiddleware


class DjangoRequestSpan(_DjangoMiddleware):
    sync_capable = False
    async_capable = True

    def __init__(self, get_response) -> None:
        super().__init__(get_response)
        if iscoroutinefunction(self.get_response):
            markcoroutinefunction(self)

    async def __call__(self, request):
        self.process_request(request)
        # get_response never raises: Django turns exceptions into responses at every layer.
        response = await self.get_response(request)
        return self.process_response(request, response)

    async def process_view(self, request, view_func, *args, **kwargs):
        return super().process_view(request, view_func, *args, **kwargs)

    async def process_exception(self, request, exception):
        return super().process_exception(request, exception)
