from __future__ import annotations

import io
import os
import signal
import sys
import time

import httpx
import psutil
import pytest
from django.conf import settings

from cluster import embedded, processes, watchdog
from cluster.embedded import EmbeddedEngine, EmbeddedEngineError
from cluster.tasks import engine_watchdog_tick

pytestmark = pytest.mark.engine


def chat(endpoint: str) -> dict:
    response = httpx.post(endpoint + "/v1/chat/completions", timeout=60, json={
        "model": embedded.MODEL_ALIAS, "max_tokens": 8,
        "messages": [{"role": "user", "content": "Say hi"}]})
    response.raise_for_status()
    return response.json()


def test_it_starts_serves_chat_and_embeddings_and_stops_leaving_no_process() -> None:
    engine = EmbeddedEngine(settings.FLOCK.data_dir, ready_timeout=60)
    started = time.monotonic()
    try:
        endpoint = engine.start()
        assert time.monotonic() - started < 60
        assert httpx.get(endpoint + "/health", timeout=5).status_code == 200
        models = httpx.get(endpoint + "/v1/models", timeout=5).json()
        assert [m["id"] for m in models["data"]] == ["gemma-3-270m"]
        reply = chat(endpoint)
        assert reply["usage"]["completion_tokens"] > 0
        assert reply["choices"][0]["message"]["content"]
        vectors = httpx.post(endpoint + "/v1/embeddings", timeout=30, json={
            "model": "gemma-3-270m", "input": "hello"}).json()
        assert len(vectors["data"][0]["embedding"]) > 100
        pid = engine.pid
    finally:
        engine.stop()
    assert engine.proc.returncode is not None
    assert not psutil.pid_exists(pid)
    assert processes.port_is_free("127.0.0.1", engine.port)
    assert engine.log_path.is_file()


def test_it_assembles_the_model_once_and_reuses_it() -> None:
    first = embedded.model_path(settings.FLOCK.data_dir)
    mtime = first.stat().st_mtime_ns
    again = embedded.model_path(settings.FLOCK.data_dir)
    assert again == first == settings.FLOCK.data_dir / "models" / "gemma-3-270m-q4_k_m.gguf"
    assert again.stat().st_mtime_ns == mtime
    assert first.stat().st_size > 200_000_000


def test_a_model_that_cannot_load_fails_with_the_end_of_the_log(tmp_path) -> None:
    broken = tmp_path / "broken.gguf"
    broken.write_bytes(b"this is not a gguf file")
    engine = EmbeddedEngine(tmp_path, model=broken, ready_timeout=30)
    with pytest.raises(EmbeddedEngineError) as failure:
        engine.start()
    message = str(failure.value)
    assert "exited with code" in message
    assert str(tmp_path / "logs" / "llama-server.log") in message
    assert "broken.gguf" in message  # the log tail names what it failed to load
    assert not engine.running


def test_the_watchdog_leaves_a_killed_engine_for_two_ticks_and_restarts_it_on_the_third(
        embedded_engine: EmbeddedEngine) -> None:
    dog = watchdog.Watchdog(embedded_engine)
    assert dog.tick().healthy
    first_pid, endpoint = embedded_engine.pid, embedded_engine.endpoint
    os.kill(first_pid, signal.SIGKILL)
    embedded_engine.proc.wait(10)

    for expected in (1, 2):
        result = dog.tick()
        assert (result.healthy, result.failures, result.restarted) == (False, expected, False)
        assert not embedded_engine.running
        assert embedded_engine.pid == first_pid

    result = dog.tick()
    assert result.restarted and result.healthy and result.failures == 0
    assert embedded_engine.pid != first_pid
    assert embedded_engine.endpoint == endpoint  # the registered endpoint stays valid
    assert chat(endpoint)["usage"]["completion_tokens"] > 0
    assert dog.tick().failures == 0
    assert dog.restarts == 1


class Flaky:
    def __init__(self, answers: list[bool]) -> None:
        self.answers = answers
        self.restarts = 0

    def check(self) -> bool:
        return self.answers.pop(0)

    def restart(self) -> str:
        self.restarts += 1
        return "http://127.0.0.1:1"


def test_a_good_health_check_resets_the_failure_count() -> None:
    target = Flaky([False, False, True, False, False, True])
    dog = watchdog.Watchdog(target)
    failures = [dog.tick().failures for _ in range(6)]
    assert failures == [1, 2, 0, 1, 2, 0]
    assert target.restarts == 0


def test_a_failed_restart_is_tried_again_on_the_next_failed_tick() -> None:
    class Broken(Flaky):
        def restart(self) -> str:
            self.restarts += 1
            raise EmbeddedEngineError("no model")

    target = Broken([False] * 4)
    dog = watchdog.Watchdog(target)
    results = [dog.tick() for _ in range(4)]
    assert [r.failures for r in results] == [1, 2, 3, 3]
    assert results[2].error == "no model" and not results[2].restarted
    assert target.restarts == 2


def test_the_celery_task_ticks_the_watchdog_registered_in_this_process() -> None:
    dog = watchdog.register(watchdog.Watchdog(Flaky([False]), name="task-test"))
    try:
        result = engine_watchdog_tick.apply(kwargs={"name": "task-test"}).get(timeout=5)
    finally:
        watchdog.unregister("task-test")
    assert result == {"registered": True, "name": "task-test", "healthy": False, "failures": 1,
                      "restarted": False, "error": ""}
    assert dog.failures == 1
    missing = engine_watchdog_tick.apply(kwargs={"name": "task-test"}).get(timeout=5)
    assert missing == {"name": "task-test", "registered": False}


def test_the_watchdog_thread_restarts_a_killed_engine_by_itself(
        embedded_engine: EmbeddedEngine) -> None:
    dog = watchdog.Watchdog(embedded_engine, interval=0.2)
    first_pid = embedded_engine.pid
    dog.start()
    try:
        os.kill(first_pid, signal.SIGKILL)
        restarted = processes.wait_until(
            lambda: dog.restarts == 1 and embedded_engine.check(), timeout=60, interval=0.1)
        assert restarted, processes.log_tail(embedded_engine.log_path)
        assert embedded_engine.pid != first_pid
    finally:
        dog.stop()


def test_missing_engine_packages_are_installed_by_the_script_with_its_output_shown(
        monkeypatch, tmp_path) -> None:
    script = tmp_path / "engine-wheels.sh"
    script.write_text('echo "==> building llama.cpp for $1"\necho "[ 50%] ggml"\n')
    installed = iter([False, True])
    monkeypatch.setattr(embedded, "packages_installed", lambda: next(installed))
    monkeypatch.setattr(embedded, "INSTALL_SCRIPT", script)
    out = io.StringIO()
    embedded.ensure_installed(out)
    assert "==> building llama.cpp for " + sys.executable in out.getvalue()
    assert "[ 50%] ggml" in out.getvalue()


def test_a_failed_install_says_how_to_see_why(monkeypatch, tmp_path) -> None:
    script = tmp_path / "engine-wheels.sh"
    script.write_text("echo compiler exploded\nexit 3\n")
    monkeypatch.setattr(embedded, "packages_installed", lambda: False)
    monkeypatch.setattr(embedded, "INSTALL_SCRIPT", script)
    out = io.StringIO()
    with pytest.raises(EmbeddedEngineError, match="exit 3"):
        embedded.ensure_installed(out)
    assert "compiler exploded" in out.getvalue()
