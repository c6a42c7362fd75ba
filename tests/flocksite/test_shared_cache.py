"""The request path's cache object: one per process, whatever thread or task asks, holding the
same data as Django's own `caches["default"]`."""

from __future__ import annotations

import asyncio
import threading

from django.core.cache import caches

from flocksite.shared_cache import shared_cache


def test_every_task_and_thread_gets_the_same_cache_object():
    async def from_tasks():
        return await asyncio.gather(*(asyncio.create_task(_get()) for _ in range(5)))

    async def _get():
        return shared_cache()

    seen = list(asyncio.run(from_tasks()))
    thread = threading.Thread(target=lambda: seen.append(shared_cache()))
    thread.start()
    thread.join()
    assert len({id(c) for c in seen}) == 1


def test_it_holds_what_djangos_cache_holds():
    shared_cache().set("shared-cache-test", 41, 30)
    caches["default"].incr("shared-cache-test")
    assert shared_cache().get("shared-cache-test") == 42
    assert shared_cache().make_key("x") == caches["default"].make_key("x")


def test_a_changed_caches_setting_gives_a_new_object(settings):
    before = shared_cache()
    settings.CACHES = {"default": {"BACKEND": "flocksite.local_cache.LocalCache",
                                   "LOCATION": "shared-cache-test"}}
    after = shared_cache()
    assert after is not before and after._cache is not before._cache
