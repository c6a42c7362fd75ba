"""Sharding as a user does it on one machine: `manage.py up` running, `manage.py shard create`
run from another terminal and exiting, the model served through up's gateway, up taking over
the processes the command left behind (a killed rpc-server comes back), `shard remove` leaving
no process."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import httpx
import psutil
import pytest

from cluster.embedded import PROJECT_ROOT
from tests.cluster.shard_helpers import alive, wait_for

pytestmark = pytest.mark.engine

MODEL = "gemma-3-270m"
WORKERS = """
from django.utils import timezone
from cluster import embedded
from cluster.models import Node, NodeRole
for name in ("w1", "w2"):
    Node.objects.create(name=name, role=NodeRole.WORKER, address="127.0.0.1",
                        last_heartbeat_at=timezone.now(), llama_cpp_build=embedded.build_label())
"""


def manage(env: dict[str, str], *args: str, timeout: float = 300) -> str:
    done = subprocess.run([sys.executable, "manage.py", *args], cwd=PROJECT_ROOT, env=env,
                          capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, f"manage.py {' '.join(args)}:\n{done.stdout}{done.stderr}"
    return done.stdout


def listed(env: dict[str, str]) -> dict[str, dict]:
    return {f"{s['role']}@{s['node']}": s for s in json.loads(manage(env, "shard", "ls", "--json"))}


def test_up_takes_over_what_shard_create_left_and_remove_leaves_nothing(up_env, run_up, gguf):
    up = run_up(up_env, None, "--no-engine")
    up.wait_for("Flock is ready", timeout=90)
    manage(up_env, "shell", "-c", WORKERS)
    pids: list[int] = []
    try:
        manage(up_env, "shard", "create", MODEL, "2", "--gguf", str(gguf))
        shards = listed(up_env)
        pids = [s["pid"] for s in shards.values()]
        assert all(alive(pid) for pid in pids)  # they outlived the command that started them
        up_pid = str(up.proc.pid)
        wait_for(lambda: all(s["supervisor"].endswith(f":{up_pid}")
                             for s in listed(up_env).values()),
                 timeout=30, what="up to take over the shard processes")

        key = (PROJECT_ROOT / up_env["FLOCK_DATA_DIR"] / "admin.key").read_text().strip()
        answer = httpx.post(f"http://127.0.0.1:{up.port}/v1/chat/completions", timeout=120,
                            headers={"authorization": f"Bearer {key}"},
                            json={"model": MODEL, "max_tokens": 8,
                                  "messages": [{"role": "user", "content": "Say hello"}]})
        assert answer.status_code == 200, answer.text
        assert answer.json()["usage"]["completion_tokens"] > 0

        victim = shards["rpc@w2"]["pid"]
        os.kill(victim, signal.SIGKILL)
        back = wait_for(lambda: (s := listed(up_env)["rpc@w2"])["restarts"] == 1
                        and s["state"] == "ready" and s,
                        timeout=30, what="up's supervisor to restart the rpc-server")
        assert back["pid"] != victim and alive(back["pid"])
        assert psutil.Process(back["pid"]).ppid() == up.proc.pid
        pids = [s["pid"] for s in listed(up_env).values()]

        manage(up_env, "shard", "remove", MODEL, "--yes")
        assert not any(alive(pid) for pid in pids)
        assert listed(up_env) == {}
    finally:
        for pid in pids:
            if alive(pid):
                os.kill(pid, signal.SIGKILL)
        up.stop()
