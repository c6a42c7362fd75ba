"""Child processes that Flock starts and owns (llama-server, daphne): spawning them so they die
with us, stopping them in order, and the port and HTTP checks around them."""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import httpx

_PR_SET_PDEATHSIG = 1
# Loaded in the parent: the child between fork and exec must not load libraries.
_libc = ctypes.CDLL(None, use_errno=True) if sys.platform.startswith("linux") else None


def _die_with_parent() -> None:
    # A child of `up` must not outlive it, even when `up` is killed with SIGKILL.
    if _libc is not None:
        _libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def spawn(argv: Sequence[str], *, env: dict[str, str] | None = None, cwd: Path | None = None,
          log_path: Path | None = None) -> subprocess.Popen:
    """Starts `argv` in its own session (so a terminal's Ctrl-C reaches only `up`, which stops
    children in order), writing to `log_path` when given, else to our own stdout/stderr.

    On Linux the child gets SIGTERM when the thread that spawned it exits, so spawn from a thread
    that lives as long as the child should (the main thread, or the watchdog's)."""
    log = None
    if log_path is not None:
        log_path.parent.mkdir(parents=True, exist_ok=True)
        log = open(log_path, "ab")  # noqa: SIM115 - the child keeps the descriptor
    try:
        return subprocess.Popen(
            list(argv), env=env, cwd=cwd, stdin=subprocess.DEVNULL,
            stdout=log, stderr=subprocess.STDOUT if log else None,
            start_new_session=True, preexec_fn=_die_with_parent,  # noqa: PLW1509
        )
    finally:
        if log is not None:
            log.close()


def stop(proc: subprocess.Popen | None, *, timeout: float = 10.0) -> int | None:
    """SIGTERM, then SIGKILL after `timeout`; returns the exit code."""
    if proc is None:
        return None
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            proc.terminate()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            proc.wait(5)
    return proc.returncode


def port_is_free(host: str, port: int) -> bool:
    """True when a server could listen on host:port now."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        # Servers set SO_REUSEADDR too, so sockets in TIME_WAIT do not count as "in use".
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host or "0.0.0.0", port))
        except OSError as exc:
            if exc.errno in (errno.EADDRINUSE, errno.EACCES):
                return False
            raise
    return True


def free_port(host: str = "127.0.0.1") -> int:
    """A port the kernel considers free right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def local_url(host: str, port: int, path: str = "") -> str:
    """A URL for reaching a server on this machine that listens on host:port."""
    if host in ("", "0.0.0.0"):
        host = "127.0.0.1"
    elif host == "::":
        host = "::1"
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{port}{path}"


def http_status(url: str, *, timeout: float = 2.0) -> int | None:
    """The status code of GET `url`, or None when nothing answers."""
    try:
        return httpx.get(url, timeout=timeout, trust_env=False).status_code
    except httpx.HTTPError:
        return None


def wait_until(ready: Callable[[], bool], *, timeout: float, interval: float = 0.2,
               alive: Callable[[], bool] = lambda: True) -> bool:
    """Polls `ready` until it holds (True), `alive` stops holding, or `timeout` passes (False)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if ready():
            return True
        if not alive():
            return False
        time.sleep(interval)
    return ready()


def log_tail(path: Path, lines: int = 20) -> str:
    try:
        with open(path, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            fh.seek(max(0, fh.tell() - 16384))
            text = fh.read().decode("utf-8", "replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


def terminate(proc, timeout: float = 10.0) -> None:
    """SIGTERM to a psutil.Process, SIGKILL when it is still there after `timeout` seconds; waits
    for it (which reaps it too, when it is our child)."""
    import psutil

    with contextlib.suppress(ProcessLookupError):
        os.kill(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout)
    except psutil.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.kill(proc.pid, signal.SIGKILL)
        with contextlib.suppress(psutil.Error):
            proc.wait(5)
    except psutil.Error:
        pass
