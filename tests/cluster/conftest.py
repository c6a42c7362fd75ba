"""Fixtures for the cluster tests: a real embedded llama-server, and `manage.py up` run as the
user runs it, in a subprocess with its own data dir."""

from __future__ import annotations

import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
from django.conf import settings

from cluster.embedded import PROJECT_ROOT, EmbeddedEngine
from flocksite.config import ENGINES


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def closed_endpoints() -> dict[str, str]:
    """An endpoint per engine kind where nothing listens."""
    return {kind: f"http://127.0.0.1:{free_port()}" for kind in ENGINES}


@pytest.fixture
def embedded_engine() -> Iterator[EmbeddedEngine]:
    """A real llama-server serving gemma-3-270m; the model is assembled once per test session."""
    engine = EmbeddedEngine(settings.FLOCK.data_dir, ready_timeout=60)
    engine.start()
    yield engine
    engine.stop()


class UpProcess:
    """`manage.py up` in a subprocess; its merged output is collected line by line."""

    def __init__(self, env: dict[str, str], port: int, *extra: str) -> None:
        self.port = port
        self.lines: list[str] = []
        self._queue: queue.Queue[str | None] = queue.Queue()
        self.proc = subprocess.Popen(
            [sys.executable, "manage.py", "up", "--no-wizard", "--listen", f"127.0.0.1:{port}",
             *extra],
            cwd=PROJECT_ROOT, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, text=True)
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self._queue.put(line)
        self._queue.put(None)

    @property
    def output(self) -> str:
        while True:
            try:
                line = self._queue.get_nowait()
            except queue.Empty:
                return "".join(self.lines)
            if line is not None:
                self.lines.append(line)

    def wait_for(self, text: str, timeout: float) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            out = self.output
            if text in out:
                return out
            if self.proc.poll() is not None:
                time.sleep(0.2)  # let the reader drain
                pytest.fail(f"`up` exited with {self.proc.returncode} before {text!r}:\n"
                            f"{self.output}")
            time.sleep(0.1)
        pytest.fail(f"`up` did not print {text!r} within {timeout}s:\n{self.output}")

    def descendants(self) -> list[psutil.Process]:
        return psutil.Process(self.proc.pid).children(recursive=True)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
                pytest.fail(f"`up` did not stop within {timeout}s of {sig}:\n{self.output}")
        return self.proc.returncode


@pytest.fixture
def up_env(tmp_path: Path) -> dict[str, str]:
    """The environment of a user's first `up`: an empty data dir, SQLite, no Redis, and no
    engine answering on any engine's endpoint."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("FLOCK_") and k not in ("DATABASE_URL", "REDIS_URL")}
    env["FLOCK_DATA_DIR"] = str(tmp_path / "flock")
    env["NO_COLOR"] = "1"
    for kind, endpoint in closed_endpoints().items():
        env[f"FLOCK_{kind.upper()}_ENDPOINT"] = endpoint
    return env


@pytest.fixture
def run_up() -> Iterator:
    started: list[UpProcess] = []

    def run(env: dict[str, str], port: int | None = None, *extra: str) -> UpProcess:
        up = UpProcess(env, port or free_port(), *extra)
        started.append(up)
        return up

    yield run
    for up in started:  # a failed test must not leave `up` (and its children) running
        if up.proc.poll() is None:
            up.proc.kill()
            up.proc.wait(10)
