"""The processes the bench starts: each in a session of its own, logged to a file, and ended by
its own process group id when the bench stops, however it stops."""

from __future__ import annotations

import http.client
import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import psutil


class Procs:
    """Every process this bench run started. `stop_all` ends them, and only them."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.started: list[subprocess.Popen] = []

    def __enter__(self) -> Procs:
        return self

    def __exit__(self, *exc) -> None:
        self.stop_all()

    def spawn(self, name: str, argv: list[str], *, env: dict[str, str], cwd: Path,
              pass_fds: tuple[int, ...] = (), stdout_pipe: bool = False) -> subprocess.Popen:
        log = open(self.log_dir / f"{name}.log", "ab")  # noqa: SIM115 - the child keeps it
        proc = subprocess.Popen(
            argv, env=env, cwd=cwd, stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE if stdout_pipe else log, stderr=log,
            start_new_session=True, pass_fds=pass_fds)
        log.close()
        self.started.append(proc)
        return proc

    def stop(self, proc: subprocess.Popen, timeout: float = 10.0) -> None:
        if proc.poll() is None:
            _signal_group(proc, signal.SIGTERM)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                pass
        _signal_group(proc, signal.SIGKILL)  # whatever of its group is left
        if proc.poll() is None:
            proc.wait(5)
        if proc.stdout is not None:
            proc.stdout.close()

    def stop_all(self) -> None:
        while self.started:
            self.stop(self.started.pop())


def _signal_group(proc: subprocess.Popen, signum: int) -> None:
    try:
        os.killpg(proc.pid, signum)  # the group this bench created for it (start_new_session)
    except (ProcessLookupError, PermissionError):
        pass


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def http_get(port: int, path: str, timeout: float = 2.0,
             headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", path, headers=headers or {})
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def wait_healthy(port: int, path: str, proc: subprocess.Popen, timeout: float) -> float:
    """Seconds until GET `path` answers 200; raises if the process dies or time runs out."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if proc.poll() is not None:
            raise RuntimeError(f"the process exited with code {proc.returncode} before "
                               f"answering {path}")
        try:
            if http_get(port, path, timeout=1.0)[0] == 200:
                return time.monotonic() - started
        except OSError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"nothing answered {path} on port {port} within {timeout:.0f} s")


def tree(pids: list[int]) -> list[psutil.Process]:
    found = []
    for pid in pids:
        try:
            root = psutil.Process(pid)
            found += [root, *root.children(recursive=True)]
        except psutil.NoSuchProcess:
            pass
    return found


def rss_mb(pids: list[int]) -> tuple[float, list[float]]:
    """The total resident memory of the processes and their children, and that of each one
    that does the serving (a process without children)."""
    procs = tree(pids)
    total, workers = 0.0, []
    for proc in procs:
        try:
            rss = proc.memory_info().rss / 2**20
            total += rss
            if not proc.children():
                workers.append(rss)
        except psutil.NoSuchProcess:
            pass
    return total, workers


def cpu_seconds(pids: list[int]) -> float:
    total = 0.0
    for proc in tree(pids):
        try:
            times = proc.cpu_times()
            total += times.user + times.system
        except psutil.NoSuchProcess:
            pass
    return total
