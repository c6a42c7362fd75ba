"""Pull progress, from the engine to whoever waits for it.

The pull task writes progress to its InstalledModel row at most twice a second (a remote caller
polls the row) and hands every event to listeners registered in this process (a caller that ran
the task here sees every byte)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from catalog.models import InstalledModel

WRITE_INTERVAL = 0.5


@dataclass(frozen=True)
class Progress:
    done: int
    total: int
    status: str


Listener = Callable[[Progress], None]
_listeners: dict[int, list[Listener]] = {}
_lock = threading.Lock()


@contextmanager
def listening(installed_id: int, listener: Listener | None) -> Iterator[None]:
    if listener is None:
        yield
        return
    with _lock:
        _listeners.setdefault(installed_id, []).append(listener)
    try:
        yield
    finally:
        with _lock:
            found = _listeners.get(installed_id, [])
            if listener in found:
                found.remove(listener)
            if not found:
                _listeners.pop(installed_id, None)


def _notify(installed_id: int, progress: Progress) -> None:
    with _lock:
        found = list(_listeners.get(installed_id, ()))
    for listener in found:
        listener(progress)


class Reporter:
    """The callback a pull reports to: (done, total, status)."""

    def __init__(self, installed_id: int) -> None:
        self.installed_id = installed_id
        self._written = 0.0
        self._status = ""
        self.last = Progress(0, 0, "")

    def __call__(self, done: int, total: int, status: str) -> None:
        self.last = Progress(done, total, status)
        now = time.monotonic()
        if status != self._status or now - self._written >= WRITE_INTERVAL or done == total:
            self._written, self._status = now, status
            InstalledModel.objects.filter(pk=self.installed_id).update(
                bytes_done=done, bytes_total=total, status_text=status[:200])
        _notify(self.installed_id, self.last)
