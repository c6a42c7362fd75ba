"""Two daphne processes sharing one data dir report the same, summed metrics, whichever of them
answers the scrape, and a process that stops leaves its counts in the sums."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import free_port
from tests.gateway.test_metrics import scrape, value

ROOT = Path(__file__).resolve().parents[2]
CHAT = {"model": "fake-model", "messages": [{"role": "user", "content": "hi"}]}


@pytest.fixture
def env(tmp_path, fake_engine) -> dict[str, str]:
    """A gateway data dir of its own (SQLite, migrated), serving the fake engine without keys."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("FLOCK_", "PROMETHEUS_"))
           and k not in ("DATABASE_URL", "REDIS_URL")}
    env.update(FLOCK_DATA_DIR=str(tmp_path / "flock"), FLOCK_ENGINE="vllm",
               FLOCK_VLLM_ENDPOINT=fake_engine.url, FLOCK_REQUIRE_KEYS="false",
               DJANGO_SETTINGS_MODULE="flocksite.settings")
    subprocess.run([sys.executable, "manage.py", "migrate", "-v", "0"], cwd=ROOT, env=env,
                   check=True, timeout=120)
    return env


class Daphne:
    def __init__(self, env: dict[str, str]) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(self.port),
             "flocksite.asgi:application"],
            cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    def wait_ready(self) -> Daphne:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                pytest.fail(f"daphne exited: {self.proc.stderr.read().decode()[-2000:]}")
            try:
                httpx.get(self.url + "/healthz", timeout=1)
                return self
            except httpx.HTTPError:
                time.sleep(0.1)
        pytest.fail("daphne did not start within 60 s")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


@pytest.fixture
def two_gateways(env) -> Iterator[tuple[Daphne, Daphne]]:
    pair = (Daphne(env), Daphne(env))
    try:
        yield pair[0].wait_ready(), pair[1].wait_ready()
    finally:
        for daphne in pair:
            daphne.stop()


def test_two_daphne_processes_report_the_sum_of_their_requests(two_gateways, tmp_path):
    a, b = two_gateways
    for _ in range(3):
        assert httpx.post(a.url + "/v1/chat/completions", json=CHAT, timeout=30).status_code == 200
    assert httpx.post(b.url + "/v1/chat/completions", json=CHAT, timeout=30).status_code == 200
    with httpx.stream("POST", b.url + "/v1/chat/completions", json={**CHAT, "stream": True},
                      timeout=30) as s:
        assert "[DONE]" in s.read().decode()
    r = httpx.post(b.url + "/v1/chat/completions", json={**CHAT, "model": "nope"}, timeout=30)
    assert r.status_code == 404

    from_a, from_b = scrape(a.url), scrape(b.url)
    for samples in (from_a, from_b):
        assert value(samples, "flock_requests_total", model="fake-model", node="local",
                     outcome="ok") == 5
        assert value(samples, "flock_requests_total", outcome="error") == 1
        assert value(samples, "flock_completion_tokens_total", model="fake-model") == 25
        assert value(samples, "flock_request_duration_seconds_count") == 6
        assert value(samples, "django_http_requests_total_by_method_total", method="POST") == 6
        assert value(samples, "flock_inflight_requests") == 0
        assert value(samples, "flock_engine_up", node="local") == 1
    assert len(list((tmp_path / "flock" / "metrics").glob("counter_*.db"))) >= 2

    assert "date" in httpx.get(a.url + "/healthz").headers  # daphne sends none of its own

    b.stop()
    after = scrape(a.url)
    assert value(after, "flock_requests_total", model="fake-model", outcome="ok") == 5
    assert value(after, "flock_usage_records_dropped_total") == 0


def test_metrics_still_answer_when_the_database_cannot(tmp_path, fake_engine):
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("FLOCK_", "PROMETHEUS_")) and k not in ("DATABASE_URL",
                                                                          "REDIS_URL")}
    env.update(FLOCK_DATA_DIR=str(tmp_path / "unmigrated"), FLOCK_ENGINE="vllm",
               FLOCK_VLLM_ENDPOINT=fake_engine.url, DJANGO_SETTINGS_MODULE="flocksite.settings")
    daphne = Daphne(env)
    try:
        daphne.wait_ready()
        samples = scrape(daphne.url)
    finally:
        daphne.stop()
    assert ("flock_usage_records_dropped_total", frozenset()) in samples
    assert value(samples, "flock_engine_up") == 0
