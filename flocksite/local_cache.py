"""The in-process cache (no REDIS_URL, or Redis away): Django's LocMemCache without its check of
every key against memcached's key rules, which walks the key a character at a time and cost as
much as the operation itself. Quota, rate and balancing counters make several cache operations a
request; this cache is never memcached, and its keys are the gateway's own."""

from __future__ import annotations

from django.core.cache.backends.locmem import LocMemCache


class LocalCache(LocMemCache):
    def validate_key(self, key: str) -> None:
        return None
