"""Usage records leave the request path through a bounded in-process buffer that a background
thread flushes to the database in batches. A failed flush keeps the records for the next try;
records beyond the bound are counted in `dropped`, never silently lost."""

from __future__ import annotations

import atexit
import logging
import threading
from collections import deque
from dataclasses import asdict, dataclass
from datetime import datetime

from django.db import close_old_connections

log = logging.getLogger("flock.usage")

MAX_BUFFERED = 100_000
BATCH = 500
INTERVAL_SECONDS = 1.0


@dataclass
class UsageEvent:
    created_at: datetime
    request_id: str
    model: str
    protocol: str
    endpoint: str
    outcome: str
    key_id: int | None = None
    key_name: str = ""
    node: str = ""
    engine: str = ""
    stream: bool = False
    prompt_tokens: int = 0
    completion_tokens: int = 0
    latency_ms: int = 0
    ttft_ms: int | None = None
    status_code: int = 200
    error_type: str = ""
    attempts: int = 0  # engines tried (fallbacks included)
    requested_model: str = ""  # the name the caller asked for, when `model` served instead


class UsageBuffer:
    def __init__(self, max_buffered: int = MAX_BUFFERED) -> None:
        self._items: deque[UsageEvent] = deque()
        self._max = max_buffered
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._flush_lock = threading.Lock()
        self.dropped = 0
        self.written = 0
        self.background = True  # flush from a thread; tests turn it off and flush themselves

    def __len__(self) -> int:
        return len(self._items)

    def add(self, event: UsageEvent) -> None:
        with self._lock:
            if len(self._items) >= self._max:
                self.dropped += 1
                log.error("usage buffer full (%d); record %s dropped", self._max, event.request_id)
                return
            self._items.append(event)
            if len(self._items) >= BATCH:
                self._wake.set()
        self._ensure_thread()

    def discard(self) -> None:
        """Forgets everything buffered (tests start from a clean slate with it)."""
        with self._lock:
            self._items.clear()

    def flush(self) -> int:
        """Writes everything buffered now; returns how many records were written."""
        from accounts.models import ApiKey, UsageRecord

        written = 0
        with self._flush_lock:
            while True:
                with self._lock:
                    batch = [self._items.popleft() for _ in range(min(BATCH, len(self._items)))]
                if not batch:
                    return written
                try:
                    UsageRecord.objects.bulk_create(
                        [UsageRecord(**asdict(e)) for e in batch], ignore_conflicts=True)
                    last_used: dict[int, datetime] = {}
                    for e in batch:
                        if e.key_id is not None:
                            last_used[e.key_id] = max(e.created_at, last_used.get(e.key_id, e.created_at))
                    for key_id, when in last_used.items():
                        ApiKey.objects.filter(pk=key_id).update(last_used_at=when)
                except Exception:
                    with self._lock:
                        self._items.extendleft(reversed(batch))
                    log.exception("usage flush failed; %d records kept for the next try", len(batch))
                    close_old_connections()
                    return written
                written += len(batch)
                self.written += len(batch)

    def _ensure_thread(self) -> None:
        if not self.background:
            return
        if self._thread is not None and self._thread.is_alive():
            return
        with self._lock:
            if self._thread is not None and self._thread.is_alive():
                return
            self._thread = threading.Thread(target=self._run, name="flock-usage-flush", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        while True:
            self._wake.wait(INTERVAL_SECONDS)
            self._wake.clear()
            if not self._items:
                continue
            try:
                self.flush()
            finally:
                close_old_connections()


buffer = UsageBuffer()


def usage_record(event: UsageEvent) -> None:
    """Queues one usage record; never blocks and never touches the database."""
    buffer.add(event)


def usage_flush() -> int:
    return buffer.flush()


atexit.register(lambda: buffer.flush() if buffer.background and len(buffer) else None)
