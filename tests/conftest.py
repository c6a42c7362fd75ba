from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.fakes.openai_server import FakeOpenAIEngine


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session", autouse=True)
def _usage_flushed_by_tests() -> None:
    """Tests flush usage themselves, so no background thread touches the database between them."""
    from accounts.usage_buffer import buffer

    buffer.background = False


@pytest.fixture(autouse=True)
def _fresh_gateway_caches() -> Iterator[None]:
    from django.core.cache import cache

    from gateway.auth import forget_cached_keys
    from gateway.router import router

    cache.clear()  # quota and rate counters, key generations: per test, in Redis too
    router.reset()
    forget_cached_keys()
    yield
    router.reset()
    forget_cached_keys()


@pytest.fixture
def fake_engine() -> Iterator[FakeOpenAIEngine]:
    engine = FakeOpenAIEngine().start()
    yield engine
    engine.stop()


class _ServerThread:
    def __init__(self) -> None:
        import uvicorn

        from cluster.gateway_server import HTTP
        from flocksite.asgi import application

        self.port = free_port()
        config = uvicorn.Config(application, host="127.0.0.1", port=self.port, http=HTTP,
                                log_level="warning", lifespan="off")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def start(self) -> _ServerThread:
        self.thread.start()
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                httpx.get(f"http://127.0.0.1:{self.port}/healthz", timeout=1)
                return self
            except httpx.HTTPError:
                time.sleep(0.05)
        raise RuntimeError("test gateway did not start")

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


@pytest.fixture(scope="session")
def _server(django_db_setup, django_db_blocker) -> Iterator[_ServerThread]:
    server = _ServerThread().start()
    yield server
    server.stop()
    with django_db_blocker.unblock():
        _close_server_connections()


def _close_server_connections() -> None:
    """The server's worker threads keep database connections open; PostgreSQL will not drop
    the test database while they are, so end them."""
    from django.db import connection

    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                           "WHERE datname = current_database() AND pid <> pg_backend_pid()")


@dataclass
class LiveGateway:
    url: str
    admin_key: str
    user_key: str
    engine: FakeOpenAIEngine

    @property
    def v1(self) -> str:
        return self.url + "/v1"

    def headers(self, key: str | None = None) -> dict[str, str]:
        return {"authorization": f"Bearer {key or self.user_key}"}

    def usage_records(self) -> list:
        from accounts.models import UsageRecord
        from accounts.usage_buffer import usage_flush

        usage_flush()
        return list(UsageRecord.objects.order_by("created_at"))


def live_gateway(server: _ServerThread, *, kind: str, endpoint: str,
                 engine: FakeOpenAIEngine | None = None) -> LiveGateway:
    """Registers a leader node whose engine is at `endpoint`, issues an admin and a user key,
    and starts from an empty usage table."""
    from accounts.models import UsageRecord
    from accounts.services import key_create
    from accounts.usage_buffer import buffer
    from cluster.models import Node, NodeRole

    time.sleep(0.05)  # let the previous test's streams finish recording
    buffer.discard()
    UsageRecord.objects.all().delete()
    Node.objects.create(name="leader", role=NodeRole.LEADER, engine=kind, engine_endpoint=endpoint)
    return LiveGateway(url=f"http://127.0.0.1:{server.port}",
                       admin_key=key_create(name="admin", scope="admin").plaintext,
                       user_key=key_create(name="alice", scope="user").plaintext,
                       engine=engine)  # type: ignore[arg-type]


@pytest.fixture
def gateway(_server: _ServerThread, transactional_db, fake_engine: FakeOpenAIEngine) -> LiveGateway:
    """The gateway served over real HTTP, with one leader node whose engine is the fake."""
    return live_gateway(_server, kind="vllm", endpoint=fake_engine.url, engine=fake_engine)


# --- the real engine: llama.cpp's llama-server serving the gemma-3 270M GGUF ---------------------

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
