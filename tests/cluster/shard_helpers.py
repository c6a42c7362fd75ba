"""Shared pieces of the sharding tests: a leader and workers as Node rows on 127.0.0.1, and
checks on the processes the supervisor started."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator

import psutil
from django.utils import timezone

from cluster import embedded
from cluster.models import Node, NodeRole, Shard

GB = 1024 ** 3


def cluster_nodes(*, builds: dict[str, str] | None = None, leader_engine: str = "") -> list[Node]:
    """The leader (no engine of its own unless given) and workers w1 (8 GB free) and w2 (4 GB
    free), reporting this machine's llama.cpp build unless `builds` says otherwise."""
    from cluster.services import local_node_name

    build = embedded.build_label()
    builds = builds or {}
    Node.objects.create(name=local_node_name(), role=NodeRole.LEADER, address="127.0.0.1",
                        engine="llamacpp" if leader_engine else "",
                        engine_endpoint=leader_engine, llama_cpp_build=builds.get("leader", build))
    workers = []
    for name, free in (("w1", 8), ("w2", 4)):
        workers.append(Node.objects.create(
            name=name, role=NodeRole.WORKER, address=f"http://127.0.0.1:{9000 + free}",
            agent_url=f"http://127.0.0.1:{9000 + free}", last_heartbeat_at=timezone.now(),
            hardware={"ram_total_bytes": 16 * GB, "ram_available_bytes": free * GB, "gpus": []},
            llama_cpp_build=builds.get(name, build)))
    return workers


def alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def our_engine_processes() -> list[psutil.Process]:
    """rpc-servers and coordinators that this test process started and that still run."""
    found = []
    for child in psutil.Process().children(recursive=True):
        try:
            sharded = child.name() == "ggml-rpc-server" or (
                child.name() == "llama-server" and "--rpc" in child.cmdline())
            if sharded and child.status() != psutil.STATUS_ZOMBIE:
                found.append(child)
        except psutil.NoSuchProcess:
            pass
    return found


def wait_for(check: Callable[[], object], *, timeout: float, what: str) -> object:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.1)
    rows = list(Shard.objects.values("role", "node__name", "state", "pid", "restarts", "error"))
    raise AssertionError(f"timed out waiting for {what}; shards: {rows}")


@contextlib.contextmanager
def node_queues_served() -> Iterator[None]:
    """With Redis, tasks for w1 and w2 travel through their own queues: a Celery worker in this
    process consumes node.w1 and node.w2 meanwhile (without Redis every task runs in-process).
    Needs a transactional database: the worker's threads have their own connections."""
    from django.conf import settings

    if not settings.FLOCK.redis_url:
        yield
        return
    from celery.contrib.testing.worker import start_worker

    from flocksite.celery import app, node_queue

    with start_worker(app, queues=[node_queue("w1"), node_queue("w2")], pool="threads",
                      concurrency=2, perform_ping_check=False, loglevel="WARNING",
                      shutdown_timeout=10):
        yield
