"""Celery runs tasks in-process on the embedded default and through Redis, on each node's own
queue, when REDIS_URL is set (the suite runs both ways)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from django.conf import settings

from cluster.tasks import engine_probe
from flocksite.celery import app, node_queue

ROOT = Path(__file__).resolve().parents[2]


def test_a_task_reaches_the_node_queue_and_comes_back(fake_engine, tmp_path):
    queue = node_queue("celery-test")
    if not settings.FLOCK.redis_url:
        assert app.conf.task_always_eager
        result = engine_probe.apply_async(args=["vllm", fake_engine.url], queue=queue)
        assert result.get(timeout=10)["models"] == ["fake-model", "fake-embed"]
        return
    assert not app.conf.task_always_eager
    env = {**os.environ, "FLOCK_DATA_DIR": str(tmp_path)}
    worker = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "flocksite", "worker", "-Q", queue,
         "--pool", "solo", "--concurrency", "1", "--loglevel", "WARNING",
         "--hostname", f"test@{queue}"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        result = engine_probe.apply_async(args=["vllm", fake_engine.url], queue=queue)
        answer = result.get(timeout=60)
        assert answer["reachable"] is True
        assert answer["models"] == ["fake-model", "fake-embed"]
    finally:
        worker.terminate()
        worker.wait(timeout=30)
