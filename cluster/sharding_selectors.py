"""Reads for sharded models: the shards, the workers to shard across, the coordinators the
router sends requests to, and the processes' logs."""

from __future__ import annotations

from collections import defaultdict

import httpx
from django.db.models import Q
from django.utils import timezone

from cluster import processes
from cluster.models import (
    OFFLINE_AFTER,
    Node,
    NodeRole,
    NodeState,
    Shard,
    ShardRole,
    ShardState,
)
from flocksite.compiled_query import Compiled


def shards_all() -> list[Shard]:
    return list(Shard.objects.select_related("node").order_by("model", "-role", "node__name"))


def shards_for(model: str) -> list[Shard]:
    return [s for s in shards_all() if s.model == model]


def sharded_models() -> list[str]:
    return sorted(set(Shard.objects.values_list("model", flat=True)))


def shards_grouped() -> dict[str, list[Shard]]:
    grouped: dict[str, list[Shard]] = defaultdict(list)
    for shard in shards_all():
        grouped[shard.model].append(shard)
    return dict(grouped)


def shard_dict(shard: Shard) -> dict:
    return {"id": shard.pk, "model": shard.model, "node": shard.node.name,
            "node_id": shard.node_id, "role": shard.role, "host": shard.host, "port": shard.port,
            "endpoint": shard.endpoint, "pid": shard.pid, "state": shard.state,
            "restarts": shard.restarts, "build": shard.build, "log_path": shard.log_path,
            "supervisor": shard.supervisor,
            "error": shard.error,
            "ready_at": shard.ready_at.isoformat() if shard.ready_at else None,
            "created_at": shard.created_at.isoformat() if shard.created_at else None}


def free_memory(node: Node) -> int:
    """Bytes free for weights on `node`, from its last heartbeat: available RAM plus free VRAM
    (unified memory counted once)."""
    hw = node.hardware or {}
    ram = int(hw.get("ram_available_bytes") or hw.get("ram_total_bytes") or 0)
    gpus = hw.get("gpus") or []
    if hw.get("unified_memory"):
        return ram
    return ram + sum(int(g.get("memory_free_bytes") or 0) for g in gpus if isinstance(g, dict))


def workers_by_free_memory() -> list[Node]:
    """Ready workers heard from within OFFLINE_AFTER (an rpc-server needs no engine, so idle
    workers count), the most free memory first."""
    fresh = timezone.now() - OFFLINE_AFTER
    workers = Node.objects.filter(role=NodeRole.WORKER, state=NodeState.READY) \
        .filter(Q(last_heartbeat_at__isnull=True) | Q(last_heartbeat_at__gte=fresh))
    return sorted(workers, key=lambda n: (-free_memory(n), n.name))


def coordinator_endpoints() -> list[tuple[str, str, str]]:
    """(node name, engine kind, endpoint) of every ready coordinator on a ready node: what the
    router adds to its pool, like the llama-servers of added models."""
    return [(node, "llamacpp", processes.local_url(host, port))
            for node, host, port in _COORDINATORS.rows()]


_COORDINATORS = Compiled(lambda: Shard.objects.filter(
    role=ShardRole.COORDINATOR, node__state=NodeState.READY,
    state__in=(ShardState.READY, ShardState.RESTARTING)).values_list("node__name", "host", "port"))


def coordinator_healthy(shard: Shard, timeout: float = 2.0) -> bool:
    try:
        url = processes.local_url(shard.host, shard.port, "/health")
        return httpx.get(url, timeout=timeout, trust_env=False).status_code == 200
    except httpx.HTTPError:
        return False
