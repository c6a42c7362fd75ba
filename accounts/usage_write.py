"""A usage record (one inference request) and writing a batch of them to the database: the
record's values cleaned to fit their columns, then one multi-row INSERT that skips request ids
already written. The buffer (accounts/usage_buffer.py) calls `write_batch` from its flush
thread."""

from __future__ import annotations

import functools
import itertools
import json
import logging
import operator
from dataclasses import asdict, dataclass
from datetime import UTC, datetime

import orjson

log = logging.getLogger("flock.usage")


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
    SQLite as Django stores them there (naive UTC text). About 4 µs a record."""
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


_SQLITE: list[bool] = []  # [whether the default database is SQLite], read once


def _text_datetimes() -> bool:
    if not _SQLITE:
        from django.db import connections

        _SQLITE.append(connections["default"].vendor == "sqlite")
    return _SQLITE[0]


_BINDABLE = frozenset((str, int, float, bool, type(None)))


def _bindable(values: tuple) -> tuple:
    """Values SQLite's driver takes: a type it does not know goes as JSON text, as in the row
    PostgreSQL gets, so the batch still lands. (Counts are clamped by `_values`; the one other
    integer is the key's id.)"""
    if _BINDABLE.issuperset(map(type, values)):
        return values
    return tuple(v if type(v) in _BINDABLE else json.dumps(v, default=str) for v in values)


def prepared_row(event: UsageEvent) -> tuple | bytes:
    """The record's row for `_insert`, made once per record: its cleaned values, as a tuple for
    SQLite and as a JSON array for PostgreSQL. The buffer makes it when the record is queued, on
    the request's thread (a few µs), so the flush thread, whose Python holds the GIL the event
    loop needs, only gathers rows: made there, the rows of a second's records held the loop up
    for milliseconds."""
    row = event.__dict__.get("_row")
    if row is None:
        values = _values(event, _text_datetimes())
        if _text_datetimes():
            row = _bindable(values)
        else:
            try:
                row = orjson.dumps(values)
            except TypeError:  # a value orjson refuses (an integer past 64 bits)
                row = json.dumps(values, default=str).encode()
        event._row = row  # type: ignore[attr-defined]
    return row


def _column_types(connection) -> list[str]:
    from accounts.models import UsageRecord

    return [UsageRecord._meta.get_field(n).db_type(connection) for n in _FIELDS]


SQLITE_ROWS_PER_STATEMENT = 100  # 1,900 parameters, bound in C in about 0.1 ms


@functools.lru_cache(maxsize=4)
def _sqlite_insert(table: str, columns: str, rows: int) -> str:
    one = "(" + ", ".join("?" * len(_FIELDS)) + ")"
    return f"INSERT OR IGNORE INTO {table} ({columns}) VALUES " + ", ".join([one] * rows)


def _insert(connection, rows: list) -> None:
    """The batch (`prepared_row` of each record) in as few statements as will do; a request id
    already written is skipped, not an error. This runs on the flush thread, and whatever it
    does in Python holds the GIL the event loop needs: Django's bulk_create compiled every value
    of every row, and a statement a row (executemany) handed the GIL back and forth once a row.
    PostgreSQL gets one statement whose only parameter is the rows as a JSON array, unpacked by
    jsonb_array_elements. SQLite gets multi-row VALUES lists of SQLITE_ROWS_PER_STATEMENT rows,
    on the DB-API cursor (Django's rewrites each statement's placeholders in Python): its
    json_extract parses a row's text again for every column, which cost more than the insert.
    The statements, their rows and the rollup triggers run with the GIL released."""
    from accounts.models import UsageRecord

    ops = connection.ops
    table = ops.quote_name(UsageRecord._meta.db_table)
    columns = ", ".join(ops.quote_name(n) for n in _FIELDS)
    if connection.vendor == "postgresql":
        picks = ", ".join(f"CAST(value->>{i} AS {kind})"
                          for i, kind in enumerate(_column_types(connection)))
        sql = (f"INSERT INTO {table} ({columns}) SELECT {picks} "
               "FROM jsonb_array_elements(CAST(%s AS jsonb)) ON CONFLICT DO NOTHING")
        with connection.cursor() as cursor:
            cursor.execute(sql, [(b"[" + b",".join(rows) + b"]").decode()])
        return
    step = SQLITE_ROWS_PER_STATEMENT
    connection.ensure_connection()
    with connection.wrap_database_errors:  # the driver's errors as Django's
        cursor = connection.connection.cursor()
        try:
            for start in range(0, len(rows), step):
                part = rows[start:start + step]
                cursor.execute(_sqlite_insert(table, columns, len(part)),
                               list(itertools.chain.from_iterable(part)))
        finally:
            cursor.close()


def _last_used(connection, batch: list[UsageEvent]) -> None:
    """Each key's last use: the latest of its records in the batch (raw SQL: an ORM update
    compiles in Python, on the flush thread)."""
    from accounts.models import ApiKey

    last_used: dict[int, datetime] = {}
    for e in batch:
        if e.key_id is not None:
            last_used[e.key_id] = max(e.created_at, last_used.get(e.key_id, e.created_at))
    if not last_used:
        return
    ops = connection.ops
    sql = (f"UPDATE {ops.quote_name(ApiKey._meta.db_table)} SET "
           f"{ops.quote_name('last_used_at')} = %s WHERE {ops.quote_name('id')} = %s")
    with connection.cursor() as cursor:
        for key_id, when in last_used.items():
            cursor.execute(sql, [ops.adapt_datetimefield_value(when), key_id])


def write_batch(batch: list[UsageEvent]) -> int:
    """Writes `batch`; returns how many records the database refused outright (each logged).
    A database that is away raises, and the batch is kept for the next try."""
    from django.db import DataError, IntegrityError, connection, transaction

    rows = [prepared_row(e) for e in batch]
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
    _last_used(connection, batch)
    return refused
