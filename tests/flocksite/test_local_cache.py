"""The in-process cache works as Django's LocMemCache, without memcached's key warnings."""

from __future__ import annotations

import warnings

from flocksite.local_cache import LocalCache


def test_counters_count_and_keys_memcached_would_refuse_pass_silently():
    store = LocalCache("test-local", {})
    key = "lb:sticky:" + "x y" * 100  # a space, and past memcached's 250 characters
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        store.set(key, 1, 60)
        assert store.incr(key, 2) == 3
        assert store.incr(key, -1) == 2
        assert store.get(key) == 2 and store.add(key, 9) is False
    store.clear()
    assert store.get(key) is None
