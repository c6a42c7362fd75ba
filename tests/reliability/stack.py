"""A Redis, a PostgreSQL and gateway processes (daphne; `manage.py up` runs the same application
under uvicorn) of the test's own, on ports of their own, that tests stop, kill and start again.
The machine's own services are never touched: these live in temporary directories and listen
on 127.0.0.1 only."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import httpx

from tests.conftest import free_port

ROOT = Path(__file__).resolve().parents[2]
PG_BIN = Path("/usr/lib/postgresql/15/bin")
TEMPLATE = "flock_template"


def wait_for(check: Callable[[], bool], timeout: float, what: str | Callable[[], str]) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except Exception:
            pass
        time.sleep(0.05)
    raise TimeoutError(f"{what() if callable(what) else what} did not happen within {timeout} s")


def _kill_group(proc: subprocess.Popen, signum: int) -> None:
    try:
        os.killpg(proc.pid, signum)
    except ProcessLookupError:
        pass


class OwnRedis:
    def __init__(self, root: Path) -> None:
        self.port = free_port()
        self.dir = root
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def client(self):
        import redis

        return redis.Redis.from_url(self.url, socket_timeout=5)

    def start(self) -> OwnRedis:
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(self.dir), "--logfile", str(self.dir / "redis.log")],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, start_new_session=True)
        wait_for(lambda: self.client().ping(), 10, "redis-server answering")
        return self

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            _kill_group(self.proc, signal.SIGKILL)
            self.proc.wait(10)
        self.proc = None


class OwnPostgres:
    """initdb and pg_ctl refuse to run as root: they run as the postgres user, in a directory it
    owns."""

    def __init__(self) -> None:
        self.port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="flock-pg-"))
        shutil.chown(self.dir, "postgres", "postgres")
        self.data = self.dir / "data"

    PASSWORD = "pg-secret-password"  # trust auth ignores it; tests look for it in logs

    def url(self, database: str = "postgres") -> str:
        return f"postgres://postgres:{self.PASSWORD}@127.0.0.1:{self.port}/{database}"

    def _as_postgres(self, *argv: str) -> None:
        subprocess.run(["runuser", "-u", "postgres", "--", *argv], check=True,
                       stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, timeout=120)

    def init(self) -> OwnPostgres:
        self._as_postgres(str(PG_BIN / "initdb"), "-D", str(self.data), "-U", "postgres",
                          "-A", "trust", "-E", "UTF8", "--no-sync")
        return self

    def start(self) -> None:
        # Commits stay synchronous: the fault tests crash PostgreSQL (an immediate stop), and an
        # asynchronous commit would be lost with it, which would be the test's loss, not ours.
        options = (f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off "
                   "-c full_page_writes=off -c max_connections=300")
        self._as_postgres(str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-l", str(self.dir / "log"),
                          "-w", "-t", "60", "-o", options, "start")

    def stop(self, mode: str = "fast") -> None:
        self._as_postgres(str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "stop")

    def running(self) -> bool:
        return (self.data / "postmaster.pid").exists()

    def sql(self, query: str, *params, database: str = "postgres", autocommit: bool = True):
        import psycopg

        with psycopg.connect(self.url(database), autocommit=autocommit, connect_timeout=5) as conn:
            cursor = conn.execute(query, params or None)
            return cursor.fetchall() if cursor.description else None

    def remove(self) -> None:
        if self.running():
            try:
                self.stop("immediate")
            except subprocess.SubprocessError:
                pass
        shutil.rmtree(self.dir, ignore_errors=True)


def base_env(data_dir: Path, database_url: str, redis_url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("FLOCK_", "DATABASE_URL", "REDIS_URL", "PROMETHEUS_"))}
    env.update(FLOCK_DATA_DIR=str(data_dir), DATABASE_URL=database_url, REDIS_URL=redis_url,
               FLOCK_SECRET_KEY="reliability-tests", DJANGO_SETTINGS_MODULE="flocksite.settings",
               PYTHONPATH=str(ROOT), FLOCK_LOG_LEVEL="warning")
    return env


def django_run(env: dict[str, str], *argv: str, timeout: float = 180) -> str:
    """Runs `python <argv>` in the project with `env`; returns its stdout."""
    done = subprocess.run([sys.executable, *argv], env=env, cwd=ROOT, capture_output=True,
                          text=True, timeout=timeout, stdin=subprocess.DEVNULL)
    if done.returncode:
        raise RuntimeError(f"{argv} failed:\n{done.stdout}\n{done.stderr}")
    return done.stdout


def seed(env: dict[str, str], engine_url: str, *, quota: int = 10_000_000) -> dict:
    """Registers a leader node whose engine is at `engine_url` and issues keys; returns them."""
    out = django_run(env, "-m", "tests.reliability.seed", engine_url, str(quota))
    return json.loads(out.strip().splitlines()[-1])


class GatewayProcess:
    """One daphne process serving flocksite.asgi, the ASGI server the reliability issue names."""

    def __init__(self, env: dict[str, str], log_dir: Path, port: int | None = None) -> None:
        self.env = env
        self.port = port or free_port()
        self.log = log_dir / f"daphne-{self.port}.log"
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> GatewayProcess:
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(self.port), "-v", "0",
                 "flocksite.asgi:application"],
                env=self.env, cwd=ROOT, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                start_new_session=True)
        wait_for(lambda: httpx.get(self.url + "/healthz", timeout=1).status_code == 200, 60,
                 f"daphne on {self.port} answering /healthz")
        return self

    def kill(self) -> None:
        """SIGKILL: no atexit, no flush, no goodbye."""
        if self.proc is not None and self.proc.poll() is None:
            _kill_group(self.proc, signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            _kill_group(self.proc, signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""


class Stack:
    """A PostgreSQL and a Redis of this test's own, one database per test cloned from a migrated
    template, and the gateway processes started on them."""

    def __init__(self, pg: OwnPostgres, redis: OwnRedis, root: Path, database: str) -> None:
        self.pg, self.redis, self.root, self.database = pg, redis, root, database
        self.data_dir = root / "data"
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.env = base_env(self.data_dir, pg.url(database), redis.url)
        self.gateways: list[GatewayProcess] = []

    def gateway(self) -> GatewayProcess:
        process = GatewayProcess(self.env, self.root).start()
        self.gateways.append(process)
        return process

    def usage_count(self) -> int:
        return self.pg.sql("SELECT count(*) FROM accounts_usagerecord", database=self.database)[0][0]

    def stop_all(self) -> None:
        for process in self.gateways:
            process.stop()


def quota_counter(stack: Stack, key_id: int) -> int:
    """Today's quota counter of the key in Redis (Django's cache key format)."""
    day = datetime.now(UTC).strftime("%Y%m%d")
    return int(stack.redis.client().get(f"flock:1:quota:{key_id}:{day}") or 0)


def ledger(stack: Stack, key_id: int) -> int:
    """The key's tokens in the usage ledger."""
    return stack.pg.sql("SELECT coalesce(sum(prompt_tokens + completion_tokens), 0) "
                        "FROM accounts_usagerecord WHERE key_id = %s", key_id,
                        database=stack.database)[0][0]
