"""One asyncio Redis connection pool per event loop, for the request path's shared counters
(quotas, rate limits, in-flight requests). None without REDIS_URL: counters then live in this
process's memory."""

from __future__ import annotations

import asyncio
import weakref

from django.conf import settings

from flocksite import degraded

_clients: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def async_redis():
    url = settings.FLOCK.redis_url
    if not url or not degraded.redis_usable():  # away: counters fall back to this process
        return None
    loop = asyncio.get_running_loop()
    client, generation = _clients.get(loop, (None, -1))
    if client is None or generation != degraded.redis_generation():  # none yet, or one whose
        import redis.asyncio  # connections died with the last outage

        client = redis.asyncio.Redis.from_url(url)
        _clients[loop] = (client, degraded.redis_generation())
    return client
