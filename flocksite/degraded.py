"""Which shared services this process is working without right now. Redis and the database may
go away for a while (a restart, a failover); the gateway keeps answering on in-process counters
and buffered usage, says so on /readyz and in `flock_dependency_up`, and goes back to them when
they return.

Redis is skipped for REDIS_RETRY_SECONDS after a failure, so an outage costs one refused
connection per second rather than one per request."""

from __future__ import annotations

import logging
import threading
import time

from prometheus_client import Gauge

log = logging.getLogger("flock.degraded")

REDIS_RETRY_SECONDS = 1.0
DEPENDENCIES = ("redis", "database")

UP = Gauge("flock_dependency_up",
           "1 while this gateway reaches the dependency, 0 while it works without it (degraded).",
           ["dependency"], multiprocess_mode="livemin")


def _redis_errors() -> tuple[type[BaseException], ...]:
    import redis.exceptions

    return (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError,
            redis.exceptions.BusyLoadingError, ConnectionError, TimeoutError)


class _State:
    lock = threading.Lock()
    down: dict[str, bool] = dict.fromkeys(DEPENDENCIES, False)
    redis_retry_at = 0.0
    redis_failures = 0  # clients made before the last failure hold dead connections
    touched: set[str] = set()


def _set(dependency: str, down: bool) -> None:
    with _State.lock:
        was_down = _State.down[dependency]
        first = dependency not in _State.touched
        _State.down[dependency] = down
        _State.touched.add(dependency)
    if first or was_down != down:
        UP.labels(dependency).set(0 if down else 1)
        if down:
            log.warning("%s is unreachable; serving without it (degraded)", dependency)
        elif was_down:
            log.warning("%s is reachable again", dependency)


def redis_usable() -> bool:
    """False for a moment after Redis failed: callers use their in-process fallback."""
    return not _State.down["redis"] or time.monotonic() >= _State.redis_retry_at


def redis_failed() -> None:
    _State.redis_retry_at = time.monotonic() + REDIS_RETRY_SECONDS
    _State.redis_failures += 1
    _set("redis", True)


def redis_generation() -> int:
    """Changes after every failure: a Redis client made before then should be made anew."""
    return _State.redis_failures


def redis_ok() -> None:
    if _State.down["redis"] or "redis" not in _State.touched:
        _set("redis", False)


def database_failed() -> None:
    _set("database", True)


def database_ok() -> None:
    if _State.down["database"] or "database" not in _State.touched:
        _set("database", False)


def is_down(dependency: str) -> bool:
    return _State.down[dependency]


def redis_errors() -> tuple[type[BaseException], ...]:
    return _redis_errors()
