"""The API routes (/v1, /admin/v1, probes, /metrics) are served by a Django ASGI handler of their
own whose middleware list holds only async-native middleware (settings.API_MIDDLEWARE). The
dashboard and Django admin keep the full stack (sessions, CSRF, auth, messages). Django's
built-in middlewares are sync-style: under ASGI each of their hooks is a trip to a worker thread,
about a dozen per request, which the API neither needs nor can afford (bench/results)."""

from __future__ import annotations

import asyncio
import io

from django.conf import settings
from django.core.handlers.asgi import ASGIHandler
from django.urls import get_resolver, set_script_prefix

API_PREFIXES = ("/v1/", "/admin/v1/", "/healthz", "/readyz", "/metrics")
STOCK_PREFIXES = ("/admin/v1/",)  # sync ORM work through sync_to_async: Django's own handling


_resolved: dict = {}


class APIHandler(ASGIHandler):
    """Serves a request with less of Django's per-request machinery than ASGIHandler: no
    per-request thread context (its executor costs a new thread per request), no body spooled to
    a temporary file, no request_finished signal when the response is closed (its receivers only
    touch this thread's database connections, and the request path opens none), and one watcher
    task for the client's disconnect instead of two tasks. A client that hangs up still cancels
    the view, and with it the engine request."""

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["path"].startswith(STOCK_PREFIXES):
            return await super().__call__(scope, receive, send)
        chunks = []
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        set_script_prefix(scope.get("root_path", "") or "/")
        request, error = self.create_request(scope, io.BytesIO(b"".join(chunks)))
        if request is None:
            await self.send_response(error, send)
            error.close()
            return
        serving = asyncio.current_task()
        state = {"done": False, "gone": False}

        async def watch() -> None:
            message = await receive()
            if message["type"] == "http.disconnect" and not state["done"]:
                state["gone"] = True
                serving.cancel()

        watcher = asyncio.create_task(watch())
        response = None
        try:
            response = await self.get_response_async(request)
            if not response.streaming and not response.has_header("Content-Length"):
                # A known length: no chunked framing, and the server sends the headers and the
                # body in one write (cluster/http_protocol.py).
                response["Content-Length"] = str(len(response.content))
            await self.send_response(response, send)
        except asyncio.CancelledError:
            if not state["gone"]:
                raise
            serving.uncancel()  # the client left: nothing more to send
        finally:
            state["done"] = True
            watcher.cancel()
            if response is not None:
                _release(response)

    def resolve_request(self, request):
        # A few dozen routes are matched one by one on every request; their answer per path
        # never changes for a given resolver, so it is kept (bounded; misses raise Resolver404).
        if hasattr(request, "urlconf"):
            return super().resolve_request(request)
        key = (id(get_resolver()), request.path_info)
        match = _resolved.get(key)
        if match is None:
            match = super().resolve_request(request)
            if len(_resolved) < 1024:
                _resolved[key] = match
        request.resolver_match = match
        return match

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


def _release(response) -> None:
    """`response.close()` without its request_finished signal, whose receivers close this
    thread's database connections (the event loop's thread has none: Django refuses the ORM
    there) and the caches' (no-ops): 5% of an API request's CPU for nothing. What the response
    holds (a stream's generator, a file) is released as close() releases it."""
    for closer in response._resource_closers:
        try:
            closer()
        except Exception:
            pass
    response._resource_closers.clear()
    response.closed = True


def split_by_path(api, full):
    """One ASGI app: API paths to the lean handler, everything else to the full one."""
    from gateway.request_limits import daphne_limits_install, limit_requests

    daphne_limits_install()  # bounded bodies under daphne, as under any server below
    api = limit_requests(api)  # oversized headers or bodies, slow bodies: refused up front
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
