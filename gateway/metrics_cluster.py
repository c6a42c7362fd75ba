"""Metrics computed when /metrics is scraped, from the cluster's state rather than from traffic:
whether each node's engine answers, how long ago each node's heartbeat arrived, and one info
series per node. Only the process answering the scrape computes them, so they are not summed."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from asgiref.sync import sync_to_async
from django.utils import timezone
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from gateway.router import router

log = logging.getLogger("flock.gateway")
PROBE_SECONDS = 3.0  # a scrape never waits longer than this for an engine


@dataclass(frozen=True)
class NodeRow:
    name: str
    role: str
    state: str
    engine: str
    heartbeat_age: float | None


def _node_rows() -> list[NodeRow]:
    from cluster.selectors import nodes_all

    now = timezone.now()
    return [NodeRow(node.name, node.role, node.state, node.engine or "",
                    (now - node.last_heartbeat_at).total_seconds()
                    if node.last_heartbeat_at else None)
            for node in nodes_all()]


async def engines_up() -> dict[str, bool]:
    """Per routable node, whether its engine answered the router's last model listing (the
    router's own cache, at most a few seconds old, refreshed here when stale)."""
    pool = await router.pool()

    async def answers(engine) -> bool:
        try:
            return (await asyncio.wait_for(router.listing(engine), PROBE_SECONDS)).error is None
        except TimeoutError:
            return False

    results = await asyncio.gather(*(answers(engine) for _, engine in pool))
    up: dict[str, bool] = {}
    for (node, _), answered in zip(pool, results, strict=True):
        up[node] = up.get(node, False) or answered
    return up


class ClusterCollector(Collector):
    def __init__(self, nodes: list[NodeRow], up: dict[str, bool]) -> None:
        self.nodes, self.up = nodes, up

    def collect(self):
        engine_up = GaugeMetricFamily(
            "flock_engine_up", "1 when the node is routable and its engine answers, else 0.",
            labels=["node"])
        age = GaugeMetricFamily(
            "flock_heartbeat_age_seconds", "Seconds since the node's last heartbeat.",
            labels=["node"])
        info = GaugeMetricFamily(
            "flock_node_info", "One series per registered node, labelled with its role, state "
            "and engine.", labels=["node", "role", "state", "engine"])
        names = {row.name for row in self.nodes}
        for row in self.nodes:
            engine_up.add_metric([row.name], 1.0 if self.up.get(row.name) else 0.0)
            if row.heartbeat_age is not None:
                age.add_metric([row.name], max(row.heartbeat_age, 0.0))
            info.add_metric([row.name, row.role, row.state, row.engine], 1.0)
        for name, answered in self.up.items():  # "local": the configured engine, no node row
            if name not in names:
                engine_up.add_metric([name], 1.0 if answered else 0.0)
        yield from (engine_up, age, info)


async def cluster_collector() -> ClusterCollector:
    """The cluster's series; none when the database cannot say (the traffic metrics still go
    out: an outage is when they are needed)."""
    try:
        nodes = await sync_to_async(_node_rows, thread_sensitive=False)()
        return ClusterCollector(nodes, await engines_up())
    except Exception:
        log.warning("/metrics: the cluster's state could not be read", exc_info=True)
        return ClusterCollector([], {})
