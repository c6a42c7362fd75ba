"""Usage records leave the request path through a bounded in-process buffer that a background
thread flushes to the database in batches. A failed flush keeps the records for the next try;
records beyond the bound are counted in `dropped` (and `flock_usage_records_dropped_total`),
never silently lost.

With REDIS_URL the thread first parks each record in a Redis list (within PARK_SECONDS of the
request's end), so a gateway process that dies (SIGKILL, OOM) loses nothing that was parked: any
live process flushes the list. A flush claims a batch by moving it to a list of its own, writes
it, then deletes that list; a process that dies between the two leaves its claim behind, which
another takes back once the dead one's owner mark expires. Rows are keyed by the unique request
id and written with ignore_conflicts, so a batch written twice lands once: nothing is lost and
nothing is counted twice."""

from __future__ import annotations

import atexit
import json
import logging
import operator
import os
import socket
import threading
import time
import uuid
from collections import deque
from dataclasses import asdict, dataclass
from datetime import UTC, datetime

from django.db import close_old_connections

log = logging.getLogger("flock.usage")

MAX_BUFFERED = 100_000
MAX_PARKED = 1_000_000  # records waiting in Redis (while the database is away)
BATCH = 500
INTERVAL_SECONDS = 1.0
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

    def dumps(self) -> str:
        fields = asdict(self)
        fields["created_at"] = self.created_at.isoformat()
        return json.dumps(fields)

    @classmethod
    def loads(cls, raw: bytes | str) -> UsageEvent:
        fields = json.loads(raw)
        fields["created_at"] = datetime.fromisoformat(fields["created_at"])
        known = cls.__dataclass_fields__  # a record parked by another version of Flock
        return cls(**{k: v for k, v in fields.items() if k in known})


_INT_LIMITS = {"status_code": 32_767, "attempts": 32_767}
_INT_MAX = 2**31 - 1
_FIELDS = tuple(UsageEvent.__dataclass_fields__)  # the record's columns, by the same names


_TEXT, _COUNT, _WHEN, _AS_IS = range(4)


def _kinds() -> tuple[tuple[int, int], ...]:
    """(kind, limit) of each field, read once from the model: text cut to its column's length,
    counts kept within their column's range."""
    from accounts.models import UsageRecord

    out = []
    for name in _FIELDS:
        field = UsageRecord._meta.get_field(name)
        kind = field.get_internal_type()
        if kind == "CharField":
            out.append((_TEXT, field.max_length))
        elif kind.endswith("IntegerField") and name != "key_id":
            out.append((_COUNT, _INT_LIMITS.get(name, _INT_MAX)))
        elif kind == "DateTimeField":
            out.append((_WHEN, 0))
        else:
            out.append((_AS_IS, 0))
    return tuple(out)


_KINDS: tuple | None = None
_GET = operator.attrgetter(*_FIELDS)


def _values(event: UsageEvent, text_datetimes: bool) -> tuple:
    """The record as the database will take it: strings without NULs and cut to their column,
    counts within their column's range. One request's odd model name or an engine's garbage
    usage must not stop a batch (and every batch after it) from being written. Datetimes go to
    SQLite as Django stores them there (naive UTC text). About 4 µs a record: this runs on the
    flush thread, holding the GIL the event loop needs."""
    global _KINDS
    if _KINDS is None:
        _KINDS = _kinds()
    values = list(_GET(event))
    for i, (kind, limit) in enumerate(_KINDS):
        value = values[i]
        if kind == _TEXT:
            if type(value) is str:
                if "\x00" in value:
                    value = value.replace("\x00", "\ufffd")
                values[i] = value[:limit]
        elif kind == _COUNT:
            if type(value) is int and not 0 <= value <= limit:
                values[i] = max(0, min(value, limit))
        elif kind == _WHEN and text_datetimes and value is not None:
            if value.tzinfo is not None:
                value = value.astimezone(UTC).replace(tzinfo=None)
            values[i] = str(value)
    return tuple(values)


def _rows_per_statement(connection) -> int:
    if connection.vendor == "sqlite":
        import sqlite3

        connection.ensure_connection()
        params = connection.connection.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER)
    else:
        params = 65_535  # PostgreSQL's bind parameters per statement
    return max(1, params // len(_FIELDS))


def _insert(connection, rows: list[tuple]) -> None:
    """The batch in as few statements as the database takes (one, for a batch of 500); a
    request id already written is skipped, not an error. The SQL is built by hand: Django's
    bulk_create compiled every value of every row in Python on the flush thread, holding the GIL
    the event loop needs, and a statement a row (executemany) hands the GIL back and forth with
    the event loop once a row, which slowed requests for as long as the flush lasted. One
    statement runs its rows, and their rollup triggers, with the GIL released."""
    from accounts.models import UsageRecord

    ops = connection.ops
    table = ops.quote_name(UsageRecord._meta.db_table)
    columns = ", ".join(ops.quote_name(n) for n in _FIELDS)
    one = "(" + ", ".join(["%s"] * len(_FIELDS)) + ")"
    if connection.vendor == "postgresql":
        head, tail = f"INSERT INTO {table} ({columns}) VALUES ", " ON CONFLICT DO NOTHING"
    else:
        head, tail = f"INSERT OR IGNORE INTO {table} ({columns}) VALUES ", ""
    step = _rows_per_statement(connection)
    with connection.cursor() as cursor:
        for at in range(0, len(rows), step):
            part = rows[at:at + step]
            cursor.execute(head + ", ".join([one] * len(part)) + tail,
                           [v for row in part for v in row])


def _write(batch: list[UsageEvent]) -> int:
    """Writes `batch`; returns how many records the database refused outright (each logged).
    A database that is away raises, and the batch is kept for the next try."""
    from django.db import DataError, IntegrityError, connection, transaction

    from accounts.models import ApiKey

    text_datetimes = connection.vendor == "sqlite"
    rows = [_values(e, text_datetimes) for e in batch]
    refused = 0
    try:
        with transaction.atomic():
            _insert(connection, rows)
    except (DataError, IntegrityError):  # one bad row: write the others one by one
        for event, row in zip(batch, rows, strict=True):
            try:
                with transaction.atomic():
                    _insert(connection, [row])
            except (DataError, IntegrityError):
                refused += 1
                log.error("usage record %s refused by the database; dropped", event.request_id,
                          exc_info=True)
    last_used: dict[int, datetime] = {}
    for e in batch:
        if e.key_id is not None:
            last_used[e.key_id] = max(e.created_at, last_used.get(e.key_id, e.created_at))
    for key_id, when in last_used.items():
        ApiKey.objects.filter(pk=key_id).update(last_used_at=when)
    return refused


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

    def _flush_parked(self) -> int:
        from flocksite import degraded

        client = self._client()
        if client is None or not degraded.redis_usable():
            return 0
        mine = CLAIM + self._owner
        written = 0
        try:
            self._reclaim(client)
            client.eval(_GIVE_BACK, 2, PENDING, mine)  # a claim a failed flush left behind
            while True:
                raw = client.eval(_CLAIM, 2, PENDING, mine, BATCH)
                if not raw:
                    return written
                try:
                    self.dropped += _write(self._decoded(raw))
                except Exception:
                    client.eval(_GIVE_BACK, 2, PENDING, mine)
                    raise
                client.delete(mine)
                written += len(raw)
                self.written += len(raw)
        except degraded.redis_errors():
            degraded.redis_failed()
            return written

    # --- the database -----------------------------------------------------------------------

    def _flush_memory(self) -> int:
        written = 0
        while True:
            with self._lock:
                batch = [self._items.popleft() for _ in range(min(BATCH, len(self._items)))]
            if not batch:
                return written
            try:
                self.dropped += _write(batch)
            except Exception:
                with self._lock:
                    self._items.extendleft(reversed(batch))
                raise
            written += len(batch)
            self.written += len(batch)

    def flush(self) -> int:
        """Writes everything buffered now (parked records too); returns how many were written."""
        from flocksite import degraded

        with self._flush_lock:
            written = 0
            try:
                self.park()
                written += self._flush_memory()  # what Redis did not take (or no Redis)
                written += self._flush_parked()
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
        parking = self._client() is not None
        last_flush = 0.0
        while True:
            self._wake.wait(PARK_SECONDS if parking else INTERVAL_SECONDS)
            self._wake.clear()
            try:
                # Parked records are written at once: Redis without persistence would lose
                # what it holds if it died, so they wait there only as long as a write takes.
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


buffer = UsageBuffer()


def usage_record(event: UsageEvent) -> None:
    """Queues one usage record; never blocks and never touches the database."""
    buffer.add(event)


def usage_flush() -> int:
    return buffer.flush()


atexit.register(lambda: buffer.flush() if buffer.background and len(buffer) else None)
