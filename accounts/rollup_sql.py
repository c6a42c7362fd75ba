"""The SQL that keeps the hourly usage rollups (UsageHour, LatencyHour) in step with UsageRecord:
triggers on insert, delete and update, for PostgreSQL (one statement-level trigger per event,
over its transition table) and SQLite (row-level), plus the backfill a migration runs once.

Being triggers, they hold whatever writes the records: the usage buffer, a bulk import, the
admin, a test. A record inserted twice with ignore_conflicts counts once, since only the rows
actually inserted reach a trigger.

Latency buckets: exact below 1,000 ms, then three significant digits (4,779 ms counts as 4,770),
so a percentile read from them is at most 1% low."""

from __future__ import annotations

HOURS = "accounts_usagehour"
LATENCY = "accounts_latencyhour"
RECORDS = "accounts_usagerecord"


def bucket_sql(column: str) -> str:
    steps = " ".join(f"WHEN {column} < {10 ** (n + 3)} THEN {column} / {10 ** n} * {10 ** n}"
                     for n in range(1, 6))
    return f"(CASE WHEN {column} < 1000 THEN {column} {steps} ELSE {column} / 1000000 * 1000000 END)"


def bucket(value: int) -> int:
    """Python's twin of bucket_sql."""
    if value < 1000:
        return value
    for n in range(1, 6):
        if value < 10 ** (n + 3):
            return value // 10 ** n * 10 ** n
    return value // 1_000_000 * 1_000_000


def _hour(vendor: str, column: str) -> str:
    if vendor == "postgresql":
        return f"date_trunc('hour', {column}, 'UTC')"
    return f"(substr({column}, 1, 13) || ':00:00')"  # Django keeps UTC text in SQLite


def _hours_select(vendor: str, source: str, sign: str = "") -> str:
    return (f"SELECT {_hour(vendor, 'created_at')}, COALESCE(key_id, 0), key_name, model, "
            f"{sign}COUNT(*), {sign}SUM(CASE WHEN outcome <> 'ok' THEN 1 ELSE 0 END), "
            f"{sign}SUM(prompt_tokens), {sign}SUM(completion_tokens) FROM {source} "
            "GROUP BY 1, 2, 3, 4")


def _latency_select(vendor: str, source: str, sign: str = "") -> str:
    hour = _hour(vendor, "created_at")
    return (f"SELECT hour, kind, bucket, {sign}COUNT(*) FROM ("
            f"SELECT {hour} AS hour, 0 AS kind, {bucket_sql('latency_ms')} AS bucket FROM {source} "
            "WHERE outcome = 'ok' UNION ALL "
            f"SELECT {hour}, 1, {bucket_sql('ttft_ms')} FROM {source} "
            "WHERE outcome = 'ok' AND ttft_ms IS NOT NULL) AS b GROUP BY hour, kind, bucket")


HOUR_COLUMNS = "hour, key_id, key_name, model, requests, errors, prompt_tokens, completion_tokens"


def backfill(vendor: str) -> list[str]:
    return [f"INSERT INTO {HOURS} ({HOUR_COLUMNS}) {_hours_select(vendor, RECORDS)}",
            f"INSERT INTO {LATENCY} (hour, kind, bucket, count) {_latency_select(vendor, RECORDS)}"]


# --- PostgreSQL ----------------------------------------------------------------------------------

def _pg_apply(source: str, sign: str) -> str:
    return f"""
    INSERT INTO {HOURS} AS t ({HOUR_COLUMNS}) {_hours_select('postgresql', source, sign)}
      ORDER BY 1, 2, 3, 4
    ON CONFLICT (hour, key_id, key_name, model) DO UPDATE SET
      requests = t.requests + EXCLUDED.requests, errors = t.errors + EXCLUDED.errors,
      prompt_tokens = t.prompt_tokens + EXCLUDED.prompt_tokens,
      completion_tokens = t.completion_tokens + EXCLUDED.completion_tokens;
    INSERT INTO {LATENCY} AS t (hour, kind, bucket, count) {_latency_select('postgresql', source, sign)}
      ORDER BY 1, 2, 3
    ON CONFLICT (hour, kind, bucket) DO UPDATE SET count = t.count + EXCLUDED.count;"""


_PG_PRUNE = f"""
    DELETE FROM {HOURS} WHERE requests <= 0 AND hour IN
      (SELECT DISTINCT date_trunc('hour', created_at, 'UTC') FROM old_rows);
    DELETE FROM {LATENCY} WHERE count <= 0 AND hour IN
      (SELECT DISTINCT date_trunc('hour', created_at, 'UTC') FROM old_rows);"""

PG_CREATE = [
    f"""CREATE FUNCTION flock_usage_rollup_insert() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN {_pg_apply('new_rows', '')}
    RETURN NULL; END $$""",
    f"""CREATE FUNCTION flock_usage_rollup_delete() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN {_pg_apply('old_rows', '-')} {_PG_PRUNE}
    RETURN NULL; END $$""",
    f"""CREATE FUNCTION flock_usage_rollup_update() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN {_pg_apply('old_rows', '-')} {_pg_apply('new_rows', '')} {_PG_PRUNE}
    RETURN NULL; END $$""",
    f"""CREATE TRIGGER flock_usage_rollup_insert AFTER INSERT ON {RECORDS}
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT
    EXECUTE FUNCTION flock_usage_rollup_insert()""",
    f"""CREATE TRIGGER flock_usage_rollup_delete AFTER DELETE ON {RECORDS}
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT
    EXECUTE FUNCTION flock_usage_rollup_delete()""",
    f"""CREATE TRIGGER flock_usage_rollup_update AFTER UPDATE ON {RECORDS}
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT
    EXECUTE FUNCTION flock_usage_rollup_update()""",
]
PG_DROP = [f"DROP TRIGGER IF EXISTS flock_usage_rollup_{event} ON {RECORDS}"
           for event in ("insert", "delete", "update")] + [
    f"DROP FUNCTION IF EXISTS flock_usage_rollup_{event}()" for event in ("insert", "delete", "update")]


# --- SQLite --------------------------------------------------------------------------------------

def _sqlite_remove(row: str) -> str:
    """The delete trigger's body, and the first half of the update trigger's: the record's
    counts taken off its rollup rows, and rows that no longer count anything deleted."""
    hour = _hour("sqlite", f"{row}.created_at")
    key = f"COALESCE({row}.key_id, 0)"
    statements = [
        f"UPDATE {HOURS} SET requests = requests - 1, "
        f"errors = errors - ({row}.outcome <> 'ok'), "
        f"prompt_tokens = prompt_tokens - {row}.prompt_tokens, "
        f"completion_tokens = completion_tokens - {row}.completion_tokens "
        f"WHERE hour = {hour} AND key_id = {key} AND key_name = {row}.key_name "
        f"AND model = {row}.model",
    ]
    for kind, column, extra in ((0, "latency_ms", ""), (1, "ttft_ms", f" AND {row}.ttft_ms IS NOT NULL")):
        statements.append(
            f"UPDATE {LATENCY} SET count = count - 1 WHERE {row}.outcome = 'ok'{extra} "
            f"AND hour = {hour} AND kind = {kind} AND bucket = {bucket_sql(f'{row}.{column}')}")
    statements += [f"DELETE FROM {HOURS} WHERE requests <= 0 AND hour = {hour} AND key_id = "
                   f"{key} AND key_name = {row}.key_name AND model = {row}.model",
                   f"DELETE FROM {LATENCY} WHERE count <= 0 AND hour = {hour}"]
    return "".join(f"  {s};\n" for s in statements)


def _sqlite_add(row: str) -> str:
    """The insert trigger's body, and the second half of the update trigger's: one UPSERT a
    rollup row (the hour's counts, and the request's latency and time to first token buckets),
    half the statements and B-tree searches of an insert-or-ignore and an update."""
    hour = _hour("sqlite", f"{row}.created_at")
    statements = [
        f"INSERT INTO {HOURS} ({HOUR_COLUMNS}) VALUES ({hour}, COALESCE({row}.key_id, 0), "
        f"{row}.key_name, {row}.model, 1, {row}.outcome <> 'ok', {row}.prompt_tokens, "
        f"{row}.completion_tokens) ON CONFLICT (hour, key_id, key_name, model) DO UPDATE SET "
        "requests = requests + 1, errors = errors + excluded.errors, "
        "prompt_tokens = prompt_tokens + excluded.prompt_tokens, "
        "completion_tokens = completion_tokens + excluded.completion_tokens"]
    for kind, column, extra in ((0, "latency_ms", ""), (1, "ttft_ms", f" AND {row}.ttft_ms IS NOT NULL")):
        statements.append(
            f"INSERT INTO {LATENCY} (hour, kind, bucket, count) SELECT {hour}, {kind}, "
            f"{bucket_sql(f'{row}.{column}')}, 1 WHERE {row}.outcome = 'ok'{extra} "
            "ON CONFLICT (hour, kind, bucket) DO UPDATE SET count = count + 1")
    return "".join(f"  {s};\n" for s in statements)


SQLITE_CREATE = [
    f"CREATE TRIGGER flock_usage_rollup_insert AFTER INSERT ON {RECORDS} BEGIN\n"
    f"{_sqlite_add('NEW')}END",
    f"CREATE TRIGGER flock_usage_rollup_delete AFTER DELETE ON {RECORDS} BEGIN\n"
    f"{_sqlite_remove('OLD')}END",
    f"CREATE TRIGGER flock_usage_rollup_update AFTER UPDATE ON {RECORDS} BEGIN\n"
    f"{_sqlite_remove('OLD')}{_sqlite_add('NEW')}END",
]
SQLITE_DROP = [f"DROP TRIGGER IF EXISTS flock_usage_rollup_{event}"
               for event in ("insert", "delete", "update")]


def create_statements(vendor: str) -> list[str]:
    if vendor == "postgresql":
        return PG_CREATE
    if vendor == "sqlite":
        return SQLITE_CREATE
    raise NotImplementedError(f"usage rollups have no triggers for {vendor}")


def drop_statements(vendor: str) -> list[str]:
    return PG_DROP if vendor == "postgresql" else SQLITE_DROP
