"""Plain-dict forms of nodes for the admin API, `node ls|show` and `--json`. Never includes a
key, a key's hash or the agent secret."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.db.models import Count, Q
from django.utils import timezone

from cluster.models import OFFLINE_AFTER, Node, NodeRole, NodeState

RECENT = 10


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def node_is_routable(node: Node, now: datetime) -> bool:
    """The same test as cluster.selectors.nodes_routable, for one loaded node."""
    fresh = (node.role == NodeRole.LEADER or node.last_heartbeat_at is None
             or node.last_heartbeat_at >= now - OFFLINE_AFTER)
    return node.state == NodeState.READY and bool(node.engine_endpoint) and fresh


def node_dict(node: Node, *, now: datetime | None = None) -> dict[str, Any]:
    """A node as listed; pass nodes with `placements` prefetched."""
    from catalog.hardware import describe

    now = now or timezone.now()
    placements = [{"model": p.model, "state": p.state} for p in node.placements.all()]
    seen = node.last_heartbeat_at
    return {
        "id": node.pk, "name": node.name, "role": node.role, "state": node.state,
        "routable": node_is_routable(node, now), "draining": node.drain_requested_at is not None,
        "address": node.address, "engine": node.engine,
        "engine_endpoint": node.engine_endpoint,
        "engine_local_endpoint": node.engine_local_endpoint or node.engine_endpoint,
        "engine_reachable": node.engine_reachable, "engine_error": node.engine_error,
        "embedded": node.engine_embedded,
        "models": [p["model"] for p in placements], "placements": placements,
        "in_flight": node.in_flight, "hardware": node.hardware or {},
        "hardware_summary": describe(node.hardware or {}),
        "llama_cpp_build": node.llama_cpp_build,
        "last_heartbeat_at": _iso(seen),
        "last_seen_seconds": round((now - seen).total_seconds(), 1) if seen else None,
        "offline_since": _iso(node.offline_since), "created_at": _iso(node.created_at),
    }


def node_activity(node: Node, *, limit: int = RECENT) -> dict[str, Any]:
    """What `node show` adds: the node's recent requests and errors, and the last hour's
    totals, from the usage records (which keep the node's name)."""
    from accounts.models import UsageRecord
    from accounts.serializers import usage_dict

    rows = UsageRecord.objects.filter(node=node.name)
    hour = rows.filter(created_at__gte=timezone.now() - timedelta(hours=1)).aggregate(
        requests=Count("id"), errors=Count("id", filter=Q(outcome="error")))
    return {
        "recent_requests": [usage_dict(r) for r in rows.order_by("-created_at")[:limit]],
        "recent_errors": [usage_dict(r) for r in
                          rows.filter(outcome="error").order_by("-created_at")[:limit]],
        "last_hour": hour,
    }
