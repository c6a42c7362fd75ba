"""The usage summary over a ledger of 10 million usage records, in a PostgreSQL database of
the bench's own (the database a deployment has at that scale).

The rows are made by one `generate_series` per million, spread evenly over the 30 days before a
fixed moment that is stored with them, so later runs reuse them and summarise the same window
(`usage_summary(now=that moment)`: the dashboard's last 24 hours, about a thirtieth of them).

    python -m bench.ledger measure '<json>'    # (inside the bench) times usage_summary
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

PROJECT = Path(__file__).resolve().parent.parent
DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/flock_bench"
SPAN_DAYS = 30
LEDGER_VERSION = 3  # bump when the generated rows change shape
STEP = 1_000_000
MODELS = ("llama-3.1-8b", "qwen2.5-7b", "gemma-3-270m", "mistral-7b", "phi-4",
          "qwen3-30b-a3b", "gpt-oss-20b", "deepseek-r1-8b")

# One row per g: keys, models and nodes cycle; about 2% errors and 1% aborted; a third streamed.
INSERT = """
INSERT INTO accounts_usagerecord (created_at, request_id, key_id, key_name, model, protocol,
    endpoint, node, engine, stream, prompt_tokens, completion_tokens, latency_ms, ttft_ms,
    outcome, status_code, error_type, attempts, requested_model)
SELECT %(now)s - make_interval(secs => g * %(spacing)s),
       'bench-' || g, 1 + g %% 50, 'key-' || (g %% 50), (%(models)s::text[])[1 + ((g * 7) %% 8)::int],
       'openai', 'chat.completions', 'node-' || (g %% 4), 'vllm', g %% 3 = 0,
       20 + (g * 7919) %% 2000, 1 + (g * 104729) %% 800, 30 + (g * 31) %% 5000,
       CASE WHEN g %% 3 = 0 THEN 5 + (g * 17) %% 400 END,
       CASE WHEN g %% 50 = 0 THEN 'error' WHEN g %% 97 = 0 THEN 'aborted' ELSE 'ok' END,
       CASE WHEN g %% 50 = 0 THEN 503 WHEN g %% 97 = 0 THEN 499 ELSE 200 END,
       CASE WHEN g %% 50 = 0 THEN 'engine_unreachable'
            WHEN g %% 97 = 0 THEN 'client_disconnected' ELSE '' END,
       1, ''
FROM generate_series(%(first)s::bigint, %(last)s::bigint) AS g
"""


def _database_env(url: str, data_dir: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("FLOCK_") and k not in ("REDIS_URL", "DJANGO_SETTINGS_MODULE")}
    env.update(DATABASE_URL=url, FLOCK_DATA_DIR=data_dir,
               DJANGO_SETTINGS_MODULE="flocksite.settings")
    return env


def postgres_ready(url: str) -> bool:
    import psycopg

    parts = urlsplit(url)
    try:
        psycopg.connect(urlunsplit(parts._replace(path="/postgres")), connect_timeout=3).close()
        return True
    except psycopg.OperationalError:
        return False


def ensure_postgres(url: str) -> None:
    """PostgreSQL answering at `url` (started by scripts/services.sh on a fresh machine)."""
    if postgres_ready(url):
        return
    host = urlsplit(url).hostname
    if host not in ("127.0.0.1", "localhost"):
        raise RuntimeError(f"PostgreSQL does not answer at {url}")
    print("==> starting PostgreSQL (scripts/services.sh)", flush=True)
    subprocess.run(["bash", str(PROJECT / "scripts" / "services.sh")], check=True)
    if not postgres_ready(url):
        raise RuntimeError(f"PostgreSQL does not answer at {url}")


def _create_database(url: str, *, fresh: bool = False) -> None:
    """Creates the bench database when missing; `fresh` drops it first."""
    import psycopg
    from psycopg import sql

    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    with psycopg.connect(urlunsplit(parts._replace(path="/postgres")), autocommit=True) as conn:
        if fresh:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                sql.Identifier(name)))
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


def _migrate(url: str, work: Path) -> None:
    done = subprocess.run([sys.executable, "manage.py", "migrate", "--verbosity", "0"],
                          env=_database_env(url, str(work / "ledger-data")), cwd=PROJECT,
                          capture_output=True, text=True, timeout=600)
    if done.returncode:
        raise RuntimeError(f"migrating the bench database failed:\n{done.stderr[-2000:]}")


def _ledger_found(url: str, rows: int) -> datetime | None:
    """The `now` of a complete ledger of `rows` records of this version, if one is there."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        if not conn.execute("SELECT to_regclass('bench_ledger')").fetchone()[0]:
            return None
        found = conn.execute("SELECT rows, version, generated_at FROM bench_ledger").fetchone()
    if found and found[0] == rows and found[1] == LEDGER_VERSION:
        return found[2]
    return None


def ledger_prepare(url: str, rows: int, work: Path) -> datetime:
    """The bench database migrated and holding `rows` usage records; returns their `now`.
    A ledger that is missing, of another size or version, or left half-made by an interrupted
    run (its indexes dropped) is made again in a new database."""
    import psycopg

    _create_database(url)
    now = _ledger_found(url, rows)
    if now is not None:
        _migrate(url, work)
        return now
    _create_database(url, fresh=True)
    _migrate(url, work)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE TABLE bench_ledger (rows bigint, version int, "
                     "generated_at timestamptz)")
        return _generate(conn, rows)


def _generate(conn, rows: int) -> datetime:
    now = datetime.now(UTC).replace(microsecond=0)
    print(f"==> generating {rows:,} usage records in the bench database (once)", flush=True)
    started = time.monotonic()
    # Build the secondary indexes once at the end instead of updating them row by row.
    indexes = conn.execute(
        "SELECT i.indexname, i.indexdef FROM pg_indexes i JOIN pg_class c ON c.relname = "
        "i.indexname JOIN pg_index x ON x.indexrelid = c.oid WHERE i.tablename = "
        "'accounts_usagerecord' AND NOT x.indisprimary AND NOT EXISTS (SELECT 1 FROM "
        "pg_constraint k WHERE k.conindid = c.oid)").fetchall()
    for name, _ in indexes:
        conn.execute(f'DROP INDEX "{name}"')
    conn.execute("SET synchronous_commit = off")
    spacing = SPAN_DAYS * 86400 / rows
    for first in range(1, rows + 1, STEP):
        last = min(rows, first + STEP - 1)
        conn.execute(INSERT, {"now": now, "spacing": spacing, "models": list(MODELS),
                              "first": first, "last": last})
        print(f"    {last:,} rows ({time.monotonic() - started:.0f} s)", flush=True)
    for _, definition in indexes:
        conn.execute(definition)
    conn.execute("VACUUM ANALYZE accounts_usagerecord")
    conn.execute("INSERT INTO bench_ledger VALUES (%s, %s, %s)", [rows, LEDGER_VERSION, now])
    print(f"    done in {time.monotonic() - started:.0f} s", flush=True)
    return now


def server_version(url: str) -> str:
    import psycopg

    with psycopg.connect(url) as conn:
        return conn.execute("SHOW server_version").fetchone()[0]


def ledger_measure(url: str, now: datetime, *, hours: int, repeat: int) -> dict:
    """Times `usage_summary` in a Django process of its own, pointed at the bench database."""
    spec = {"now": now.isoformat(), "hours": hours, "repeat": repeat}
    with tempfile.TemporaryDirectory(prefix="flock-bench-ledger-") as data_dir:
        done = subprocess.run([sys.executable, "-m", "bench.ledger", "measure", json.dumps(spec)],
                              env=_database_env(url, data_dir), cwd=PROJECT, capture_output=True,
                              text=True, timeout=1800)
    if done.returncode:
        raise RuntimeError(f"timing usage_summary failed:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _measure_here(spec: dict) -> dict:
    import django

    django.setup()
    from datetime import timedelta

    from django.db import connection

    from accounts.models import UsageRecord
    from accounts.usage_stats import usage_summary

    now = datetime.fromisoformat(spec["now"])
    since = now - timedelta(hours=spec["hours"])
    queries: list[tuple[float, str]] = []

    def timed(execute, sql, params, many, context):
        started = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            queries.append(((time.perf_counter() - started) * 1000, sql))

    runs = []
    for _ in range(1 + spec["repeat"]):  # the first run is the cold one
        queries.clear()
        started = time.perf_counter()
        with connection.execute_wrapper(timed):
            summary = usage_summary(since=since, now=now)
        runs.append((time.perf_counter() - started) * 1000)
    total_rows = UsageRecord.objects.count()
    return {"cold_ms": round(runs[0], 1), "warm_ms": sorted(round(r, 1) for r in runs[1:]),
            "ms": round(sorted(runs[1:])[len(runs[1:]) // 2], 1), "hours": spec["hours"],
            "rows_in_window": summary["requests"], "ledger_rows": total_rows,
            "queries": [{"ms": round(ms, 1), "sql": sql[:160]} for ms, sql in queries]}


if __name__ == "__main__":
    if sys.argv[1:2] == ["measure"]:
        print(json.dumps(_measure_here(json.loads(sys.argv[2]))), flush=True)
