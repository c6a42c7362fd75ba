"""Liveness, readiness and the unauthenticated root probe (Claude Code sends `HEAD /`)."""

from __future__ import annotations

from asgiref.sync import sync_to_async
from django.db import connection
from django.http import HttpRequest, HttpResponse, JsonResponse

from gateway.errors import GatewayError, NotFound
from gateway.responses import error_response
from gateway.router import router


async def root(request: HttpRequest) -> HttpResponse:
    if request.method == "HEAD":
        return HttpResponse(status=200)
    return JsonResponse({"name": "flock", "api": "/v1", "health": "/healthz"})


async def healthz(request: HttpRequest) -> HttpResponse:
    return JsonResponse({"status": "ok"})


def _database_ok() -> bool:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        return True
    except Exception:
        return False


async def readyz(request: HttpRequest) -> HttpResponse:
    database = await sync_to_async(_database_ok, thread_sensitive=False)()
    engines = []
    for node, engine in await router.pool():
        engines.append({"node": node, "engine": engine.kind, "endpoint": engine.endpoint,
                        "reachable": await engine.health()})
    ready = database and any(e["reachable"] for e in engines)
    body = {"status": "ready" if ready else "not_ready", "database": database, "engines": engines}
    return JsonResponse(body, status=200 if ready else 503)


async def not_found(request: HttpRequest, rest: str = "") -> HttpResponse:
    error: GatewayError = NotFound(f"Unknown endpoint: {request.method} {request.path}")
    return error_response(request, error)
