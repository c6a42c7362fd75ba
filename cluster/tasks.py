"""Celery tasks for the cluster app. Thin: each parses its arguments and calls one service."""

from __future__ import annotations

from celery import shared_task

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
