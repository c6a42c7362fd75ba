"""With Redis, a pull for another node goes through that node's Celery queue: a worker consuming
`node.<name>` runs it, and the caller follows the progress through the database."""

from __future__ import annotations

import pytest
from django.conf import settings

from catalog import services
from catalog.models import InstalledModel
from cluster.models import NodeRole
from flocksite.celery import app, node_queue
from tests.catalog.conftest import CPU_LAPTOP_16, make_node

pytestmark = pytest.mark.skipif(not settings.FLOCK.redis_url,
                                reason="needs REDIS_URL: without Redis every task runs in-process")


@pytest.fixture
def worker_for(transactional_db):
    from celery.contrib.testing.worker import start_worker

    started = []

    def start(node_name: str):
        context = start_worker(app, queues=[node_queue(node_name)], pool="solo",
                               perform_ping_check=False, loglevel="WARNING", shutdown_timeout=10)
        context.__enter__()
        started.append(context)

    yield start
    for context in started:
        context.__exit__(None, None, None)


def test_a_pull_for_a_remote_node_runs_on_its_queue_and_reports_progress(worker_for, ollama):
    remote = make_node(name="gpu-worker-1", role=NodeRole.WORKER, engine="ollama",
                       endpoint=ollama.url, hardware=CPU_LAPTOP_16)
    assert not services.runs_here(remote)
    ollama.pull_delay = 0.05
    worker_for(remote.name)
    events = []
    row = services.model_add(spec="qwen3-8b", node_name=remote.name, on_progress=events.append,
                             timeout=60)
    assert row.state == "ready" and InstalledModel.objects.get().node == remote
    assert [b["model"] for m, p, b in ollama.requests if p == "/api/pull"] == ["qwen3:8b"]
    assert events and events[-1].done <= row.bytes_total
    services.model_remove(model_id="qwen3-8b")
    assert ollama.deleted == ["qwen3:8b"]
