"""Reads for nodes and the cluster's shape."""

from __future__ import annotations

from datetime import datetime

from django.db.models import Case, IntegerField, Q, QuerySet, Value, When
from django.utils import timezone

from cluster.models import OFFLINE_AFTER, Node, NodeRole, NodeState
from flocksite.compiled_query import Compiled


def nodes_routable(fresh: datetime | None = None) -> QuerySet[Node]:
    """Ready nodes that have an engine endpoint, the leader first, then by name. A joined worker
    also needs a heartbeat within OFFLINE_AFTER (since `fresh`, by default that long ago):
    routing drops a silent worker on time even before anything marks it offline."""
    if fresh is None:
        fresh = timezone.now() - OFFLINE_AFTER
    return (
        Node.objects.filter(state=NodeState.READY)
        .filter(Q(role=NodeRole.LEADER) | Q(last_heartbeat_at__isnull=True)
                | Q(last_heartbeat_at__gte=fresh))
        .exclude(engine_endpoint="")
        .annotate(_leader_last=Case(When(role=NodeRole.LEADER, then=Value(0)), default=Value(1),
                                    output_field=IntegerField()))
        .order_by("_leader_last", "name")
    )


ROUTING_FIELDS = ("id", "name", "role", "engine", "engine_endpoint", "agent_url", "agent_salt")
_ROUTABLE = Compiled(lambda fresh: nodes_routable(fresh).values_list(*ROUTING_FIELDS), "fresh")


def nodes_routable_for_routing() -> list[Node]:
    """`nodes_routable()` for the router, which reads it every second or two: the same nodes in
    the same order, as unsaved instances that hold ROUTING_FIELDS only, from SQL compiled once
    (flocksite.compiled_query)."""
    rows = _ROUTABLE.rows(fresh=timezone.now() - OFFLINE_AFTER)
    return [Node(**dict(zip(ROUTING_FIELDS, row, strict=True))) for row in rows]


def nodes_all() -> QuerySet[Node]:
    return Node.objects.annotate(
        _leader_last=Case(When(role=NodeRole.LEADER, then=Value(0)), default=Value(1),
                          output_field=IntegerField())
    ).order_by("_leader_last", "name")


def node_leader() -> Node | None:
    return Node.objects.filter(role=NodeRole.LEADER).exclude(state=NodeState.OFFLINE).first()


def node_by_name(name: str) -> Node | None:
    return Node.objects.filter(name=name).first()


def cluster_counts() -> dict[str, int]:
    from accounts.models import ApiKey

    nodes = Node.objects.all()
    return {
        "nodes": nodes.count(),
        "nodes_ready": nodes.filter(state=NodeState.READY).count(),
        "nodes_routable": nodes_routable().count(),
        "api_keys_active": ApiKey.objects.filter(revoked_at__isnull=True).count(),
    }


def node_find(ref: str | int) -> Node | None:
    """A node by id or by name."""
    text = str(ref).strip()
    if text.isdigit():
        found = Node.objects.filter(pk=int(text)).first()
        if found is not None:
            return found
    return Node.objects.filter(name=text).first()
