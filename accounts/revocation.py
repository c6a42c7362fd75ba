"""Telling every gateway process that keys changed. A counter in the shared cache (Redis when
REDIS_URL is set) is bumped on every revoke or edit; each process compares it with the value it
last saw at most every CHECK_SECONDS and drops its key cache when it moved."""

from __future__ import annotations

from flocksite.shared_cache import shared_cache

GENERATION = "keys:generation"
CHECK_SECONDS = 0.25


def keys_changed() -> None:
    store = shared_cache()
    store.add(GENERATION, 0, None)
    try:
        store.incr(GENERATION)
    except ValueError:
        store.set(GENERATION, 1, None)


def generation() -> int:
    return int(shared_cache().get(GENERATION, 0))


async def ageneration() -> int:
    """The counter, read without a thread hop: from Redis with the async client, or straight from
    this process's memory cache (no I/O) without Redis or while it is away."""
    from flocksite import degraded
    from flocksite.shared_redis import async_redis

    client = async_redis()
    if client is not None:
        try:
            raw = await client.get(shared_cache().make_and_validate_key(GENERATION))
        except degraded.redis_errors():
            degraded.redis_failed()
        else:
            return int(raw or 0)
    store = shared_cache()
    return int(getattr(store, "local", store).get(GENERATION, 0))
