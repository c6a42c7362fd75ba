"""The real engine: llama.cpp's llama-server serving the gemma-3 270M GGUF."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import LiveGateway, live_gateway

MODEL_CACHE = Path.home() / ".cache" / "flock" / "models"


@pytest.fixture(scope="session")
def gguf() -> Path:
    from cluster.embedded import model_path

    # Assembled once per machine rather than into every test run's temporary data dir.
    return model_path(MODEL_CACHE.parent)


def _engine(tmp_path_factory, gguf: Path, name: str):
    from cluster.embedded import EmbeddedEngine

    engine = EmbeddedEngine(tmp_path_factory.mktemp(name), model=gguf, ready_timeout=120)
    engine.start()
    return engine


@pytest.fixture(scope="session")
def llama_server(tmp_path_factory, gguf) -> Iterator:
    engine = _engine(tmp_path_factory, gguf, "llama")
    yield engine
    engine.stop()


@pytest.fixture
def doomed_llama_server(tmp_path_factory, gguf) -> Iterator:
    """A llama-server of its own, for tests that kill it."""
    engine = _engine(tmp_path_factory, gguf, "doomed")
    yield engine
    engine.stop()


@pytest.fixture
def real_gateway(_server, transactional_db, llama_server) -> LiveGateway:
    return live_gateway(_server, kind="llamacpp", endpoint=llama_server.endpoint)


@pytest.fixture
def doomed_gateway(_server, transactional_db, doomed_llama_server) -> LiveGateway:
    return live_gateway(_server, kind="llamacpp", endpoint=doomed_llama_server.endpoint)
