from __future__ import annotations

import re
import signal
import socket
import stat
import time

import httpx
import psutil
import pytest

from cluster import processes
from cluster.embedded import EmbeddedEngine

pytestmark = pytest.mark.engine

KEY = re.compile(r"sk-flock-[A-Za-z0-9]{44}")
READY = "Press Ctrl-C to stop."


def chat_through_gateway(port: int, key: str) -> dict:
    response = httpx.post(f"http://127.0.0.1:{port}/v1/chat/completions", timeout=60,
                          headers={"authorization": f"Bearer {key}"},
                          json={"model": "auto", "max_tokens": 8,
                                "messages": [{"role": "user", "content": "Say hi"}]})
    assert response.status_code == 200, response.text
    return response.json()


def llama_servers(processes_: list[psutil.Process]) -> list[psutil.Process]:
    return [p for p in processes_ if p.name() == "llama-server"]


def test_up_starts_the_embedded_engine_and_the_gateway_and_sigterm_stops_both(
        up_env, run_up, tmp_path) -> None:
    started = time.monotonic()
    up = run_up(up_env)
    out = up.wait_for(READY, timeout=300)
    ready_after = time.monotonic() - started
    data_dir = tmp_path / "flock"

    assert f"http://127.0.0.1:{up.port}/v1" in out
    assert "llamacpp (embedded)" in out and "default model: gemma-3-270m" in out
    key_file = data_dir / "admin.key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    key = key_file.read_text().strip()
    assert KEY.fullmatch(key) and key in out
    assert httpx.get(f"http://127.0.0.1:{up.port}/healthz", timeout=5).status_code == 200
    reply = chat_through_gateway(up.port, key)
    assert reply["usage"]["completion_tokens"] > 0 and reply["model"] == "gemma-3-270m"
    children = up.descendants()
    assert len(llama_servers(children)) == 1

    assert up.stop(signal.SIGTERM) == 0
    assert not [p for p in children if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
    assert processes.port_is_free("127.0.0.1", up.port)
    assert "Stopped the gateway and the embedded engine." in up.output
    print(f"cold `up` to ready: {ready_after:.1f}s")


def test_a_second_up_keeps_the_admin_key_and_does_not_print_it(up_env, run_up, tmp_path) -> None:
    first = run_up(up_env)
    key = KEY.search(first.wait_for(READY, timeout=300)).group(0)
    assert first.stop() == 0

    started = time.monotonic()
    second = run_up(up_env)
    out = second.wait_for(READY, timeout=120)
    print(f"warm `up` to ready: {time.monotonic() - started:.1f}s")
    assert not KEY.search(out)
    assert f"Admin API key:  in {tmp_path / 'flock' / 'admin.key'}" in out
    assert (tmp_path / "flock" / "admin.key").read_text().strip() == key
    assert chat_through_gateway(second.port, key)["usage"]["completion_tokens"] > 0
    assert second.stop(signal.SIGINT) == 0


def test_up_fails_fast_when_its_port_is_taken(up_env, run_up, tmp_path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        started = time.monotonic()
        up = run_up(up_env, port)
        code = up.proc.wait(30)
    assert code == 1
    assert time.monotonic() - started < 15
    assert f"port {port} on 127.0.0.1 is already in use" in up.output
    assert f"--listen :{port + 1}" in up.output
    assert not (tmp_path / "flock" / "logs" / "llama-server.log").exists()


def test_up_uses_a_configured_llama_server_and_leaves_it_running(
        up_env, run_up, embedded_engine: EmbeddedEngine) -> None:
    env = {**up_env, "FLOCK_ENGINE": "llamacpp",
           "FLOCK_LLAMACPP_ENDPOINT": embedded_engine.endpoint}
    up = run_up(env)
    out = up.wait_for(READY, timeout=120)
    assert f"engine: llamacpp at {embedded_engine.endpoint}" in out
    assert not llama_servers(up.descendants())
    key = KEY.search(out).group(0)
    assert chat_through_gateway(up.port, key)["usage"]["completion_tokens"] > 0
    assert up.stop() == 0
    assert embedded_engine.check()


def test_ups_watchdog_restarts_the_embedded_engine_when_it_dies(up_env, run_up) -> None:
    up = run_up(up_env, None, "--watchdog-interval", "0.3")
    key = KEY.search(up.wait_for(READY, timeout=300)).group(0)
    [engine] = llama_servers(up.descendants())
    engine.kill()
    replaced = processes.wait_until(
        lambda: [p.pid for p in llama_servers(up.descendants())] not in ([], [engine.pid]),
        timeout=60, interval=0.2)
    assert replaced, up.output
    reply = processes.wait_until(lambda: httpx.post(
        f"http://127.0.0.1:{up.port}/v1/chat/completions", timeout=30,
        headers={"authorization": f"Bearer {key}"},
        json={"model": "auto", "max_tokens": 4, "messages": [{"role": "user", "content": "hi"}]},
    ).status_code == 200, timeout=30, interval=0.5)
    assert reply, up.output
    assert up.stop() == 0


def test_up_stops_the_engine_and_fails_when_the_gateway_dies(up_env, run_up) -> None:
    up = run_up(up_env)
    up.wait_for(READY, timeout=300)
    children = up.descendants()
    [gateway] = [p for p in children if "uvicorn" in p.cmdline()]
    gateway.kill()
    assert up.proc.wait(30) == 1
    out = up.output
    assert "the gateway (uvicorn) exited with code -9; stopped everything" in out
    assert not [p for p in children if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]


def test_up_without_an_engine_serves_the_gateway_alone(up_env, run_up) -> None:
    up = run_up(up_env, None, "--no-engine")
    out = up.wait_for(READY, timeout=120)
    assert "Engine:         none" in out
    assert not llama_servers(up.descendants())
    assert httpx.get(f"http://127.0.0.1:{up.port}/healthz", timeout=5).status_code == 200
    assert up.stop() == 0


def test_up_suggests_a_catalog_model_that_fits_when_the_engine_serves_none(up_env, run_up) -> None:
    from tests.fakes.ollama_server import FakeOllama

    with FakeOllama(models=()) as ollama:
        env = {**up_env, "FLOCK_ENGINE": "ollama", "FLOCK_OLLAMA_ENDPOINT": ollama.url}
        up = run_up(env)
        out = up.wait_for(READY, timeout=120)
        assert "default model: none yet" in out
        assert "python manage.py model add " in out and "fits this machine and ollama" in out
        assert up.stop() == 0
