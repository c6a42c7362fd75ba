"""`manage.py join` run as a user runs it, in a subprocess with its own data dir, against the live
test gateway on 127.0.0.1: it registers, heartbeats, serves its engine through its agent, comes
back as the same node, re-registers when forgotten, and stops when removed."""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from accounts.audit import Actor
from cluster import membership
from cluster.models import Node
from tests.cluster.conftest import free_port
from tests.fakes.openai_server import FakeOpenAIEngine

ROOT = Path(__file__).resolve().parents[2]
CHAT = {"messages": [{"role": "user", "content": "hi"}]}


class Worker:
    def __init__(self, url: str, data_dir: Path, port: int, engine_url: str, *extra: str) -> None:
        self.port, self.data_dir = port, data_dir
        self.log = data_dir.parent / f"join-{port}-{time.monotonic_ns()}.log"
        env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
        env.update(FLOCK_DATA_DIR=str(data_dir), NO_COLOR="1", VLLM_API_KEY="engine-only-key")
        argv = [sys.executable, "manage.py", "join", *([url] if url else []), "--name", "w1",
                "--listen", f"127.0.0.1:{port}", "--engine", "vllm",
                "--engine-endpoint", engine_url, "--no-celery", *extra]
        with open(self.log, "wb") as out:
            self.proc = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=out,
                                         stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)

    @property
    def output(self) -> str:
        return self.log.read_text()

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        return self.proc.returncode


def wait_for(check: Callable[[], object], timeout: float = 30, what: str = "") -> object:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.2)
    pytest.fail(f"timed out waiting for {what or check}")


@pytest.fixture
def worker_engine() -> Iterator[FakeOpenAIEngine]:
    engine = FakeOpenAIEngine().start()
    engine.script.models = ["worker-model", "fake-model"]
    engine.script.text = "from the worker"
    yield engine
    engine.stop()


@pytest.fixture
def start_worker(gateway, worker_engine, tmp_path) -> Iterator[Callable[..., Worker]]:
    started: list[Worker] = []
    data_dir = tmp_path / "worker"

    def start(*extra: str, token: bool = True, port: int | None = None) -> Worker:
        url = ""
        if token:
            issued = membership.join_token_create(actor=Actor.cli())
            url = f"{gateway.url}?token={issued.plaintext}"
        worker = Worker(url, data_dir, port or free_port(), worker_engine.url, *extra)
        started.append(worker)
        return worker

    yield start
    for worker in started:
        worker.stop()


def ready_node(name: str = "w1", models: str = "worker-model") -> Node | None:
    node = Node.objects.filter(name=name, state="ready").first()
    if node and node.placements.filter(model=models).exists():
        return node
    return None


def ask(gateway, model: str) -> httpx.Response:
    return httpx.post(gateway.v1 + "/chat/completions", headers=gateway.headers(),
                      json={**CHAT, "model": model}, timeout=30)


def test_a_worker_joins_heartbeats_and_serves_its_models_through_its_agent(gateway, start_worker,
                                                                          worker_engine):
    worker = start_worker()
    node = wait_for(ready_node, what="the worker's first heartbeat")
    assert node.agent_url == f"http://127.0.0.1:{worker.port}"
    assert node.engine_endpoint == f"http://127.0.0.1:{worker.port}/node/v1/engine"
    assert node.engine_local_endpoint == worker_engine.url
    assert node.hardware["cpu_count"] >= 1
    r = ask(gateway, "worker-model")
    assert r.status_code == 200, r.text
    assert r.json()["choices"][0]["message"]["content"] == "from the worker"
    path, _body, headers = worker_engine.requests[-1]
    assert path == "/v1/chat/completions"
    # The agent swapped the leader's agent secret for the engine's own key.
    assert headers.get("authorization") == "Bearer engine-only-key"
    with httpx.stream("POST", gateway.v1 + "/chat/completions", headers=gateway.headers(),
                      json={**CHAT, "model": "worker-model", "stream": True}) as s:
        raw = s.read().decode()
    assert "worker" in raw and raw.endswith("data: [DONE]\n\n")
    identity = worker.data_dir / "node.json"
    assert stat.S_IMODE(identity.stat().st_mode) == 0o600
    assert "Worker is running." in worker.output


def test_the_agent_answers_only_with_the_agent_secret(gateway, start_worker):
    worker = start_worker()
    wait_for(ready_node, what="the worker")
    url = f"http://127.0.0.1:{worker.port}/node/v1/engine/v1/models"
    assert httpx.get(url).status_code == 401
    assert httpx.get(url, headers={"authorization": "Bearer nope"}).status_code == 401
    assert httpx.get(url, headers={"x-api-key": gateway.admin_key}).status_code == 401


def test_running_join_again_with_the_same_data_dir_is_the_same_node(gateway, start_worker):
    first = start_worker()
    node = wait_for(ready_node, what="the worker")
    assert first.stop() == 0
    again = start_worker(token=False)  # no URL: the saved leader and key
    wait_for(lambda: "registered again" in again.output, what="the second join")
    assert Node.objects.get(name="w1").pk == node.pk
    assert Node.objects.count() == 2  # the leader and this worker
    assert wait_for(lambda: ask(gateway, "worker-model").status_code == 200, what="routing")


def test_a_removed_node_stops_its_worker_with_a_message(gateway, start_worker):
    worker = start_worker()
    node = wait_for(ready_node, what="the worker")
    membership.node_remove(node=node, actor=Actor.cli())
    wait_for(lambda: worker.proc.poll() is not None, timeout=20, what="the worker to stop")
    assert worker.proc.returncode == 1
    assert "the leader refused this node" in worker.output and "token create --node" in worker.output


def test_a_node_the_leader_forgot_registers_again(gateway, start_worker):
    start_worker()
    node = wait_for(ready_node, what="the worker")
    Node.objects.filter(pk=node.pk).delete()  # e.g. a database restored from before the join
    again = wait_for(ready_node, timeout=30, what="the worker to register again")
    assert again.pk != node.pk
    assert wait_for(lambda: ask(gateway, "worker-model").status_code == 200, what="routing")


def test_join_never_advertises_the_wildcard_address(gateway, start_worker):
    worker = start_worker("--advertise", "0.0.0.0")
    assert worker.proc.wait(60) == 1
    assert "--advertise HOST" in worker.output
    assert not Node.objects.filter(name="w1").exists()
