"""Supervises the long-running processes of sharded models (rpc-server, the coordinator
llama-server) on the machine that runs them: start and wait until ready, restart a crashed one
after 1, 2, 4, 8, 16 s, then give up into `crashloop`, stop on request. State changes go to a
listener (cluster.sharding writes them to the Shard rows).

One Supervisor per process (`supervisor()`), with one monitor thread. Processes run in their
own session and do not die with the supervising process: a sharded model must outlive the
command that created it. `shard remove` stops them by pid, wherever they are supervised from,
after marking their rows stopped, so no supervisor restarts them."""

from __future__ import annotations

import logging
import socket
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import psutil

from cluster import processes

log = logging.getLogger("cluster.supervisor")

BACKOFF = (1.0, 2.0, 4.0, 8.0, 16.0)
STABLE_AFTER = 60.0  # ready for this long: the next crash starts the backoff from 1 s again
READY_TIMEOUT = 120.0
MONITOR_INTERVAL = 0.2
STALE_CHECK_SECONDS = 1.0

# state names, as in cluster.models.ShardState
STARTING, READY, RESTARTING, CRASHLOOP, STOPPED = (
    "starting", "ready", "restarting", "crashloop", "stopped")


class StartFailed(RuntimeError):
    """The process exited, or did not become ready, when first started."""


@dataclass(frozen=True)
class ProcessSpec:
    key: str  # unique in this supervisor, e.g. "shard:12"
    argv: list[str]
    host: str
    port: int
    log_path: Path
    env: dict[str, str] | None = None
    ready_path: str | None = None  # HTTP GET that must answer 200; None: a TCP connect
    ready_timeout: float = READY_TIMEOUT


@dataclass
class Change:
    key: str
    state: str
    pid: int | None
    restarts: int
    error: str = ""


Listener = Callable[[Change], None]


@dataclass
class Managed:
    spec: ProcessSpec
    proc: subprocess.Popen | None = None
    adopted: psutil.Process | None = None
    state: str = STARTING
    restarts: int = 0
    failures: int = 0  # crashes since the last stable run
    restart_at: float = 0.0
    started_at: float = 0.0
    ready_at: float = 0.0
    stale_checked: float = 0.0
    error: str = ""
    listener: Listener | None = None
    wanted: Callable[[], bool] = lambda: True
    stale: Callable[[], bool] | None = None
    history: list[float] = field(default_factory=list)  # the backoff delays used, in order

    @property
    def pid(self) -> int | None:
        if self.proc is not None:
            return self.proc.pid
        return self.adopted.pid if self.adopted is not None else None

    def alive(self) -> bool:
        if self.proc is not None:
            return self.proc.poll() is None
        if self.adopted is not None:
            try:
                return self.adopted.is_running() and \
                    self.adopted.status() != psutil.STATUS_ZOMBIE
            except psutil.Error:
                return False
        return False


def port_answers(host: str, port: int, timeout: float = 1.0) -> bool:
    """The TCP readiness probe: something accepts connections on host:port."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def is_ready(spec: ProcessSpec) -> bool:
    if spec.ready_path is None:
        return port_answers(spec.host, spec.port)
    url = processes.local_url(spec.host, spec.port, spec.ready_path)
    return processes.http_status(url, timeout=2) == 200


def _spawn(spec: ProcessSpec) -> subprocess.Popen:
    spec.log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(spec.log_path, "a") as fh:
        fh.write(f"\n==== flock: starting {Path(spec.argv[0]).name} on {spec.host}:{spec.port} "
                 f"at {time.strftime('%Y-%m-%d %H:%M:%S')} ====\n")
    with open(spec.log_path, "ab") as out:
        return subprocess.Popen(spec.argv, env=spec.env, stdin=subprocess.DEVNULL, stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True)


def kill_pid(pid: int | None, *, expect: str, timeout: float = 10.0) -> bool:
    """SIGTERM, then SIGKILL, to `pid` when its command line contains `expect` (a reused pid is
    left alone); False when no such process runs."""
    if pid is None:
        return False
    try:
        proc = psutil.Process(pid)
        if expect not in " ".join(proc.cmdline()):
            return False
    except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
        return False
    processes.terminate(proc, timeout)
    return True


class Supervisor:
    def __init__(self, *, backoff: tuple[float, ...] = BACKOFF, interval: float = MONITOR_INTERVAL,
                 stable_after: float = STABLE_AFTER) -> None:
        self.backoff = backoff
        self.interval = interval
        self.stable_after = stable_after
        self._managed: dict[str, Managed] = {}
        self._lock = threading.RLock()
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()

    # --- the public side ---------------------------------------------------------------------

    def start(self, spec: ProcessSpec, *, listener: Listener | None = None,
              wanted: Callable[[], bool] | None = None,
              stale: Callable[[], bool] | None = None) -> Managed:
        """Starts `spec` and waits until it is ready; raises StartFailed (with the log's last
        lines) when it exits or times out first, leaving nothing running."""
        with self._lock:
            if spec.key in self._managed:
                self.stop(spec.key)
        proc = _spawn(spec)
        ready = processes.wait_until(lambda: is_ready(spec), timeout=spec.ready_timeout,
                                     interval=0.1, alive=lambda: proc.poll() is None)
        if not ready or proc.poll() is not None:
            processes.stop(proc, timeout=5)
            why = (f"exited with code {proc.returncode}" if proc.returncode is not None
                   and proc.returncode >= 0 and not ready
                   else f"did not become ready within {spec.ready_timeout:.0f}s")
            raise StartFailed(f"{Path(spec.argv[0]).name} {why}; last lines of "
                              f"{spec.log_path}:\n" + (processes.log_tail(spec.log_path, 8)
                                                       or "(empty log)"))
        now = time.monotonic()
        managed = Managed(spec=spec, proc=proc, state=READY, started_at=now, ready_at=now,
                          listener=listener, wanted=wanted or (lambda: True), stale=stale)
        self._add(managed)
        return managed

    def adopt(self, spec: ProcessSpec, pid: int, *, restarts: int = 0,
              listener: Listener | None = None, wanted: Callable[[], bool] | None = None,
              stale: Callable[[], bool] | None = None) -> Managed:
        """Supervises a process started by another (now gone) supervisor; a dead one is
        restarted as if it had just crashed."""
        try:
            adopted = psutil.Process(pid) if pid else None
        except psutil.Error:
            adopted = None
        now = time.monotonic()
        managed = Managed(spec=spec, adopted=adopted, state=READY, restarts=restarts,
                          started_at=now, ready_at=now, listener=listener,
                          wanted=wanted or (lambda: True), stale=stale)
        self._add(managed)
        return managed

    def get(self, key: str) -> Managed | None:
        with self._lock:
            return self._managed.get(key)

    def keys(self) -> list[str]:
        with self._lock:
            return list(self._managed)

    def stop(self, key: str, *, timeout: float = 10.0) -> bool:
        """Stops and forgets the process under `key`; False when none is supervised here."""
        with self._lock:
            managed = self._managed.pop(key, None)
        if managed is None:
            return False
        self._terminate(managed, timeout=timeout)
        managed.state = STOPPED
        return True

    def release(self, key: str) -> None:
        """Forgets `key` without stopping its process (another supervisor takes it over)."""
        with self._lock:
            self._managed.pop(key, None)

    def shutdown(self) -> None:
        """Stops every process supervised here and the monitor."""
        for key in self.keys():
            self.stop(key)
        self._stop.set()

    # --- the monitor -------------------------------------------------------------------------

    def _add(self, managed: Managed) -> None:
        with self._lock:
            self._managed[managed.spec.key] = managed
            if self._thread is None or not self._thread.is_alive():
                self._stop.clear()
                self._thread = threading.Thread(target=self._run, name="shard-supervisor",
                                                daemon=True)
                self._thread.start()
        self._emit(managed)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            for key in self.keys():
                managed = self.get(key)
                if managed is None:
                    continue
                try:
                    self._check(managed)
                except Exception:  # one bad process (or a database hiccup) must not end the loop
                    log.exception("supervising %s failed", key)

    def _check(self, m: Managed) -> None:
        now = time.monotonic()
        if m.state == CRASHLOOP:
            return
        if m.state == RESTARTING and m.proc is None and m.adopted is None:
            if now >= m.restart_at:
                self._respawn(m, now)
            return
        if not m.alive():
            self._crashed(m, now)
            return
        if m.state == RESTARTING:
            if is_ready(m.spec):
                m.state, m.ready_at, m.error = READY, now, ""
                self._emit(m)
            elif now - m.started_at > m.spec.ready_timeout:
                self._terminate(m)
                self._crashed(m, now, why="did not become ready")
            return
        if m.failures and now - m.ready_at > self.stable_after:
            m.failures = 0
        if m.stale is not None and now - m.stale_checked > STALE_CHECK_SECONDS:
            m.stale_checked = now
            if m.stale():
                log.warning("%s: a peer restarted; restarting it too", m.spec.key)
                self._terminate(m)
                self._respawn(m, now)

    def _crashed(self, m: Managed, now: float, why: str = "") -> None:
        code = m.proc.returncode if m.proc is not None else None
        m.proc = m.adopted = None
        if not m.wanted():
            self.release(m.spec.key)
            return
        m.failures += 1
        m.error = why or (f"exited with code {code}" if code is not None else "exited")
        if m.failures > len(self.backoff):
            m.state = CRASHLOOP
            m.error = (f"{m.error}; gave up after {len(self.backoff)} restarts. Last lines of "
                       f"{m.spec.log_path}:\n{processes.log_tail(m.spec.log_path, 8)}")
            log.error("%s is in crashloop: %s", m.spec.key, m.error)
        else:
            delay = self.backoff[m.failures - 1]
            m.history = [*m.history[-19:], delay]
            m.state, m.restart_at = RESTARTING, now + delay
            log.warning("%s %s; restarting in %.0f s", m.spec.key, m.error, delay)
        self._emit(m)

    def _respawn(self, m: Managed, now: float) -> None:
        if not m.wanted():
            self.release(m.spec.key)
            return
        try:
            m.proc = _spawn(m.spec)
        except OSError as exc:
            m.proc = None
            self._crashed(m, now, why=f"could not start: {exc}")
            return
        m.restarts += 1
        m.state, m.started_at = RESTARTING, now
        self._emit(m)

    def _terminate(self, m: Managed, timeout: float = 10.0) -> None:
        if m.proc is not None:
            processes.stop(m.proc, timeout=timeout)
        elif m.adopted is not None:
            kill_pid(m.adopted.pid, expect=Path(m.spec.argv[0]).name, timeout=timeout)
        m.proc = m.adopted = None

    def _emit(self, m: Managed) -> None:
        if m.listener is None:
            return
        try:
            m.listener(Change(m.spec.key, m.state, m.pid, m.restarts, m.error))
        except Exception:
            log.exception("recording the state of %s failed", m.spec.key)


_supervisor: Supervisor | None = None
_supervisor_lock = threading.Lock()


def supervisor() -> Supervisor:
    """This process's supervisor."""
    global _supervisor
    with _supervisor_lock:
        if _supervisor is None:
            _supervisor = Supervisor()
        return _supervisor
