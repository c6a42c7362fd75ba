"""Django's Redis cache, with a fallback: while Redis is unreachable every operation goes to an
in-process memory cache instead of raising, so key revocations, failed-auth counters and quota
counters keep working in this process (flocksite.degraded says so). When Redis is back, the
counters it lost are rebuilt by their owners (quotas from the usage ledger)."""

from __future__ import annotations

from typing import Any

from django.core.cache.backends.redis import RedisCache

from flocksite import degraded
from flocksite.local_cache import LocalCache

_OPERATIONS = ("add", "get", "set", "touch", "delete", "get_many", "has_key", "incr",
               "set_many", "delete_many", "clear")


class ResilientRedisCache(RedisCache):
    def __init__(self, server: str, params: dict[str, Any]) -> None:
        super().__init__(server, params)
        self.local = LocalCache("flock-degraded", {"TIMEOUT": params.get("TIMEOUT", 300)})

    def forget_connections(self) -> None:
        """Drops pooled connections, which a Redis restart left dead."""
        for pool in getattr(self._cache, "_pools", {}).values():
            try:
                pool.disconnect()
            except Exception:
                pass


def _either(name: str):
    remote = getattr(RedisCache, name)

    def operation(self: ResilientRedisCache, *args: Any, **kwargs: Any) -> Any:
        if degraded.redis_usable():
            try:
                result = remote(self, *args, **kwargs)
            except degraded.redis_errors():
                degraded.redis_failed()
                self.forget_connections()
            else:
                degraded.redis_ok()
                return result
        return getattr(self.local, name)(*args, **kwargs)

    operation.__name__ = name
    return operation


for _name in _OPERATIONS:
    setattr(ResilientRedisCache, _name, _either(_name))
