"""The router's cached reads are refreshed ahead: a request finding a model list past half its
lifetime gets it at once while a refresh runs behind it; an expired one is refreshed first; a
refresh that began before a reset stores nothing."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import pytest

from gateway.engines.registry import make_engine
from gateway.router import MODELS_TTL, Router
from tests.fakes.openai_server import FakeOpenAIEngine


@pytest.fixture
def fake() -> Iterator[FakeOpenAIEngine]:
    engine = FakeOpenAIEngine().start()
    engine.script.models = ["first"]
    yield engine
    engine.stop()


def _counted(engine):
    """The engine, counting its model-list calls in `engine.lists`."""
    real = engine.list_models
    engine.lists = 0

    async def list_models():
        engine.lists += 1
        return await real()

    engine.list_models = list_models
    return engine


def _ids(listing) -> list[str]:
    return [m.id for m in listing.models]


async def _until(condition, seconds: float = 5.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition() and time.monotonic() < deadline:
        await asyncio.sleep(0.01)


def test_a_listing_past_half_its_life_is_served_at_once_and_refreshed_behind(fake):
    async def scenario() -> None:
        router = Router()
        engine = _counted(make_engine("vllm", fake.url))
        first = await router.listing(engine)
        assert _ids(first) == ["first"] and engine.lists == 1

        fake.script.models = ["first", "second"]
        assert await router.listing(engine) is first  # young: no engine call at all
        assert engine.lists == 1

        first.expires = time.monotonic() + MODELS_TTL / 2 - 0.5  # past half its lifetime
        assert await router.listing(engine) is first  # served as it was, without waiting
        await _until(lambda: _ids(router._listings[id(engine)]) == ["first", "second"])
        assert _ids(await router.listing(engine)) == ["first", "second"]
        assert engine.lists == 2  # one refresh, however many requests saw the old list

    asyncio.run(scenario())


def test_an_expired_listing_is_refreshed_before_it_is_used(fake):
    async def scenario() -> None:
        router = Router()
        engine = _counted(make_engine("vllm", fake.url))
        first = await router.listing(engine)
        fake.script.models = ["renamed"]
        first.expires = time.monotonic() - 0.01
        assert _ids(await router.listing(engine)) == ["renamed"]

    asyncio.run(scenario())


def test_a_refresh_that_began_before_a_reset_stores_nothing(fake):
    async def scenario() -> None:
        router = Router()
        engine = _counted(make_engine("vllm", fake.url))
        first = await router.listing(engine)
        fake.script.models = ["stale"]
        first.expires = time.monotonic() + 0.5
        await router.listing(engine)  # starts the refresh behind this request
        router.reset()
        await _until(lambda: engine.lists == 2)
        await asyncio.sleep(0.1)
        assert router._listings == {}

    asyncio.run(scenario())
