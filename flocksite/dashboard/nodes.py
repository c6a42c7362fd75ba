"""Nodes: the machines in the cluster, adding a worker with a one-time join token, and drain,
undrain and remove."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.db.models import Prefetch
from django.http import HttpRequest, HttpResponse, JsonResponse, QueryDict
from django.shortcuts import get_object_or_404
from django.views.decorators.http import require_POST

from cluster import membership
from cluster.joining import join_command, leader_url
from cluster.models import Node, Placement
from cluster.selectors import nodes_all
from cluster.serializers import node_dict
from flocksite.dashboard.auth import actor_of, staff_required
from flocksite.dashboard.layout import page
from flocksite.dashboard.responses import action_done, action_failed

ACTIONS = {
    "drain": (membership.node_drain, "{name} is draining: no new requests go to it."),
    "undrain": (membership.node_undrain, "{name} takes requests again."),
}


def nodes_context(params: QueryDict) -> dict[str, Any]:
    membership.nodes_sweep()  # silent workers show as offline on time
    rows = nodes_all().prefetch_related(Prefetch("placements", Placement.objects.order_by("model")))
    return {"nodes": [node_dict(node) for node in rows]}


@staff_required
def nodes_page(request: HttpRequest) -> HttpResponse:
    return page(request, "dashboard/nodes.html", "nodes", **nodes_context(request.GET))


def join_instructions(token: str) -> dict[str, str]:
    """The exact commands for a new worker: on a machine that has Flock, and on a fresh one."""
    leader = leader_url()
    host = urlsplit(leader).hostname or "LEADER"
    join = join_command(token)
    cfg = settings.FLOCK
    env = []
    if cfg.database_url:
        env.append("export DATABASE_URL='<the leader's DATABASE_URL>'")
    if cfg.redis_url:
        env.append("export REDIS_URL='<the leader's REDIS_URL>'")
    install = [
        "# copy Flock from the leader (or clone your copy of it), then install and join",
        f"rsync -a --exclude .venv {host}:{settings.BASE_DIR}/ ~/flock/ && cd ~/flock",
        "make setup",
        *env,
        join.replace("python manage.py", ".venv/bin/python manage.py", 1),
    ]
    return {"leader": leader, "join": "\n".join([*env, join]), "install": "\n".join(install)}


@require_POST
@staff_required
def join_token_create(request: HttpRequest) -> JsonResponse:
    issued = membership.join_token_create(actor=actor_of(request))
    response = JsonResponse({
        "ok": True, "message": "Join token created: single use, shown only now.",
        "token": issued.plaintext, "expires_at": issued.token.expires_at.isoformat(),
        **join_instructions(issued.plaintext),
    })
    response["cache-control"] = "no-store"
    return response


@require_POST
@staff_required
def node_action(request: HttpRequest, node_id: int, action: str) -> HttpResponse:
    node = get_object_or_404(Node, pk=node_id)
    to = "dashboard:nodes"
    if action == "remove":
        try:
            membership.node_remove(node=node, actor=actor_of(request))
        except membership.MembershipError as exc:
            return action_failed(request, str(exc), to=to, status=409)
        return action_done(request, f"{node.name} was removed and its key revoked.", to=to)
    if action not in ACTIONS:
        return action_failed(request, f"unknown action {action!r}", to=to, status=404)
    service, message = ACTIONS[action]
    service(node=node, actor=actor_of(request))
    return action_done(request, message.format(name=node.name), to=to)
