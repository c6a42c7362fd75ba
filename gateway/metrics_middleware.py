"""django-prometheus's request metrics (django_http_*), without the thread hops.

Its middlewares are sync-style: under ASGI, Django would run each of their hooks through
sync_to_async, a trip to a worker thread and back, several times per request. Their hooks only
bump in-process counters, so these subclasses call them inline from async code."""

from __future__ import annotations

from django_prometheus import middleware as base


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
