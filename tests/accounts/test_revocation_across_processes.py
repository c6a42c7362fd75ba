"""A revoked key is refused by every gateway process within a second: two daphne processes
share Redis, each has the key cached, and a revoke from the CLI reaches both."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.conftest import free_port

ROOT = Path(__file__).resolve().parents[2]
CHAT = {"model": "fake-model", "messages": [{"role": "user", "content": "hi"}]}


@pytest.fixture
def env(tmp_path, fake_engine) -> dict[str, str]:
    import redis

    redis.Redis.from_url("redis://127.0.0.1:6379/14").flushdb()
    env = {**os.environ, "FLOCK_DATA_DIR": str(tmp_path), "REDIS_URL": "redis://127.0.0.1:6379/14",
           "FLOCK_ENGINE": "vllm", "FLOCK_VLLM_ENDPOINT": fake_engine.url}
    env.pop("DATABASE_URL", None)
    return env


def manage(env: dict[str, str], *args: str) -> str:
    return subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=env, check=True,
                          capture_output=True, text=True, timeout=60).stdout


def test_a_revoke_reaches_every_gateway_process_within_a_second(env):
    manage(env, "migrate", "-v", "0")
    created = json.loads(manage(env, "token", "create", "roamer", "--json"))
    headers = {"authorization": f"Bearer {created['token']}"}
    ports = [free_port(), free_port()]
    gateways = [subprocess.Popen([sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(p),
                                  "flocksite.asgi:application"], cwd=ROOT, env=env,
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                for p in ports]
    try:
        for port in ports:
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                try:
                    httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1)
                    break
                except httpx.HTTPError:
                    time.sleep(0.1)
        for port in ports:  # each process now holds the key in its cache
            r = httpx.post(f"http://127.0.0.1:{port}/v1/chat/completions", json=CHAT,
                           headers=headers, timeout=10)
            assert r.status_code == 200, r.text
        manage(env, "token", "revoke", str(created["key"]["id"]))
        time.sleep(1.0)
        for port in ports:
            r = httpx.post(f"http://127.0.0.1:{port}/v1/chat/completions", json=CHAT,
                           headers=headers, timeout=10)
            assert r.status_code == 401
    finally:
        for gateway in gateways:
            gateway.terminate()
            gateway.wait(timeout=10)
