"""Usage records leave the request path through a bounded in-process buffer that a background
thread flushes to the database in batches. A failed flush keeps the records for the next try;
records beyond the bound are counted in `dropped` (and `flock_usage_records_dropped_total`),
never silently lost.

With REDIS_URL the thread first parks each record in a Redis list (within PARK_SECONDS of the
request's end), so a gateway process that dies (SIGKILL, OOM) loses nothing that was parked: any
live process flushes the list. A flush claims a batch by moving it to a list of its own, writes
it, then deletes that list; a process that dies between the two leaves its claim behind, which
another takes back once the dead one's owner mark expires. Rows are keyed by the unique request
id, and an id already written is skipped (accounts/usage_write.py), so a batch written twice
lands once: nothing is lost and nothing is counted twice."""

from __future__ import annotations

import atexit
import logging
import os
import socket
import threading
import time
import uuid
from collections import deque

from django.db import close_old_connections

from accounts.usage_write import UsageEvent, prepared_row, write_batch

log = logging.getLogger("flock.usage")

MAX_BUFFERED = 100_000
MAX_PARKED = 1_000_000  # records waiting in Redis (while the database is away)
BATCH = 500
INTERVAL_SECONDS = 1.0
FLUSH_NICENESS = 10  # the flush thread's scheduling priority below the event loop's
PARK_SECONDS = 0.05
OWNER_TTL = 10  # a claim outlives its owner's last sign of life by this much
PENDING = "flock:usage:pending"
CLAIM = "flock:usage:claim:"
OWNER = "flock:usage:owner:"
CLAIMANTS = "flock:usage:claimants"

# Park: append records (ARGV[2..]) unless the list would pass its bound (ARGV[1]); then they stay
# in memory, where that buffer's bound holds.
_PARK = """
if redis.call('LLEN', KEYS[1]) + #ARGV - 1 > tonumber(ARGV[1]) then return -1 end
return redis.call('RPUSH', KEYS[1], unpack(ARGV, 2))
"""
# Claim: move up to ARGV[1] records from the head of the pending list to this owner's claim.
_CLAIM = """
local items = redis.call('LRANGE', KEYS[1], 0, tonumber(ARGV[1]) - 1)
if #items == 0 then return items end
redis.call('LTRIM', KEYS[1], #items, -1)
redis.call('RPUSH', KEYS[2], unpack(items))
return items
"""
# Give back: put a claim's records back at the head of the pending list, in order.
_GIVE_BACK = """
local items = redis.call('LRANGE', KEYS[2], 0, -1)
for i = #items, 1, -1 do redis.call('LPUSH', KEYS[1], items[i]) end
redis.call('DEL', KEYS[2])
return #items
"""


class UsageBuffer:
    def __init__(self, max_buffered: int = MAX_BUFFERED) -> None:
        self._items: deque[UsageEvent] = deque()
        self._max = max_buffered
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._flush_lock = threading.Lock()
        self._redis = None
        self._owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._owner_pid = os.getpid()
        self._owner_marked = 0.0
        self.dropped = 0
        self.written = 0
        self.background = True  # flush from a thread; tests turn it off and flush themselves

    def __len__(self) -> int:
        return len(self._items)

    def add(self, event: UsageEvent) -> None:
        try:
            prepared_row(event)  # here rather than on the flush thread (usage_write.prepared_row)
        except Exception:  # made again at the flush, where a failure keeps the batch
            log.debug("usage record %s: row not made ahead", event.request_id, exc_info=True)
        with self._lock:
            if len(self._items) >= self._max:
                self.dropped += 1
                log.error("usage buffer full (%d); record %s dropped", self._max, event.request_id)
                return
            self._items.append(event)
            if len(self._items) >= BATCH:
                self._wake.set()
        self._ensure_thread()

    def start(self) -> None:
        """Starts flushing at once when records may be parked in Redis: a process restarted
        after a crash writes what its predecessor (or another process) left there."""
        if self._client() is not None:
            self._ensure_thread()

    def discard(self) -> None:
        """Forgets everything buffered, parked ones included (tests start from a clean slate)."""
        with self._lock:
            self._items.clear()
        client = self._client()
        if client is not None:
            try:
                owners = [o.decode() for o in client.smembers(CLAIMANTS)]
                client.delete(PENDING, CLAIMANTS, *[CLAIM + o for o in owners])
            except Exception:
                pass

    # --- Redis ------------------------------------------------------------------------------

    def _client(self):
        from django.conf import settings

        url = settings.FLOCK.redis_url
        if not url:
            return None
        if self._owner_pid != os.getpid():  # a forked child: a connection and a name of its own
            self._redis, self._owner_pid = None, os.getpid()
            self._owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        if self._redis is None:
            import redis

            self._redis = redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=2)
        return self._redis

    def park(self) -> int:
        """Moves what is in memory to the Redis list; returns how many records it moved."""
        from flocksite import degraded

        client = self._client()
        if client is None or not degraded.redis_usable():
            return 0
        moved = 0
        while True:
            with self._lock:
                batch = [self._items.popleft() for _ in range(min(BATCH, len(self._items)))]
            if not batch:
                return moved
            try:
                full = client.eval(_PARK, 1, PENDING, MAX_PARKED, *[e.dumps() for e in batch]) == -1
            except degraded.redis_errors():
                degraded.redis_failed()
                full = True
            if full:  # Redis is away or full: the records stay here, under this buffer's bound
                with self._lock:
                    self._items.extendleft(reversed(batch))
                return moved
            degraded.redis_ok()
            moved += len(batch)

    def parked(self) -> int:
        """Records waiting in Redis, claimed ones included (0 without Redis)."""
        client = self._client()
        if client is None:
            return 0
        owners = [o.decode() for o in client.smembers(CLAIMANTS)]
        return int(client.llen(PENDING)) + sum(int(client.llen(CLAIM + o)) for o in owners)

    def _reclaim(self, client) -> None:
        """Marks this process alive, and takes back the claims of processes that stopped."""
        now = time.monotonic()
        if now - self._owner_marked > 1.0:
            client.set(OWNER + self._owner, 1, ex=OWNER_TTL)
            client.sadd(CLAIMANTS, self._owner)
            self._owner_marked = now
        for raw in client.smembers(CLAIMANTS):
            owner = raw.decode()
            if owner != self._owner and not client.exists(OWNER + owner):
                count = client.eval(_GIVE_BACK, 2, PENDING, CLAIM + owner)
                client.srem(CLAIMANTS, owner)
                if count:
                    log.warning("took back %d usage records claimed by a stopped process", count)

    def _decoded(self, raw: list[bytes]) -> list[UsageEvent]:
        events = []
        for item in raw:
            try:
                events.append(UsageEvent.loads(item))
            except (ValueError, TypeError, KeyError):
                self.dropped += 1
                log.error("unreadable usage record in Redis dropped: %.200r", item)
        return events

    def _flush_parked(self, drain: bool = False) -> int:
        from flocksite import degraded

        client = self._client()
        if client is None or not degraded.redis_usable():
            return 0
        mine = CLAIM + self._owner
        written = 0
        try:
            self._reclaim(client)
            client.eval(_GIVE_BACK, 2, PENDING, mine)  # a claim a failed flush left behind
            left = int(client.llen(PENDING))  # what is parked now (see _flush_memory)
            while left > 0 or drain:
                raw = client.eval(_CLAIM, 2, PENDING, mine, BATCH if drain else min(BATCH, left))
                if not raw:
                    return written
                try:
                    self.dropped += write_batch(self._decoded(raw))
                except Exception:
                    client.eval(_GIVE_BACK, 2, PENDING, mine)
                    raise
                client.delete(mine)
                written += len(raw)
                self.written += len(raw)
                left -= len(raw)
            return written
        except degraded.redis_errors():
            degraded.redis_failed()
            return written

    # --- the database -----------------------------------------------------------------------

    def _flush_memory(self, drain: bool = False) -> int:
        """Writes what is in memory now; what arrives meanwhile waits for the next flush (unless
        `drain`). Left to drain until empty, the flush thread under steady traffic chased the
        records that came in while it wrote, in transactions of one or two records at 20 times
        the database CPU per record."""
        written = 0
        with self._lock:
            left = len(self._items)
        while left > 0 or drain:
            with self._lock:
                take = len(self._items) if drain else min(left, len(self._items))
                batch = [self._items.popleft() for _ in range(min(BATCH, take))]
            if not batch:
                return written
            left -= len(batch)
            try:
                self.dropped += write_batch(batch)
            except Exception:
                with self._lock:
                    self._items.extendleft(reversed(batch))
                raise
            written += len(batch)
            self.written += len(batch)
        return written

    def flush(self, drain: bool = False) -> int:
        """Writes everything buffered now (parked records too); returns how many were written.
        With `drain`, also what arrives while it writes, until none is left."""
        from flocksite import degraded

        with self._flush_lock:
            written = 0
            try:
                self.park()
                written += self._flush_memory(drain)  # what Redis did not take (or no Redis)
                written += self._flush_parked(drain)
            except Exception:
                if not degraded.is_down("database"):
                    log.warning("usage flush failed; the records wait (%d in memory, the rest in "
                                "Redis when it is configured) for the next try", len(self._items),
                                exc_info=True)
                degraded.database_failed()
                close_old_connections()
                return written
            if written:  # an idle flush touches no database, and so proves nothing
                degraded.database_ok()
            return written

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
        _background_priority()
        parking = self._client() is not None
        last_flush = 0.0
        while True:
            self._wake.wait(PARK_SECONDS if parking else INTERVAL_SECONDS)
            self._wake.clear()
            try:
                # Parked records are written at once: Redis without persistence would lose
                # what it holds if it died, so they wait there only as long as a write takes.
                # Under the flush lock: a flush that begins meanwhile waits for the records
                # this takes out of memory to reach Redis, instead of finding them in neither.
                with self._flush_lock:
                    moved = self.park() if parking else 0
                if moved or time.monotonic() - last_flush >= INTERVAL_SECONDS:
                    last_flush = time.monotonic()
                    if self._items or parking:
                        self.flush()
            except Exception:  # the flush thread must outlive any one failure
                log.exception("usage flush thread hit an error")
            try:
                close_old_connections()
            except Exception:
                pass


def _background_priority() -> None:
    """Lowers the calling thread's scheduling priority (Linux niceness is per thread), so the
    event loop's thread and the engines come first when they compete with a flush for a CPU. At
    nice +10 it still gets about a tenth of a busy CPU, enough for thousands of records a
    second."""
    try:
        thread = threading.get_native_id()
        os.setpriority(os.PRIO_PROCESS, thread, min(19, os.getpriority(os.PRIO_PROCESS, thread)
                                                    + FLUSH_NICENESS))
    except (AttributeError, OSError):  # not Linux, or not allowed: an ordinary thread
        pass


buffer = UsageBuffer()


def usage_record(event: UsageEvent) -> None:
    """Queues one usage record; never blocks and never touches the database."""
    buffer.add(event)


def usage_flush() -> int:
    """Writes everything buffered, and what arrives while it writes, until none is left (the
    `usage` command, tests): a caller that just saw a request finish finds its record."""
    return buffer.flush(drain=True)


atexit.register(lambda: buffer.flush() if buffer.background and len(buffer) else None)
