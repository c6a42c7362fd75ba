"""Celery tasks for the cluster app. Thin: each parses its arguments and calls one service."""

from __future__ import annotations

import logging

from celery import shared_task
from celery.signals import worker_ready

from cluster import services


@shared_task(name="cluster.engine_watchdog_tick", soft_time_limit=150, time_limit=180)
def engine_watchdog_tick(name: str = "embedded") -> dict:
    # The watched process lives in the `up` process, so `up` runs this with .apply() (locally);
    # the limits cover a restart, which waits for the engine to load its model.
    return services.engine_watchdog_tick(name=name)


@shared_task(name="cluster.engine_probe", soft_time_limit=20, time_limit=30)
def engine_probe(kind: str, endpoint: str) -> dict:
    """Asks the engine on the node that runs this task whether it answers, and what it serves;
    sent to a node's own queue so the check happens from that node's side of the network."""
    probe = services.engine_probe(kind, endpoint)
    return {"kind": probe.kind, "endpoint": probe.endpoint, "reachable": probe.reachable,
            "models": list(probe.models), "error": probe.error}


# --- sharded models: run on the node that runs the process (cluster.sharding.run_on) ------------

@shared_task(name="cluster.shard_rpc_start", soft_time_limit=45, time_limit=60)
def shard_rpc_start(shard_id: int, build: str, bind: str = "") -> dict:
    from cluster import sharding_node

    return sharding_node.rpc_start(shard_id=shard_id, build=build, bind=bind)


@shared_task(name="cluster.shard_coordinator_start", soft_time_limit=310, time_limit=330)
def shard_coordinator_start(shard_id: int, gguf: str, rpc: list[str], build: str) -> dict:
    from cluster import sharding_node

    return sharding_node.coordinator_start(shard_id=shard_id, gguf=gguf, rpc=rpc, build=build)


@shared_task(name="cluster.shard_process_stop", soft_time_limit=30, time_limit=45)
def shard_process_stop(shard_id: int, pid: int | None, binary: str) -> dict:
    from cluster import sharding_node

    return sharding_node.process_stop(shard_id=shard_id, pid=pid, binary=binary)


@shared_task(name="cluster.shard_log_tail", soft_time_limit=10, time_limit=15)
def shard_log_tail(path: str, lines: int = 50) -> str:
    from cluster import sharding_node

    return sharding_node.tail(path, lines)


@worker_ready.connect
def _shards_adopt_on_start(sender=None, **_: object) -> None:
    # A restarted worker takes over the shard processes left on this machine.
    from cluster import sharding_node

    try:
        sharding_node.shards_adopt()
    except Exception:  # no database yet, or none reachable: nothing to take over
        logging.getLogger("cluster.sharding").exception("taking over shard processes failed")
