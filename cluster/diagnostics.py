"""What `status` reports and what `doctor` checks: the database, the data dir, Redis, the listen
port and every engine this machine or the cluster knows about."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field

from django.conf import settings
from django.db import DatabaseError, connection
from django.db.migrations.executor import MigrationExecutor

from cluster import embedded, processes, services
from flocksite.config import ENGINES, FlockConfig


@dataclass
class Check:
    ok: bool
    title: str
    hints: list[str] = field(default_factory=list)
    warning: bool = False  # worth a look, but not a failure


def database_describe() -> dict:
    db = settings.DATABASES["default"]
    vendor = db["ENGINE"].rsplit(".", 1)[-1]
    where = str(db.get("NAME", "")) if vendor == "sqlite3" else \
        f"{db.get('HOST') or 'localhost'}:{db.get('PORT') or ''}/{db.get('NAME', '')}"
    info = {"vendor": vendor, "location": where, "reachable": False, "pending_migrations": 0,
            "error": ""}
    try:
        connection.ensure_connection()
        executor = MigrationExecutor(connection)
        plan = executor.migration_plan(executor.loader.graph.leaf_nodes())
        info.update(reachable=True, pending_migrations=len(plan))
    except DatabaseError as exc:
        info["error"] = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return info


def node_rows(timeout: float) -> list[dict]:
    """Every registered node with a live probe of its engine."""
    from cluster.selectors import nodes_all

    rows = []
    for node in nodes_all():
        row = {"name": node.name, "role": node.role, "state": node.state, "engine": node.engine,
               "endpoint": node.engine_endpoint, "embedded": node.engine_embedded,
               "reachable": False, "models": []}
        if node.engine and node.engine_endpoint:
            from cluster.agent import engine_access

            endpoint, agent_key = engine_access(node)
            probe = services.engine_probe(node.engine, endpoint, timeout=timeout,
                                          api_key=agent_key or "")
            row.update(reachable=probe.reachable, models=probe.models)
        rows.append(row)
    return rows


def local_engines(cfg: FlockConfig, timeout: float) -> list[services.EngineProbe]:
    """The configured engine, or every engine kind on its default endpoint."""
    kinds = [cfg.engine] if cfg.engine else list(ENGINES)
    return [services.engine_probe(kind, cfg.endpoints[kind], timeout=timeout,
                                  api_key=cfg.vllm_api_key if kind == "vllm" else "")
            for kind in kinds]


def status_collect(cfg: FlockConfig, *, timeout: float = 1.0) -> dict:
    from cluster.selectors import cluster_counts

    database = database_describe()
    usable = database["reachable"] and not database["pending_migrations"]
    nodes = node_rows(timeout) if usable else []
    local = services.local_node_name()
    me = next((n for n in nodes if n["name"] == local), None)
    url = processes.local_url(cfg.listen_host, cfg.listen_port)
    return {
        "role": me["role"] if me else "none",
        "node": local,
        "listen": f"{cfg.listen_host}:{cfg.listen_port}",
        "api_base_url": cfg.api_base_url + "/v1",
        "gateway_running": services.gateway_running(url, timeout=timeout),
        "database": database,
        "engine": _local_engine(cfg, me, timeout),
        "nodes": nodes,
        "counts": cluster_counts() if usable else {},
    }


def _local_engine(cfg: FlockConfig, me: dict | None, timeout: float) -> dict:
    if me and me["engine"]:
        return {"kind": me["engine"], "endpoint": me["endpoint"], "embedded": me["embedded"],
                "reachable": me["reachable"], "models": me["models"]}
    found = next((p for p in local_engines(cfg, timeout) if p.reachable), None)
    if found is None:
        return {"kind": cfg.engine or "", "endpoint": cfg.endpoints.get(cfg.engine, ""),
                "embedded": False, "reachable": False, "models": []}
    return {"kind": found.kind, "endpoint": found.endpoint, "embedded": False,
            "reachable": True, "models": found.models}


def check_data_dir(cfg: FlockConfig) -> Check:
    try:
        cfg.data_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=cfg.data_dir, prefix=".doctor-"):
            pass
    except OSError as exc:
        return Check(False, f"data dir {cfg.data_dir} is not writable ({exc.strerror})",
                     ["fix its permissions, or point FLOCK_DATA_DIR at a writable directory"])
    return Check(True, f"data dir {cfg.data_dir} is writable")


def check_database() -> Check:
    info = database_describe()
    where = f"{info['vendor']} at {info['location']}"
    if not info["reachable"]:
        hint = "check DATABASE_URL and that the database server is running" \
            if info["vendor"] != "sqlite3" else "check that FLOCK_DATA_DIR is writable"
        return Check(False, f"database {where} is not reachable: {info['error']}", [hint])
    if info["pending_migrations"]:
        return Check(True, f"database {where} is reachable; {info['pending_migrations']} "
                     "migrations not applied yet", ["`manage.py up` applies them"], warning=True)
    return Check(True, f"database {where} is reachable and up to date")


def check_redis(cfg: FlockConfig) -> Check | None:
    if not cfg.redis_url:
        return None
    import redis

    shown = cfg.redacted()["redis_url"]
    try:
        redis.Redis.from_url(cfg.redis_url, socket_timeout=2, socket_connect_timeout=2).ping()
    except redis.RedisError as exc:
        return Check(False, f"Redis at {shown} is not reachable ({type(exc).__name__})",
                     ["start it (`redis-server`, or `systemctl start redis`), or unset REDIS_URL "
                      "to run single-machine without it"])
    return Check(True, f"Redis at {shown} is reachable")


def check_listen_port(cfg: FlockConfig) -> Check:
    host, port = cfg.listen_host, cfg.listen_port
    if processes.port_is_free(host, port):
        return Check(True, f"listen address {host}:{port} is free")
    if services.gateway_running(processes.local_url(host, port)):
        return Check(True, f"Flock is running on {host}:{port}")
    return Check(False, f"port {port} on {host} is in use by another program",
                 [f"stop that program, or serve Flock elsewhere: FLOCK_LISTEN=:{port + 1} "
                  f"(or `manage.py up --listen :{port + 1}`)"])


def check_embedded_installed() -> Check:
    if embedded.packages_installed() and embedded.server_binary().is_file():
        build = embedded.build_label()
        return Check(True, f"embedded engine installed (llama.cpp{' ' + build if build else ''}, "
                     f"model {embedded.MODEL_ALIAS})")
    return Check(True, "embedded llama.cpp engine is not installed",
                 ["`manage.py up` installs it when no other engine answers (a one-time build of "
                  "about 10 minutes on 2 cores), or run `bash scripts/engine-wheels.sh "
                  ".venv/bin/python` now"], warning=True)


def check_engines(cfg: FlockConfig, nodes: list[dict], *, timeout: float = 1.0) -> list[Check]:
    """One line per registered node's engine and per engine answering here; a failure when
    nothing at all answers, naming each engine with the command that starts it."""
    checks = [_node_engine_check(row) for row in nodes if row["endpoint"]]
    known = {row["endpoint"] for row in nodes if row["endpoint"]}
    reachable = any(row["reachable"] for row in nodes)
    for probe in local_engines(cfg, timeout):
        if probe.endpoint in known:
            continue
        if probe.reachable:
            reachable = True
            checks.append(Check(True, f"{probe.kind} answers at {probe.endpoint}"
                                      f"{_models(probe.models)}"))
        elif cfg.engine:
            checks.append(Check(False, f"{probe.kind} (FLOCK_ENGINE) at {probe.endpoint} is not "
                                       f"reachable ({probe.error})",
                                [f"start it with: {services.engine_start_hint(probe.kind)}"]))
    if not reachable and not cfg.engine:
        hints = [f"{kind} at {cfg.endpoints[kind]}: start it with `{_hint(kind)}`"
                 for kind in ENGINES]
        hints.append("or run `manage.py up`: when no other engine answers it starts the "
                     f"embedded llama.cpp engine ({embedded.MODEL_ALIAS})")
        checks.append(Check(False, "no engine is reachable", hints))
    return checks


def _node_engine_check(row: dict) -> Check:
    where = f"node {row['name']}: {row['engine']} at {row['endpoint']}"
    if row["reachable"]:
        return Check(True, f"{where} answers{_models(row['models'])}")
    if row["embedded"]:
        return Check(False, f"node {row['name']}: its embedded llama.cpp engine at "
                            f"{row['endpoint']} is not running",
                     ["it runs while `manage.py up` runs; start Flock with `manage.py up`"])
    return Check(False, f"{where} is not reachable",
                 [f"on {row['name']}, start it with: {services.engine_start_hint(row['engine'])}"])


def _hint(kind: str) -> str:
    from gateway.engines.base import START_HINTS

    return START_HINTS.get(kind, "")


def _models(models: list[str]) -> str:
    if not models:
        return ""
    shown = ", ".join(models[:5]) + (f" and {len(models) - 5} more" if len(models) > 5 else "")
    return f" (models: {shown})"


def doctor_checks(cfg: FlockConfig, *, timeout: float = 1.0) -> list[Check]:
    checks = [check_data_dir(cfg), check_database()]
    redis_check = check_redis(cfg)
    if redis_check is not None:
        checks.append(redis_check)
    checks.append(check_listen_port(cfg))
    checks.append(check_embedded_installed())
    database = checks[1]
    nodes = node_rows(timeout) if database.ok and not database.warning else []
    checks.extend(check_engines(cfg, nodes, timeout=timeout))
    return checks
