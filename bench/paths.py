"""The three paths to the fake engine: direct, Flock (as `manage.py up` runs it) and
LiteLLM's proxy (in a virtual environment of its own, offline, without a database)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from bench.procs import Procs, free_port, wait_healthy

PROJECT = Path(__file__).resolve().parent.parent
LITELLM_VERSION = "1.82.6"  # the last release before the March 2026 compromise (1.82.7/1.82.8)
LITELLM_MASTER_KEY = "sk-bench-litellm-master-key"
BENCH_MODELS = ("bench-fast", "bench-stream", "bench-slow")
USER_QUOTA = 10**12  # tokens a day: never reached, but every request reserves and settles
START_TIMEOUT = 120.0


@dataclass
class Target:
    name: str
    port: int
    api_key: str = ""
    pids: list[int] = field(default_factory=list)
    startup_s: float | None = None
    workers: int = 1
    data_dir: Path | None = None


def cache_dir() -> Path:
    return Path(os.environ.get("FLOCK_CACHE_DIR") or Path.home() / ".cache" / "flock") / "bench"


def start_engine(procs: Procs, *, stream_pace_ms: float, slow_pace_ms: float) -> Target:
    proc = procs.spawn("engine", [sys.executable, "-m", "bench.engine", "--port", "0",
                                  "--stream-pace-ms", str(stream_pace_ms),
                                  "--slow-pace-ms", str(slow_pace_ms)],
                       env=dict(os.environ), cwd=PROJECT, stdout_pipe=True)
    assert proc.stdout is not None
    line = proc.stdout.readline().decode().split()
    if len(line) != 2 or line[0] != "READY":
        raise RuntimeError("the fake engine did not start; see its log")
    return Target("direct", int(line[1]), pids=[proc.pid])


def _flock_env(data_dir: Path, engine_port: int, port: int, redis_url: str) -> dict[str, str]:
    drop = ("DATABASE_URL", "REDIS_URL", "DJANGO_SETTINGS_MODULE", "VLLM_API_KEY")
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLOCK_") and k not in drop}
    env.update(FLOCK_DATA_DIR=str(data_dir), FLOCK_ENGINE="vllm",
               FLOCK_VLLM_ENDPOINT=f"http://127.0.0.1:{engine_port}",
               FLOCK_LISTEN=f"127.0.0.1:{port}", DJANGO_SETTINGS_MODULE="flocksite.settings")
    if redis_url:
        env["REDIS_URL"] = redis_url
    return env


def _manage(env: dict[str, str], project: Path, *args: str) -> str:
    done = subprocess.run([sys.executable, "manage.py", *args], env=env, cwd=project,
                          capture_output=True, text=True, timeout=300)
    if done.returncode:
        raise RuntimeError(f"manage.py {' '.join(args)} failed:\n{done.stderr[-2000:]}")
    return done.stdout


def server_argv(server: str, data_dir: Path, *, port: int | None = None,
                fd: int | None = None) -> list[str]:
    """The ASGI server's command line: `up`'s own (cluster/gateway_server.py), or daphne's."""
    if server == "daphne":
        address = ["--fd", str(fd)] if fd is not None else ["-b", "127.0.0.1", "-p", str(port)]
        return [sys.executable, "-m", "daphne", "-v", "0", "--access-log",
                str(data_dir / "logs" / "access.log"), *address, "flocksite.asgi:application"]
    from cluster.gateway_server import gateway_argv

    return gateway_argv(host="127.0.0.1", port=port, fd=fd)


def start_flock(procs: Procs, work: Path, *, engine_port: int, workers: int,
                redis_url: str = "", project: Path = PROJECT, server: str = "up") -> Target:
    """Migrates a fresh data directory, creates a user key with a daily quota, and serves
    `flocksite.asgi:application` the way `manage.py up` does (`server="daphne"`: with daphne,
    for comparison). Several workers share one listening socket (--fd); they then need Redis
    for shared quotas."""
    data_dir = work / "flock-data"
    (data_dir / "logs").mkdir(parents=True, exist_ok=True)
    port = free_port()
    env = _flock_env(data_dir, engine_port, port, redis_url)
    _manage(env, project, "migrate", "--verbosity", "0")
    issued = json.loads(_manage(env, project, "token", "create", "bench-user", "--quota",
                                str(USER_QUOTA), "--json"))
    listener = None
    if workers == 1:
        argvs = [server_argv(server, data_dir, port=port)]
        fds: tuple[int, ...] = ()
    else:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", port))
        listener.listen(4096)
        listener.set_inheritable(True)
        fds = (listener.fileno(),)
        argvs = [server_argv(server, data_dir, fd=listener.fileno())] * workers
    started = [procs.spawn(f"flock-{i}", argv, env=env, cwd=project, pass_fds=fds)
               for i, argv in enumerate(argvs)]
    try:
        startup = wait_healthy(port, "/healthz", started[0], START_TIMEOUT)
    finally:
        if listener is not None:
            listener.close()  # the workers hold their own copies
    return Target("flock", port, issued["token"], [p.pid for p in started], startup, workers,
                  data_dir)


def flock_export(ref: str, into: Path) -> str:
    """Writes the tree of git `ref` into `into` (the repository is only read); returns a label."""
    sha = subprocess.run(["git", "-C", str(PROJECT), "rev-parse", "--short", ref], check=True,
                         capture_output=True, text=True).stdout.strip()
    into.mkdir(parents=True)
    archive = subprocess.Popen(["git", "-C", str(PROJECT), "archive", ref],
                               stdout=subprocess.PIPE)
    subprocess.run(["tar", "-x", "-C", str(into)], stdin=archive.stdout, check=True)
    if archive.wait():
        raise RuntimeError(f"git archive {ref} failed")
    return f"{ref} ({sha}), exported"


def flock_tree_label() -> str:
    def git(*args: str) -> str:
        return subprocess.run(["git", "-C", str(PROJECT), *args], capture_output=True,
                              text=True).stdout.strip()

    sha = git("rev-parse", "--short", "HEAD") or "?"
    changed = len([line for line in git("status", "--porcelain").splitlines()
                   if not line[3:].startswith("bench/")])
    return f"working tree at {sha}" + (f" with {changed} uncommitted changes" if changed else "")


def litellm_venv() -> Path:
    return cache_dir() / "litellm-venv"


def litellm_install(version: str = LITELLM_VERSION) -> Path:
    """LiteLLM's proxy in a virtual environment of its own (installed once, then reused)."""
    venv = litellm_venv()
    requirement = f"litellm[proxy]=={version}"
    stamp = venv / ".bench-requirement"
    if stamp.exists() and stamp.read_text().strip() == requirement and (venv / "bin/litellm").exists():
        return venv
    print(f"==> installing {requirement} into {venv} (once; about 600 MB)", flush=True)
    venv.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True)
    subprocess.run([str(venv / "bin/pip"), "install", "--quiet", "--disable-pip-version-check",
                    requirement], check=True)
    stamp.write_text(requirement + "\n")
    return venv


def litellm_version(venv: Path) -> str:
    done = subprocess.run([str(venv / "bin/python"), "-c",
                           "import importlib.metadata as m; print(m.version('litellm'))"],
                          capture_output=True, text=True)
    return done.stdout.strip() or "?"


def start_litellm(procs: Procs, work: Path, *, engine_port: int, workers: int,
                  venv: Path) -> Target:
    """LiteLLM's proxy routing each bench model to the engine as an `openai/` model, with a
    master key, no database, offline (local cost map), in a clean environment."""
    home = work / "litellm"
    home.mkdir(parents=True, exist_ok=True)
    config = home / "config.yaml"
    lines = ["model_list:"]
    for model in BENCH_MODELS:
        lines += [f"  - model_name: {model}", "    litellm_params:",
                  f"      model: openai/{model}",
                  f"      api_base: http://127.0.0.1:{engine_port}/v1", "      api_key: fake"]
    lines += ["general_settings:", f"  master_key: {LITELLM_MASTER_KEY}"]
    config.write_text("\n".join(lines) + "\n")
    port = free_port()
    env = {"PATH": f"{venv / 'bin'}:/usr/local/bin:/usr/bin:/bin", "HOME": str(home),
           "LANG": "C.UTF-8", "LITELLM_LOCAL_MODEL_COST_MAP": "True"}
    proc = procs.spawn("litellm", [str(venv / "bin/litellm"), "--config", str(config),
                                   "--host", "127.0.0.1", "--port", str(port),
                                   "--num_workers", str(workers)], env=env, cwd=home)
    startup = wait_healthy(port, "/health/liveliness", proc, START_TIMEOUT)
    return Target("litellm", port, LITELLM_MASTER_KEY, [proc.pid], startup, workers)
