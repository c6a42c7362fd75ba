"""A small cluster on a real network, on one machine: Linux network namespaces joined by veth
pairs to a bridge, a leader in one namespace and workers in others, each worker with a fake
engine on its own 127.0.0.1, and a Redis of our own bound to the bridge address (the machine's
own Redis listens on 127.0.0.1, which other namespaces cannot reach).

Used by tests/cluster/test_netns.py and bench/cluster_hop.py. Needs root and iproute2. Every
name carries a per-run prefix, and `Cluster.close` removes everything it made, also after a
failure half-way through `start`."""

from __future__ import annotations

import contextlib
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]
PYTHON = sys.executable
LEADER_PORT, AGENT_PORT, ENGINE_PORT = 8080, 8090, 8000


class NetnsUnavailable(RuntimeError):
    """This machine cannot make network namespaces (not root, or no iproute2)."""


def ip(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(["ip", *args], capture_output=True, text=True, check=check)


def ensure_iproute2() -> None:
    if os.geteuid() != 0:
        raise NetnsUnavailable("network namespaces need root (CI runs these tests as root)")
    if shutil.which("ip") is None:
        subprocess.run(["apt-get", "install", "-y", "-qq", "iproute2"], capture_output=True)
    if shutil.which("ip") is None:
        raise NetnsUnavailable("`ip` (iproute2) is missing and could not be installed")
    if shutil.which("redis-server") is None:
        raise NetnsUnavailable("redis-server is missing (scripts/services.sh installs it)")


def _free_subnet() -> str:
    used = ip("-4", "addr").stdout
    for _ in range(50):
        subnet = f"10.{random.randint(100, 250)}.{random.randint(0, 255)}"
        if f" {subnet}." not in used:
            return subnet
    raise NetnsUnavailable("no free 10.x.y.0/24 subnet for the test network")


@dataclass
class Box:
    """One namespace: a machine of the cluster."""

    name: str
    netns: str
    address: str
    data_dir: Path
    procs: dict[str, subprocess.Popen] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)

    @property
    def agent_url(self) -> str:
        return f"http://{self.address}:{AGENT_PORT}"


class Cluster:
    def __init__(self, workdir: Path) -> None:
        ensure_iproute2()
        self.prefix = f"fl{os.getpid() % 1000:03d}{random.randint(0, 99):02d}"
        self.workdir = workdir
        self.subnet = _free_subnet()
        self.bridge = f"{self.prefix}br"
        self.bridge_ip = f"{self.subnet}.1"
        self.boxes: dict[str, Box] = {}
        self.host_ends: list[str] = []
        self.redis: subprocess.Popen | None = None
        self.redis_url = ""
        self.admin_key = ""

    # --- the network ---------------------------------------------------------------------------

    def network(self, names: list[str]) -> None:
        ip("link", "add", self.bridge, "type", "bridge")
        ip("addr", "add", f"{self.bridge_ip}/24", "dev", self.bridge)
        ip("link", "set", self.bridge, "up")
        for n, name in enumerate(names, start=2):
            netns = f"{self.prefix}-{name}"
            host_end, box_end = f"{self.prefix}h{n}", f"{self.prefix}n{n}"
            ip("netns", "add", netns)
            box = Box(name, netns, f"{self.subnet}.{n}", self.workdir / name)
            self.boxes[name] = box
            ip("link", "add", host_end, "type", "veth", "peer", "name", box_end)
            self.host_ends.append(host_end)
            ip("link", "set", box_end, "netns", netns)
            ip("link", "set", host_end, "master", self.bridge, "up")
            ip("-n", netns, "link", "set", box_end, "name", "eth0")
            ip("-n", netns, "addr", "add", f"{box.address}/24", "dev", "eth0")
            ip("-n", netns, "link", "set", "eth0", "up")
            ip("-n", netns, "link", "set", "lo", "up")

    def start_redis(self) -> None:
        port = random.randint(20000, 40000)
        self.redis = subprocess.Popen(
            ["redis-server", "--port", str(port), "--bind", self.bridge_ip, "--save", "",
             "--appendonly", "no", "--protected-mode", "no"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        self.redis_url = f"redis://{self.bridge_ip}:{port}/0"
        _wait(lambda: subprocess.run(["redis-cli", "-h", self.bridge_ip, "-p", str(port), "ping"],
                                     capture_output=True, text=True).stdout.strip() == "PONG",
              10, "the test's Redis")

    # --- processes in the boxes ------------------------------------------------------------------

    def env(self, box: Box, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items()
               if not k.startswith("FLOCK_") and k not in ("DATABASE_URL", "REDIS_URL")}
        env.update(FLOCK_DATA_DIR=str(box.data_dir), NO_COLOR="1", REDIS_URL=self.redis_url,
                   FLOCK_ENGINE="vllm", FLOCK_VLLM_ENDPOINT=f"http://127.0.0.1:{ENGINE_PORT}",
                   PYTHONUNBUFFERED="1")
        env.update(box.env)
        env.update(extra)
        return env

    def run_in(self, box: Box, role: str, argv: list[str], **env: str) -> subprocess.Popen:
        box.data_dir.mkdir(parents=True, exist_ok=True)
        log = open(box.data_dir.parent / f"{box.name}-{role}.log", "ab")  # noqa: SIM115
        proc = subprocess.Popen(["ip", "netns", "exec", box.netns, *argv], cwd=ROOT,
                                env=self.env(box, **env), stdin=subprocess.DEVNULL, stdout=log,
                                stderr=subprocess.STDOUT, start_new_session=True)
        box.procs[role] = proc
        return proc

    def log(self, box: Box, role: str) -> str:
        path = box.data_dir.parent / f"{box.name}-{role}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def engine(self, box: Box, models: list[str], *, token_delay: float = 0.0,
               reply_delay: float = 0.0) -> None:
        old = box.procs.pop("engine", None)
        if old is not None and old.poll() is None:
            old.terminate()
            old.wait(10)
        log = box.data_dir.parent / f"{box.name}-engine.log"
        log.unlink(missing_ok=True)
        self.run_in(box, "engine", [PYTHON, "-m", "tests.fakes.serve_openai", "--port",
                                    str(ENGINE_PORT), "--models", ",".join(models),
                                    "--text", f"from {box.name}", "--token-delay",
                                    str(token_delay), "--reply-delay", str(reply_delay)])
        _wait(lambda: "ready" in self.log(box, "engine"), 20, f"{box.name}'s engine")

    def leader(self, name: str = "leader") -> Box:
        box = self.boxes[name]
        url = f"http://{box.address}:{LEADER_PORT}"
        box.env["FLOCK_EXTERNAL_URL"] = url  # what `token create --node` prints
        self.run_in(box, "up", [PYTHON, "manage.py", "up", "--no-wizard", "--listen",
                                f"{box.address}:{LEADER_PORT}"])
        _wait(lambda: _status(url + "/healthz") == 200, 60, "the leader",
              lambda: self.log(box, "up"))
        self.admin_key = (box.data_dir / "admin.key").read_text().strip()
        self.leader_box = box
        return box

    @property
    def leader_url(self) -> str:
        return f"http://{self.leader_box.address}:{LEADER_PORT}"

    def manage(self, box: Box, *args: str, timeout: float = 60) -> str:
        done = subprocess.run(["ip", "netns", "exec", box.netns, PYTHON, "manage.py", *args],
                              cwd=ROOT, env=self.env(box), capture_output=True, text=True,
                              timeout=timeout)
        if done.returncode != 0:
            raise RuntimeError(f"manage.py {' '.join(args)} failed:\n{done.stdout}{done.stderr}")
        return done.stdout

    def join(self, name: str, *extra: str, url: str | None = None) -> subprocess.Popen:
        box = self.boxes[name]
        if url is None:
            token = json.loads(self.manage(self.leader_box, "token", "create", "--node",
                                           "--json"))
            url = token["join_command"].split("join ", 1)[1].strip("'")
        argv = [PYTHON, "manage.py", "join", *([url] if url else []), "--name", name, *extra]
        return self.run_in(box, "join", argv)

    def nodes(self) -> dict[str, dict]:
        r = httpx.get(self.leader_url + "/admin/v1/nodes", timeout=10,
                      headers={"authorization": f"Bearer {self.admin_key}"})
        r.raise_for_status()
        return {n["name"]: n for n in r.json()["data"]}

    def wait_ready(self, name: str, model: str, timeout: float = 60) -> dict:
        def ready() -> dict | None:
            node = self.nodes().get(name)
            return node if node and node["routable"] and model in node["models"] else None

        return _wait(ready, timeout, f"{name} to be ready with {model}",
                     lambda: self.log(self.boxes[name], "join"))

    def kill_box(self, name: str) -> float:
        """Kills every process in the box at once (the machine dies); returns when it did."""
        box = self.boxes[name]
        pids = ip("netns", "pids", box.netns, check=False).stdout.split()
        killed_at = time.monotonic()
        for pid in pids:
            with contextlib.suppress(ProcessLookupError, ValueError):
                os.kill(int(pid), signal.SIGKILL)
        for proc in box.procs.values():
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(10)
        box.procs.clear()
        return killed_at

    # --- teardown ------------------------------------------------------------------------------

    def close(self) -> None:
        for box in self.boxes.values():
            for proc in box.procs.values():
                if proc.poll() is None:
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(proc.pid, signal.SIGTERM)
            for proc in box.procs.values():
                try:
                    proc.wait(10)
                except subprocess.TimeoutExpired:
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(proc.pid, signal.SIGKILL)
            for pid in ip("netns", "pids", box.netns, check=False).stdout.split():
                with contextlib.suppress(ProcessLookupError, ValueError):
                    os.kill(int(pid), signal.SIGKILL)
            ip("netns", "del", box.netns, check=False)
        for host_end in self.host_ends:  # a namespace still referenced would keep its pair
            ip("link", "del", host_end, check=False)
        if self.redis is not None and self.redis.poll() is None:
            self.redis.terminate()
            self.redis.wait(10)
        ip("link", "del", self.bridge, check=False)


def _status(url: str) -> int | None:
    try:
        return httpx.get(url, timeout=1).status_code
    except httpx.HTTPError:
        return None


def _wait(check, timeout: float, what: str, log=None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.1)
    tail = f"\n--- log ---\n{log()[-3000:]}" if log else ""
    raise TimeoutError(f"timed out after {timeout}s waiting for {what}{tail}")


def three_box_cluster(workdir: Path) -> Cluster:
    """A leader serving `leader-model` and two workers: worker-a serving `model-a` and `shared`,
    worker-b serving `model-b` and `shared`, each through its own agent. worker-a finds its
    advertised address itself; worker-b is given it (--advertise)."""
    cluster = Cluster(workdir)
    try:
        cluster.network(["leader", "worker-a", "worker-b"])
        cluster.start_redis()
        leader = cluster.boxes["leader"]
        cluster.engine(leader, ["leader-model"])
        cluster.leader()
        for name, model in (("worker-a", "model-a"), ("worker-b", "model-b")):
            cluster.engine(cluster.boxes[name], [model, "shared"], token_delay=0.05)
        cluster.join("worker-a")
        cluster.join("worker-b", "--advertise", cluster.boxes["worker-b"].address)
        cluster.wait_ready("worker-a", "model-a")
        cluster.wait_ready("worker-b", "model-b")
    except BaseException:
        cluster.close()
        raise
    return cluster


# --- measurements (the tests assert on them; bench/cluster_hop.py prints them) -------------------

def chat(client: httpx.Client, cluster: Cluster, model: str, **extra) -> httpx.Response:
    return client.post(cluster.leader_url + "/v1/chat/completions",
                       headers={"authorization": f"Bearer {cluster.admin_key}"},
                       json={"model": model, "messages": [{"role": "user", "content": "hi"}],
                             **extra}, timeout=30)


def hop_overhead(cluster: Cluster, *, requests: int = 200) -> dict[str, float]:
    """Median latency through the leader of a model on the leader's own engine and of one on a
    worker (leader -> worker agent -> engine), interleaved; the difference is the hop."""
    import statistics

    timings: dict[str, list[float]] = {"leader-model": [], "model-a": []}
    with httpx.Client() as client:
        for model in timings:  # warm the connections and the router's caches
            for _ in range(10):
                chat(client, cluster, model).raise_for_status()
        for _ in range(requests):
            for model, seen in timings.items():
                started = time.perf_counter()
                chat(client, cluster, model).raise_for_status()
                seen.append((time.perf_counter() - started) * 1000)
    direct = statistics.median(timings["leader-model"])
    via = statistics.median(timings["model-a"])
    return {"direct_ms": round(direct, 2), "via_worker_ms": round(via, 2),
            "hop_ms": round(via - direct, 2), "requests": requests}


def death_to_unroutable(cluster: Cluster, name: str, *, timeout: float = 40) -> dict[str, float]:
    """Kills box `name` and times how long until the leader takes it out of routing (the same
    heartbeat-age test the router uses) and until it is marked offline."""
    killed = cluster.kill_box(name)
    unroutable = offline = None
    while time.monotonic() - killed < timeout and offline is None:
        node = cluster.nodes()[name]
        now = time.monotonic() - killed
        if unroutable is None and not node["routable"]:
            unroutable = now
        if node["state"] == "offline":
            offline = now
        time.sleep(0.1)
    if unroutable is None or offline is None:
        raise TimeoutError(f"{name} still routable {timeout}s after it died")
    return {"unroutable_s": round(unroutable, 2), "offline_s": round(offline, 2)}
