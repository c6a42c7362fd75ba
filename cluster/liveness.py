"""The leader's side of liveness, run by `manage.py up` on a daemon thread.

Where the check runs, and why: routing never waits for it. `nodes_routable` compares each joined
worker's last heartbeat with OFFLINE_AFTER itself, so every gateway process drops a silent
worker within that window plus its 2-second pool cache, with no scheduler and no coordination
between processes. What this loop adds is the stored state `node ls` shows (a worker marked
offline, its placements unavailable), once a second, cheaply (one indexed UPDATE when nothing
changed), and the leader's own placements, which it learns by asking its engines every
heartbeat interval as a worker would. Heartbeats and node listings sweep too, so a leader run
as bare daphne processes, without `up`, still shows offline workers as offline."""

from __future__ import annotations

import logging
import threading
import time

from django.db import close_old_connections

from cluster.models import HEARTBEAT_SECONDS, Node, NodeRole

log = logging.getLogger("cluster.liveness")

SWEEP_SECONDS = 1.0


def leader_report(*, name: str) -> list[str]:
    """Asks the leader node's engines what they serve and makes that its placements."""
    from django.conf import settings
    from django.utils import timezone

    from catalog.selectors import served_endpoints
    from cluster.membership import placements_reconcile
    from cluster.services import engine_probe

    node = Node.objects.filter(name=name, role=NodeRole.LEADER).first()
    if node is None:
        return []
    engines = [(node.engine, node.engine_endpoint)] if node.engine and node.engine_endpoint \
        else []
    engines += [(kind, endpoint) for owner, kind, endpoint in served_endpoints() if owner == name]
    models: list[str] = []
    reachable, error = True, ""
    cfg = settings.FLOCK
    keys = {"vllm": cfg.vllm_api_key, "anthropic": getattr(cfg, "anthropic_api_key", "")}
    for kind, endpoint in engines:
        probe = engine_probe(kind, endpoint, timeout=2, api_key=keys.get(kind, ""))
        models += probe.models
        if not probe.reachable and endpoint == node.engine_endpoint:
            reachable, error = False, probe.error
    Node.objects.filter(pk=node.pk).update(last_heartbeat_at=timezone.now(),
                                           engine_reachable=reachable, engine_error=error)
    placements_reconcile(node=node, models=models)
    return models


class LeaderLoop:
    """Sweeps silent workers offline every second and refreshes the leader's own placements
    every HEARTBEAT_SECONDS, until stopped."""

    def __init__(self, name: str, *, sweep: float = SWEEP_SECONDS,
                 report: float = HEARTBEAT_SECONDS) -> None:
        self.name = name
        self.sweep_seconds = sweep
        self.report_seconds = report
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def tick(self, *, report: bool) -> None:
        from cluster.membership import nodes_sweep

        close_old_connections()
        nodes_sweep()
        if report:
            leader_report(name=self.name)
            # Shard processes started by a command that has exited are supervised from here.
            from cluster.sharding_node import shards_adopt

            shards_adopt()

    def _run(self) -> None:
        next_report = 0.0
        while not self._stop.wait(self.sweep_seconds):
            now = time.monotonic()
            try:
                self.tick(report=now >= next_report)
            except Exception:  # a database hiccup must not end the loop
                log.exception("cluster liveness tick failed")
            if now >= next_report:
                next_report = now + self.report_seconds

    def start(self) -> LeaderLoop:
        self._thread = threading.Thread(target=self._run, name="cluster-liveness", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
