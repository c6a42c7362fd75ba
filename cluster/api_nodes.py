"""Admin API for nodes under /admin/v1/nodes: list, inspect, join tokens, register, heartbeat,
drain, undrain, remove. Registration takes a join token or a node/admin key; heartbeats take a
node or admin key; everything else needs an admin key."""

from __future__ import annotations

from asgiref.sync import sync_to_async
from django.db.models import Prefetch
from django.http import HttpRequest
from ninja import Router, Schema
from ninja.security.base import AuthBase

from accounts.audit import Actor
from accounts.models import Scope
from accounts.selectors import KeyInfo
from cluster import membership, serializers
from cluster.models import HEARTBEAT_SECONDS, OFFLINE_AFTER, Node, Placement
from cluster.selectors import node_find, nodes_all
from gateway.auth import AdminKey, authenticate_key, presented_key, request_actor
from gateway.errors import (
    AuthenticationFailed,
    InvalidRequest,
    NotFound,
    PermissionDenied,
)

router = Router(tags=["nodes"])


class Conflict(InvalidRequest):
    status = 409
    code = "conflict"


class JoinTokenOrKey(AuthBase):
    """A join token (checked, and spent, by the registration itself) or a node/admin key."""

    openapi_type = "apiKey"

    async def __call__(self, request: HttpRequest) -> str | KeyInfo:
        plaintext = presented_key(request)
        if plaintext.startswith(membership.JOIN_PREFIX):
            return plaintext
        if not plaintext:
            raise AuthenticationFailed("Registering needs a join token or a node key.")
        info = await authenticate_key(plaintext)
        if info is None:
            raise AuthenticationFailed("Invalid API key.")
        if info.scope not in (Scope.ADMIN, Scope.NODE):
            raise PermissionDenied(f"A {info.scope}-scope key cannot register nodes.",
                                   code="insufficient_scope")
        return info


def _raise_mapped(exc: membership.MembershipError) -> None:
    message = str(exc)
    if isinstance(exc, membership.JoinRefused):
        raise AuthenticationFailed(message, code="invalid_join_token") from None
    if isinstance(exc, membership.NodeUnknown):
        raise NotFound(message, code="node_not_found") from None
    if isinstance(exc, membership.NotThisNode):
        raise PermissionDenied(message, code="wrong_node") from None
    if isinstance(exc, membership.NodeConflict):
        raise Conflict(message) from None
    raise InvalidRequest(message) from None


def _with_placements():
    return nodes_all().prefetch_related(Prefetch("placements", Placement.objects.order_by("model")))


def _node_or_404(ref: str) -> Node:
    node = node_find(ref)
    if node is None:
        raise NotFound(f"No node {ref!r} (see GET /admin/v1/nodes).", code="node_not_found")
    return node


class NodeIn(Schema):
    name: str
    agent_url: str
    engine: str = ""
    engine_endpoint: str = ""  # the engine's address on the worker itself
    hardware: dict = {}
    llama_cpp_build: str = ""


class HeartbeatIn(Schema):
    node_id: int
    models: list[str] = []
    in_flight: int = 0
    hardware: dict | None = None
    engine_reachable: bool = True
    engine_error: str = ""
    node: NodeIn | None = None


def _report(body: NodeIn) -> membership.NodeReport:
    return membership.NodeReport(name=body.name.strip(), agent_url=body.agent_url.strip(),
                                 engine=body.engine, engine_local_endpoint=body.engine_endpoint,
                                 hardware=body.hardware, llama_cpp_build=body.llama_cpp_build)


@router.get("")
async def node_list(request: HttpRequest) -> dict:
    def rows() -> list[dict]:
        membership.nodes_sweep()
        return [serializers.node_dict(n) for n in _with_placements()]

    return {"data": await sync_to_async(rows)()}


@router.post("/tokens", response={201: dict})
async def join_token_create(request: HttpRequest) -> tuple[int, dict]:
    from cluster.joining import join_command

    issued = await sync_to_async(membership.join_token_create)(actor=request_actor(request))
    return 201, {"token": issued.plaintext, "expires_at": issued.token.expires_at.isoformat(),
                 "join_command": join_command(issued.plaintext),
                 "note": "Single use; shown only now."}


@router.post("/register", auth=JoinTokenOrKey(), response={201: dict})
async def node_register(request: HttpRequest, payload: NodeIn) -> tuple[int, dict]:
    credential = request.auth  # type: ignore[attr-defined]
    ip = request.META.get("REMOTE_ADDR") or None
    actor = (Actor(name="join-token", source="api", ip=ip) if isinstance(credential, str)
             else request_actor(request))
    try:
        done = await sync_to_async(membership.node_register)(
            credential=credential, report=_report(payload), actor=actor)
    except membership.MembershipError as exc:
        _raise_mapped(exc)
        raise
    return 201, {"node_id": done.node.pk, "name": done.node.name, "state": done.node.state,
                 "key": done.key_plaintext, "agent_secret": done.agent_secret,
                 "heartbeat_seconds": HEARTBEAT_SECONDS,
                 "offline_after_seconds": int(OFFLINE_AFTER.total_seconds())}


@router.post("/heartbeat", auth=AdminKey(allow_node=True))
async def node_heartbeat(request: HttpRequest, payload: HeartbeatIn) -> dict:
    beat = membership.Heartbeat(
        models=payload.models, in_flight=payload.in_flight, hardware=payload.hardware,
        engine_reachable=payload.engine_reachable, engine_error=payload.engine_error,
        report=_report(payload.node) if payload.node else None)
    try:
        node = await sync_to_async(membership.node_heartbeat)(
            node_id=payload.node_id, key=request.auth, beat=beat)  # type: ignore[attr-defined]
    except membership.MembershipError as exc:
        _raise_mapped(exc)
        raise
    return {"node_id": node.pk, "state": node.state, "heartbeat_seconds": HEARTBEAT_SECONDS}


@router.get("/{ref}")
async def node_show(request: HttpRequest, ref: str) -> dict:
    def show() -> dict:
        membership.nodes_sweep()
        node = _node_or_404(ref)
        node = _with_placements().get(pk=node.pk)
        return {**serializers.node_dict(node), **serializers.node_activity(node)}

    return await sync_to_async(show)()


@router.post("/{ref}/drain")
async def node_drain(request: HttpRequest, ref: str) -> dict:
    def drain() -> dict:
        node = membership.node_drain(node=_node_or_404(ref), actor=request_actor(request))
        return serializers.node_dict(_with_placements().get(pk=node.pk))

    return await sync_to_async(drain)()


@router.post("/{ref}/undrain")
async def node_undrain(request: HttpRequest, ref: str) -> dict:
    def undrain() -> dict:
        node = membership.node_undrain(node=_node_or_404(ref), actor=request_actor(request))
        return serializers.node_dict(_with_placements().get(pk=node.pk))

    return await sync_to_async(undrain)()


@router.delete("/{ref}")
async def node_remove(request: HttpRequest, ref: str) -> dict:
    def remove() -> dict:
        node = _node_or_404(ref)
        name, pk = node.name, node.pk
        try:
            membership.node_remove(node=node, actor=request_actor(request))
        except membership.MembershipError as exc:
            _raise_mapped(exc)
        return {"removed": {"id": pk, "name": name}}

    return await sync_to_async(remove)()
