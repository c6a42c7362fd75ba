"""Writes for cluster membership: join tokens, worker registration, heartbeats and the placements
they carry, drain, remove, and marking silent workers offline.

Every admin mutation (a join token issued, a node registered, drained, undrained or removed)
writes one audit entry in its transaction. Heartbeats are not admin actions and are not audited;
they carry the worker's full state every time (models, load, hardware), so the leader's view is
whole again after any reconnect without a separate re-list."""

from __future__ import annotations

import hashlib
import logging
import re
import secrets
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.db import transaction
from django.utils import timezone

from accounts.audit import Actor, audit_record
from accounts.models import Scope
from accounts.selectors import KeyInfo
from cluster import agent, endpoint_policy
from cluster.models import (
    JOIN_TOKEN_TTL,
    OFFLINE_AFTER,
    EngineKind,
    JoinToken,
    Node,
    NodeRole,
    NodeState,
    Placement,
    PlacementSource,
    PlacementState,
)

log = logging.getLogger("cluster.membership")

JOIN_PREFIX = "flock-join-"
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")


class MembershipError(Exception):
    """A membership request that cannot be carried out; the message says why and what to do."""


class JoinRefused(MembershipError):
    """The join token is unknown, used or expired."""


class NodeConflict(MembershipError):
    """The name belongs to another live node (or to the leader)."""


class NodeUnknown(MembershipError):
    """No such node (it was removed, or the leader's database was reset)."""


class NotThisNode(MembershipError):
    """A node key speaking for a different node."""


class InvalidReport(MembershipError):
    """A registration or heartbeat carrying a value the leader cannot use."""


# --- join tokens ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class IssuedJoinToken:
    token: JoinToken
    plaintext: str  # shown once, never stored


def _token_hash(plaintext: str) -> str:
    return hashlib.sha256(plaintext.encode()).hexdigest()


def join_token_create(*, actor: Actor, ttl: timedelta = JOIN_TOKEN_TTL) -> IssuedJoinToken:
    """A single-use token for one worker to join with; only its hash is kept."""
    if ttl <= timedelta(0):
        raise ValueError("a join token needs a positive lifetime")
    plaintext = JOIN_PREFIX + secrets.token_urlsafe(24)
    with transaction.atomic():
        token = JoinToken.objects.create(token_hash=_token_hash(plaintext), created_by=actor.name,
                                         expires_at=timezone.now() + ttl)
        audit_record(actor=actor, action="node.join_token.create", target=f"join_token:{token.pk}",
                     details={"expires_at": token.expires_at.isoformat()})
    return IssuedJoinToken(token, plaintext)


def _join_token_consume(plaintext: str, now: datetime) -> JoinToken:
    digest = _token_hash(plaintext)
    used = JoinToken.objects.filter(token_hash=digest, used_at__isnull=True,
                                    expires_at__gt=now).update(used_at=now)
    token = JoinToken.objects.filter(token_hash=digest).first()
    if used and token is not None:
        return token
    fresh = "create a new one on the leader with `manage.py token create --node`"
    if token is None:
        raise JoinRefused(f"unknown join token; {fresh}")
    if token.used_at is not None:
        raise JoinRefused(f"this join token was already used; {fresh}")
    raise JoinRefused(f"this join token expired at {token.expires_at:%H:%M:%S} UTC; {fresh}")


# --- registration --------------------------------------------------------------------------------

@dataclass(frozen=True)
class NodeReport:
    """What a worker says about itself when it registers (and in every heartbeat)."""

    name: str
    agent_url: str
    engine: str = ""
    engine_local_endpoint: str = ""
    hardware: dict = field(default_factory=dict)
    llama_cpp_build: str = ""


@dataclass(frozen=True)
class Registration:
    node: Node
    key_plaintext: str | None  # a node key issued now; None when the caller keeps its own
    agent_secret: str


def _check_report(report: NodeReport) -> None:
    if not NAME_PATTERN.match(report.name or ""):
        raise InvalidReport(f"node name {report.name!r} must be 1-100 letters, digits, '.', '_' "
                            "or '-', starting with a letter or digit (join --name NAME)")
    url = report.agent_url or ""
    if not url.startswith(("http://", "https://")):
        raise InvalidReport(f"agent_url {url!r} must be an http:// or https:// URL")
    host = url.split("://", 1)[1].split("/", 1)[0].rsplit(":", 1)[0]
    try:
        agent.check_advertised(host)
        endpoint_policy.report_check(url, report.engine_local_endpoint)  # never the leader's own
    except (agent.AddressError, endpoint_policy.PolicyError) as exc:
        raise InvalidReport(str(exc)) from None
    if report.engine and report.engine not in EngineKind.values:
        raise InvalidReport(f"engine {report.engine!r} must be one of "
                            f"{', '.join(EngineKind.values)}")


def _node_for_join(name: str, now: datetime) -> Node:
    node = Node.objects.select_for_update().filter(name=name).first()
    if node is None:
        return Node(name=name)
    if node.role == NodeRole.LEADER:
        raise NodeConflict(f"{name!r} is the leader's name; give this worker another one "
                           "(join --name NAME)")
    seen = node.last_heartbeat_at
    if node.state != NodeState.OFFLINE and seen is not None and seen > now - OFFLINE_AFTER:
        raise NodeConflict(f"a node named {name!r} is online; give this machine another name "
                           f"(join --name NAME), or remove that node first "
                           f"(`manage.py node remove {name}`)")
    return node  # the same machine joining again after losing its data dir: take the row over


def _node_for_key(info: KeyInfo, name: str) -> Node:
    if info.scope == Scope.NODE:
        node = Node.objects.select_for_update().filter(api_key_id=info.id).first()
        if node is not None:
            if node.name != name and Node.objects.filter(name=name).exists():
                raise NodeConflict(f"cannot rename {node.name!r} to {name!r}: that name is taken")
            return node
    node = Node.objects.select_for_update().filter(name=name).first()
    if node is None:
        return Node(name=name)
    if node.role == NodeRole.LEADER:
        raise NodeConflict(f"{name!r} is the leader's name; give this worker another one")
    if info.scope == Scope.NODE and node.api_key_id not in (None, info.id):
        raise NodeConflict(f"a node named {name!r} belongs to another node key")
    return node


def node_register(*, credential: str | KeyInfo, report: NodeReport, actor: Actor) -> Registration:
    """Registers a worker: with a join token (single use; issues the node's key), or again with
    its node key (or an admin key), which reuses the node. Returns the agent secret the leader
    will present to this worker's agent."""
    from accounts.services import key_create, key_revoke

    _check_report(report)
    now = timezone.now()
    issued = None
    with transaction.atomic():
        token = None
        if isinstance(credential, str):
            token = _join_token_consume(credential, now)
            node = _node_for_join(report.name, now)
        else:
            node = _node_for_key(credential, report.name)
        rejoined = node.pk is not None
        old_key = node.api_key if rejoined and token is not None else None
        if token is not None or not node.agent_salt:
            node.agent_salt = agent.new_salt()  # a new machine behind the name: a new secret
        node.name, node.role = report.name, NodeRole.WORKER
        node.address = node.agent_url = report.agent_url.rstrip("/")
        node.engine_endpoint = agent.agent_engine_url(node.agent_url)
        node.engine, node.engine_local_endpoint = report.engine, report.engine_local_endpoint
        node.hardware, node.llama_cpp_build = report.hardware or {}, report.llama_cpp_build
        node.last_heartbeat_at, node.offline_since = now, None
        node.state = NodeState.DRAINING if node.drain_requested_at else NodeState.READY
        node.save()
        if (token is None and node.api_key_id is None and isinstance(credential, KeyInfo)
                and credential.scope == Scope.NODE):
            node.api_key_id = credential.id  # a forgotten node's key: it stays the node's key
            node.save(update_fields=["api_key"])
        elif token is not None or node.api_key_id is None:
            issued = key_create(name=f"node:{node.name}", scope="node", actor=actor)
            node.api_key = issued.key
            node.save(update_fields=["api_key"])
        if old_key is not None and old_key.pk != node.api_key_id and old_key.revoked_at is None:
            key_revoke(key=old_key, actor=actor)
        if token is not None:
            JoinToken.objects.filter(pk=token.pk).update(used_by=node)
        audit_record(actor=actor, action="node.register", target=f"node:{node.pk}",
                     details={"name": node.name, "address": node.agent_url,
                              "engine": node.engine, "rejoined": rejoined,
                              "via": f"join_token:{token.pk}" if token else "key"})
    log.info("node %s registered at %s", node.name, node.agent_url)
    return Registration(node, issued.plaintext if issued else None,
                        agent.agent_secret(node.pk, node.agent_salt))


# --- heartbeats and liveness ---------------------------------------------------------------------

@dataclass(frozen=True)
class Heartbeat:
    models: list[str]
    in_flight: int = 0
    hardware: dict | None = None
    engine_reachable: bool = True
    engine_error: str = ""
    report: NodeReport | None = None  # engine, endpoints and address, when they changed


def node_heartbeat(*, node_id: int, key: KeyInfo, beat: Heartbeat) -> Node:
    """Records a heartbeat: the node is alive (an offline node comes back), and its placements
    become exactly the models it reported."""
    now = timezone.now()
    with transaction.atomic():
        node = Node.objects.select_for_update().filter(pk=node_id).first()
        if node is None:
            raise NodeUnknown(f"no node {node_id}; register again")
        if key.scope == Scope.NODE and node.api_key_id != key.id:
            raise NotThisNode(f"this key belongs to another node, not {node.name!r}")
        came_back = node.state == NodeState.OFFLINE
        if came_back:
            node.state = NodeState.DRAINING if node.drain_requested_at else NodeState.READY
            node.offline_since = None
        node.last_heartbeat_at = now
        node.in_flight = max(0, beat.in_flight)
        node.engine_reachable, node.engine_error = beat.engine_reachable, beat.engine_error[:300]
        if beat.hardware:
            node.hardware = beat.hardware
        if beat.report is not None and beat.report.agent_url:
            _check_report(beat.report)
            node.agent_url = node.address = beat.report.agent_url.rstrip("/")
            node.engine_endpoint = agent.agent_engine_url(node.agent_url)
            node.engine = beat.report.engine
            node.engine_local_endpoint = beat.report.engine_local_endpoint
            node.llama_cpp_build = beat.report.llama_cpp_build
        node.save()
        placements_reconcile(node=node, models=beat.models)
    if came_back:
        log.warning("node %s is back online", node.name)
    nodes_sweep(now=now)
    return node


def placements_reconcile(*, node: Node, models: list[str]) -> None:
    """Makes `node`'s placements exactly `models`, all loaded."""
    wanted = {m for m in models if m}
    # A sharded model's placement stays until `shard remove`, whatever the engine reports.
    Placement.objects.filter(node=node).exclude(model__in=wanted) \
        .exclude(source=PlacementSource.SHARD).delete()
    have = set(Placement.objects.filter(node=node).values_list("model", flat=True))
    Placement.objects.bulk_create([Placement(node=node, model=m) for m in sorted(wanted - have)])
    Placement.objects.filter(node=node, model__in=wanted) \
        .exclude(state=PlacementState.LOADED).update(state=PlacementState.LOADED)


def nodes_sweep(*, now: datetime | None = None) -> list[str]:
    """Marks offline every joined worker silent for OFFLINE_AFTER (3 missed heartbeats).
    Routing does not wait for this (it checks heartbeat age itself); the stored state is what
    `node ls` shows. Cheap and idempotent: run from anywhere, as often as wanted."""
    now = now or timezone.now()
    cutoff = now - OFFLINE_AFTER
    stale = Node.objects.filter(role=NodeRole.WORKER, last_heartbeat_at__lt=cutoff) \
        .exclude(state=NodeState.OFFLINE)
    ids = list(stale.values_list("pk", flat=True))
    if not ids:
        return []
    with transaction.atomic():
        names = list(Node.objects.filter(pk__in=ids).values_list("name", flat=True))
        stale.filter(pk__in=ids).update(state=NodeState.OFFLINE, offline_since=now)
        Placement.objects.filter(node_id__in=ids).update(state=PlacementState.UNAVAILABLE)
    for name in names:
        log.warning("node %s missed %s of heartbeats: offline", name, OFFLINE_AFTER)
    return names


# --- admin actions -------------------------------------------------------------------------------

def node_drain(*, node: Node, actor: Actor) -> Node:
    """Stops routing new requests to `node`; requests already on it finish."""
    now = timezone.now()
    with transaction.atomic():
        changed = Node.objects.filter(pk=node.pk, drain_requested_at__isnull=True) \
            .update(drain_requested_at=now)
        Node.objects.filter(pk=node.pk, state=NodeState.READY).update(state=NodeState.DRAINING)
        if changed:
            audit_record(actor=actor, action="node.drain", target=f"node:{node.pk}",
                         details={"name": node.name})
    node.refresh_from_db()
    return node


def node_undrain(*, node: Node, actor: Actor) -> Node:
    """Routes to a drained node again."""
    with transaction.atomic():
        changed = Node.objects.filter(pk=node.pk, drain_requested_at__isnull=False) \
            .update(drain_requested_at=None)
        Node.objects.filter(pk=node.pk, state=NodeState.DRAINING).update(state=NodeState.READY)
        if changed:
            audit_record(actor=actor, action="node.undrain", target=f"node:{node.pk}",
                         details={"name": node.name})
    node.refresh_from_db()
    return node


def node_remove(*, node: Node, actor: Actor) -> None:
    """Forgets a node: its row, placements and installed-model records go, and its key is
    revoked, so its worker stops (401) instead of coming back. A sharded model with a process on
    the node cannot work without it, so each such model is torn down first (every process of
    it stopped, wherever it runs)."""
    from accounts.services import key_revoke
    from cluster import sharding

    if node.role == NodeRole.LEADER and node.state != NodeState.OFFLINE:
        raise MembershipError(f"{node.name} is the running leader; it cannot be removed")
    for model in sorted(set(node.shards.values_list("model", flat=True))):
        sharding.shard_remove(model=model, actor=actor)
    with transaction.atomic():
        key = node.api_key
        details = {"name": node.name, "address": node.address, "key_id": node.api_key_id}
        audit_record(actor=actor, action="node.remove", target=f"node:{node.pk}", details=details)
        node.delete()
        if key is not None and key.revoked_at is None:
            key_revoke(key=key, actor=actor)
