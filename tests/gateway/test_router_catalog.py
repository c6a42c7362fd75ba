"""The router's catalog index: checked every few seconds, built again only when the catalog's
files changed."""

from __future__ import annotations

import asyncio
import dataclasses

from gateway.router import Router
from tests.fakes.catalog_entries import write_entry


def test_the_catalog_index_is_kept_until_a_catalog_file_changes(settings, tmp_path):
    write_entry(tmp_path, "fake-one")
    settings.FLOCK = dataclasses.replace(settings.FLOCK, catalog_dirs=(tmp_path,))
    router = Router()

    async def refresh():
        return await router._refresh_catalog()

    first = asyncio.run(refresh())
    assert first.entry_of("fake-one") is not None and first.entry_of("fake-two") is None
    assert asyncio.run(refresh()) is first  # nothing changed: nothing rebuilt

    write_entry(tmp_path, "fake-two", capabilities=["chat", "vision"])
    second = asyncio.run(refresh())
    assert second is not first
    assert second.capabilities("fake-two") == ("chat", "vision")
    assert asyncio.run(refresh()) is second
