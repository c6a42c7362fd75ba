"""Latency fallback: a model whose recent p95 time to first token is above
router.latency_fallback_p95_seconds has a faster model of its chain tried first."""

from __future__ import annotations

import dataclasses
from types import SimpleNamespace

import httpx
import pytest

from flocksite.config import ConfigError, load
from gateway.fallback import LatencyWindow, latency_order
from tests.fakes.catalog_entries import write_entry
from tests.fakes.openai_server import FakeOpenAIEngine


@pytest.fixture
def slow_and_fast(gateway, settings, tmp_path):
    """slow-model (on the leader, 0.4 s per answer) falls back to fast-model (on a worker)."""
    from cluster.models import Node

    write_entry(tmp_path, "slow-model", fallback=["fast-model"])
    write_entry(tmp_path, "fast-model")
    settings.FLOCK = dataclasses.replace(settings.FLOCK, catalog_dirs=(tmp_path,),
                                         latency_fallback_p95_seconds=0.2)
    gateway.engine.script.models = ["slow-model"]
    gateway.engine.script.delay = 0.4
    fast = FakeOpenAIEngine().start()
    fast.script.models = ["fast-model"]
    Node.objects.create(name="worker-fast", role="worker", engine="vllm", engine_endpoint=fast.url)
    yield SimpleNamespace(gateway=gateway, slow=gateway.engine, fast=fast)
    fast.stop()


def _ask(gateway) -> str:
    r = httpx.post(gateway.v1 + "/chat/completions", headers=gateway.headers(), timeout=30,
                   json={"model": "slow-model", "messages": [{"role": "user", "content": "hi"}]})
    assert r.status_code == 200, r.text
    return r.json()["model"]


def test_a_slow_primary_has_its_faster_fallback_tried_first(slow_and_fast):
    gw = slow_and_fast.gateway
    assert [_ask(gw) for _ in range(3)] == ["slow-model"] * 3  # too few answers to judge
    assert _ask(gw) == "fast-model"
    assert len(slow_and_fast.slow.requests) == 3  # the slow model was not even tried
    record = gw.usage_records()[-1]
    assert (record.model, record.requested_model, record.attempts) == ("fast-model",
                                                                       "slow-model", 1)


def test_with_latency_fallback_off_the_slow_primary_keeps_serving(slow_and_fast, settings):
    settings.FLOCK = dataclasses.replace(settings.FLOCK, latency_fallback_p95_seconds=0)
    assert [_ask(slow_and_fast.gateway) for _ in range(4)] == ["slow-model"] * 4
    assert slow_and_fast.fast.requests == []


def _group(model: str) -> list:
    return [SimpleNamespace(model=model)]


def test_the_p95_needs_recent_samples_and_forgets_old_ones():
    window = LatencyWindow()
    for seconds in (0.1, 0.2):
        window.note("m", seconds, now=100.0)
    assert window.p95("m", now=100.0) is None  # two answers say nothing yet
    for seconds in [0.1] * 17 + [3.0, 4.0, 5.0]:
        window.note("m", seconds, now=100.0)
    assert window.p95("m", now=100.0) == 4.0  # the 19th of 20 values, sorted
    assert window.p95("m", now=100.0 + 301) is None  # five minutes later, all aged out


def test_a_fallback_is_moved_first_only_when_it_is_faster():
    window = LatencyWindow()
    for _ in range(5):
        window.note("primary", 2.0)
        window.note("also-slow", 3.0)
    groups = [_group("primary"), _group("also-slow"), _group("unmeasured")]
    ordered = latency_order(groups, 1.0, window)
    assert [g[0].model for g in ordered] == ["unmeasured", "primary", "also-slow"]
    assert latency_order(groups, 0, window) == groups  # off
    assert latency_order(groups, 5.0, window) == groups  # the primary is fast enough


def test_the_threshold_comes_from_the_environment_or_the_config_file(tmp_path):
    (tmp_path / "config.yaml").write_text("router:\n  latency_fallback_p95_seconds: 1.5\n")
    env = {"FLOCK_DATA_DIR": str(tmp_path)}
    assert load(env).latency_fallback_p95_seconds == 1.5
    assert load({**env, "FLOCK_LATENCY_P95_SECONDS": "2.5"}).latency_fallback_p95_seconds == 2.5
    assert load({"FLOCK_DATA_DIR": str(tmp_path / "none")}).latency_fallback_p95_seconds == 0
    with pytest.raises(ConfigError, match="FLOCK_LATENCY_P95_SECONDS"):
        load({**env, "FLOCK_LATENCY_P95_SECONDS": "-1"})
