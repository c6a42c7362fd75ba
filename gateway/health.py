"""Liveness, readiness and the unauthenticated root probe (Claude Code sends `HEAD /`)."""

from __future__ import annotations

from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import close_old_connections, connection
from django.http import HttpRequest, HttpResponse, JsonResponse

from accounts.usage_buffer import buffer as usage_buffer
from flocksite import degraded
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
    except Exception:
        degraded.database_failed()
        close_old_connections()
        return False
    degraded.database_ok()
    return True


async def _redis_state() -> str:
    """"ok", "down" (serving on in-process counters) or "off" (no REDIS_URL)."""
    url = settings.FLOCK.redis_url
    if not url:
        return "off"
    import redis.asyncio

    client = redis.asyncio.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=1)
    try:
        await client.ping()
    except Exception:
        degraded.redis_failed()
        return "down"
    finally:
        await client.aclose()
    degraded.redis_ok()
    return "ok"


async def readyz(request: HttpRequest) -> HttpResponse:
    """Ready while an engine answers. Without the database or Redis the gateway still serves
    (usage waits in its buffer, counters live in the process): "degraded", still 200."""
    database = await sync_to_async(_database_ok, thread_sensitive=False)()
    redis_state = await _redis_state()
    engines = []
    for node, engine in await router.pool():
        engines.append({"node": node, "engine": engine.kind, "endpoint": engine.endpoint,
                        "reachable": await engine.health()})
    ready = any(e["reachable"] for e in engines)
    status = "not_ready" if not ready else (
        "degraded" if not database or redis_state == "down" else "ready")
    body = {"status": status, "database": database, "redis": redis_state,
            "usage_buffered": len(usage_buffer), "usage_dropped": usage_buffer.dropped,
            "engines": engines}
    return JsonResponse(body, status=200 if ready else 503)


async def not_found(request: HttpRequest, rest: str = "") -> HttpResponse:
    error: GatewayError = NotFound(f"Unknown endpoint: {request.method} {request.path}")
    return error_response(request, error)
