"""The health watchdog for engines Flock started itself: a failed probe counts, a good one resets
the count, and the third failure in a row force-restarts the process (which covers a hung
llama-server, not only a dead one).

The process handle lives in the `up` process, so watchdogs are registered here by name and ticked
in-process: by a daemon thread in `up` that runs the `cluster.engine_watchdog_tick` task locally
every `interval` seconds."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Protocol

log = logging.getLogger("cluster.watchdog")

INTERVAL = 30.0
MAX_FAILURES = 3


class Supervised(Protocol):
    def check(self) -> bool: ...

    def restart(self) -> str: ...


@dataclass(frozen=True)
class TickResult:
    name: str
    healthy: bool
    failures: int
    restarted: bool = False
    error: str = ""

    def as_dict(self) -> dict:
        return asdict(self)


class Watchdog:
    def __init__(self, target: Supervised, *, name: str = "embedded", interval: float = INTERVAL,
                 max_failures: int = MAX_FAILURES) -> None:
        self.target = target
        self.name = name
        self.interval = interval
        self.max_failures = max_failures
        self.failures = 0
        self.restarts = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def tick(self) -> TickResult:
        """One probe; restarts the target on the `max_failures`-th consecutive failure."""
        with self._lock:
            if self.target.check():
                self.failures = 0
                return TickResult(self.name, healthy=True, failures=0)
            # Capped, so after a failed restart the next failed tick tries again.
            self.failures = min(self.failures + 1, self.max_failures)
            if self.failures < self.max_failures:
                log.warning("engine %s failed its health check (%d/%d)", self.name,
                            self.failures, self.max_failures)
                return TickResult(self.name, healthy=False, failures=self.failures)
            log.error("engine %s failed %d health checks in a row; restarting it", self.name,
                      self.failures)
            try:
                self.target.restart()
            except Exception as exc:
                log.exception("restarting engine %s failed", self.name)
                return TickResult(self.name, healthy=False, failures=self.failures,
                                  error=str(exc))
            self.failures = 0
            self.restarts += 1
            return TickResult(self.name, healthy=True, failures=0, restarted=True)

    def start(self, tick: Callable[[], object] | None = None) -> threading.Thread:
        """Runs `tick` (default: self.tick) every `interval` seconds on a daemon thread."""
        run_tick = tick or self.tick
        self._stop.clear()

        def loop() -> None:
            while not self._stop.wait(self.interval):
                try:
                    run_tick()
                except Exception:  # the watchdog must outlive any one bad tick
                    log.exception("watchdog tick for %s failed", self.name)

        self._thread = threading.Thread(target=loop, name=f"watchdog-{self.name}", daemon=True)
        self._thread.start()
        return self._thread

    def stop(self, timeout: float = 15.0) -> None:
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout)


_registry: dict[str, Watchdog] = {}
_registry_lock = threading.Lock()


def register(watchdog: Watchdog) -> Watchdog:
    with _registry_lock:
        _registry[watchdog.name] = watchdog
    return watchdog


def unregister(name: str) -> None:
    with _registry_lock:
        _registry.pop(name, None)


def registered(name: str) -> Watchdog | None:
    with _registry_lock:
        return _registry.get(name)
