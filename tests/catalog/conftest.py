"""Fixtures for the catalog tests: a fake Ollama that pulls, nodes with recorded hardware, and
`manage.py model` run in-process."""

from __future__ import annotations

from collections.abc import Iterator
from io import StringIO

import pytest
from django.core.management import call_command

from cluster.models import Node, NodeRole
from cluster.services import local_node_name
from tests.fakes.ollama_pull import FakeOllamaPull

GIB = 1024**3

# Recorded shapes of real machines (what catalog.hardware.detect() returns there).
CPU_LAPTOP_16 = {"cpu_count": 8, "cpu_physical": 4, "ram_total_bytes": 16 * GIB - 400 * 1024**2,
                 "ram_available_bytes": 11 * GIB, "system": "Linux", "machine": "x86_64",
                 "platform": "Linux-6.1-x86_64", "unified_memory": False, "gpus": []}
RTX_4090_BOX = {**CPU_LAPTOP_16, "ram_total_bytes": 64 * GIB, "ram_available_bytes": 58 * GIB,
                "gpus": [{"vendor": "nvidia", "index": 0, "name": "NVIDIA GeForce RTX 4090",
                          "memory_total_bytes": 24564 * 1024**2,
                          "memory_free_bytes": 24000 * 1024**2, "driver": "550.54.14"}]}
MAC_M3_PRO_36 = {"cpu_count": 12, "cpu_physical": 12, "ram_total_bytes": 36 * GIB,
                 "ram_available_bytes": 20 * GIB, "system": "Darwin", "machine": "arm64",
                 "platform": "macOS-14.5-arm64", "unified_memory": True,
                 "gpus": [{"vendor": "apple", "index": 0, "name": "Apple M3 Pro",
                           "memory_total_bytes": 27 * GIB, "memory_free_bytes": 15 * GIB,
                           "driver": ""}]}
PI_4GB = {**CPU_LAPTOP_16, "ram_total_bytes": 4 * GIB - 200 * 1024**2,
          "ram_available_bytes": 3 * GIB, "machine": "aarch64"}


@pytest.fixture
def ollama() -> Iterator[FakeOllamaPull]:
    fake = FakeOllamaPull().start()
    yield fake
    fake.stop()


def make_node(*, engine: str, endpoint: str, hardware: dict, name: str | None = None,
              role: str = NodeRole.LEADER) -> Node:
    return Node.objects.create(name=name or local_node_name(), role=role, engine=engine,
                               engine_endpoint=endpoint, hardware=hardware)


@pytest.fixture
def ollama_node(db, ollama: FakeOllamaPull) -> Node:
    """This machine as the leader, its engine the fake Ollama, with 16 GB of RAM and no GPU."""
    return make_node(engine="ollama", endpoint=ollama.url, hardware=CPU_LAPTOP_16)


def model(*args: str) -> str:
    """`manage.py model ARGS` in-process; its stdout."""
    out = StringIO()
    call_command("model", *args, stdout=out)
    return out.getvalue()
