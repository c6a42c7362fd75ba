"""Telling every gateway process that keys changed. A counter in the shared cache (Redis when
REDIS_URL is set) is bumped on every revoke or edit; each process compares it with the value it
last saw at most every CHECK_SECONDS and drops its key cache when it moved."""

from __future__ import annotations

from django.core.cache import cache

GENERATION = "keys:generation"
CHECK_SECONDS = 0.25


def keys_changed() -> None:
    cache.add(GENERATION, 0, None)
    try:
        cache.incr(GENERATION)
    except ValueError:
        cache.set(GENERATION, 1, None)


def generation() -> int:
    return int(cache.get(GENERATION, 0))


async def ageneration() -> int:
    return int(await cache.aget(GENERATION, 0))
