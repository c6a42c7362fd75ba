from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.fakes.ollama_server import FakeOllama


@pytest.fixture
def fake_ollama() -> Iterator[FakeOllama]:
    """A fake Ollama on a free 127.0.0.1 port; tweak its attributes to script a test."""
    fake = FakeOllama().start()
    yield fake
    fake.stop()
