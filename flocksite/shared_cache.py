"""The default cache as one object per process, for the request path.

`caches["default"]` (and the `cache` proxy) keeps an object per thread and per asyncio task: an
asgiref Local over context variables. Each request runs in a task of its own, so each made a new
cache object (the backend imported again, its __init__) and paid the Local's lookups on every
use: 6% of a request's CPU. The backends Flock configures share their state however many
objects there are (LocalCache: module-level dicts under a lock; Redis: redis-py's thread-safe
pools), so one object serves every thread and task. It is made again when the CACHES setting
changes (tests)."""

from __future__ import annotations

from django.core.cache import caches
from django.core.cache.backends.base import BaseCache
from django.core.signals import setting_changed

_shared: list[BaseCache] = []


def shared_cache() -> BaseCache:
    if not _shared:
        _shared.append(caches.create_connection("default"))
    return _shared[0]


def _forget(*, setting: str, **_: object) -> None:
    if setting == "CACHES":
        _shared.clear()


setting_changed.connect(_forget)
