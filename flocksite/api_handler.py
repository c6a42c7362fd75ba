"""The API routes (/v1, /admin/v1, probes, /metrics) are served by a Django ASGI handler of their
own whose middleware list holds only async-native middleware (settings.API_MIDDLEWARE). The
dashboard and Django admin keep the full stack (sessions, CSRF, auth, messages). Django's
built-in middlewares are sync-style: under ASGI each of their hooks is a trip to a worker thread,
about a dozen per request, which the API neither needs nor can afford (bench/results)."""

from __future__ import annotations

from django.conf import settings
from django.core.handlers.asgi import ASGIHandler

API_PREFIXES = ("/v1/", "/admin/v1/", "/healthz", "/readyz", "/metrics")


class APIHandler(ASGIHandler):
    def load_middleware(self, is_async: bool = False) -> None:
        # BaseHandler.load_middleware reads settings.MIDDLEWARE; this runs once, at start-up.
        from gateway.tracing import MIDDLEWARE as TRACING

        full = settings.MIDDLEWARE
        # The request span leads when tracing put it in the full list (gateway/tracing.py).
        settings.MIDDLEWARE = [name for name in full if name == TRACING] + settings.API_MIDDLEWARE
        try:
            super().load_middleware(is_async)
        finally:
            settings.MIDDLEWARE = full


def split_by_path(api, full):
    """One ASGI app: API paths to the lean handler, everything else to the full one."""

    booted = []

    async def application(scope, receive, send):
        if not booted:  # the first request of this process, whatever it asks
            booted.append(True)
            from accounts.usage_buffer import buffer

            buffer.start()  # write what a stopped process left parked in Redis
        if scope["type"] == "http" and scope["path"].startswith(API_PREFIXES):
            return await api(scope, receive, send)
        return await full(scope, receive, send)

    return application
