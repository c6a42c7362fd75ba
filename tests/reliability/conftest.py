from __future__ import annotations

import itertools
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.reliability.stack import TEMPLATE, OwnPostgres, OwnRedis, Stack, base_env, django_run

_databases = itertools.count(1)


@pytest.fixture(scope="session")
def own_services() -> Iterator[tuple[OwnPostgres, OwnRedis]]:
    """A PostgreSQL and a Redis for the reliability tests alone, with the schema migrated once
    into a template database that each test clones."""
    root = Path(tempfile.mkdtemp(prefix="flock-reliability-"))
    pg = OwnPostgres().init()
    redis = OwnRedis(root).start()
    try:
        pg.start()
        pg.sql(f"CREATE DATABASE {TEMPLATE}")
        django_run(base_env(root / "migrate", pg.url(TEMPLATE), ""), "manage.py", "migrate",
                   "--noinput")
        yield pg, redis
    finally:
        redis.stop()
        pg.remove()


@pytest.fixture
def stack(own_services, tmp_path) -> Iterator[Stack]:
    pg, redis = own_services
    if not pg.running():
        pg.start()
    if redis.proc is None:
        redis.start()
    redis.client().flushall()
    database = f"flock_test_{next(_databases)}"
    pg.sql(f"CREATE DATABASE {database} TEMPLATE {TEMPLATE}")
    built = Stack(pg, redis, tmp_path, database)
    yield built
    built.stop_all()
