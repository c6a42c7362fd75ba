"""Reads for nodes and the cluster's shape."""

from __future__ import annotations

from django.db.models import Case, IntegerField, QuerySet, Value, When

from cluster.models import Node, NodeRole, NodeState


def nodes_routable() -> QuerySet[Node]:
    """Ready nodes that have an engine endpoint, the leader first, then by name."""
    return (
        Node.objects.filter(state=NodeState.READY)
        .exclude(engine_endpoint="")
        .annotate(_leader_last=Case(When(role=NodeRole.LEADER, then=Value(0)), default=Value(1),
                                    output_field=IntegerField()))
        .order_by("_leader_last", "name")
    )


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
