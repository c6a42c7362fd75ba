"""Join tokens, registration, heartbeats, placements and liveness, at the service level."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from accounts.audit import Actor
from accounts.models import ApiKey, AuditEntry
from accounts.selectors import key_authenticate
from cluster import agent, membership, selectors
from cluster.models import JoinToken, Node, NodeRole, NodeState, Placement, PlacementState

pytestmark = pytest.mark.django_db

ADMIN = Actor(name="cli:test", source="cli")


def report(name: str = "gpu-box", url: str = "http://10.0.0.7:8090") -> membership.NodeReport:
    return membership.NodeReport(name=name, agent_url=url, engine="vllm",
                                 engine_local_endpoint="http://127.0.0.1:8000",
                                 hardware={"cpu_count": 8, "ram_total_bytes": 32 * 2**30})


def join(name: str = "gpu-box", url: str = "http://10.0.0.7:8090") -> membership.Registration:
    issued = membership.join_token_create(actor=ADMIN)
    return membership.node_register(credential=issued.plaintext, report=report(name, url),
                                    actor=Actor(name="join-token", source="api"))


def beat(node: Node, models: list[str], **extra) -> Node:
    info = key_authenticate_node(node)
    return membership.node_heartbeat(node_id=node.pk, key=info,
                                     beat=membership.Heartbeat(models=models, **extra))


def key_authenticate_node(node: Node):
    from accounts.selectors import KeyInfo

    return KeyInfo(id=node.api_key_id, name=f"node:{node.name}", scope="node")


def age(node: Node, seconds: float) -> None:
    Node.objects.filter(pk=node.pk).update(
        last_heartbeat_at=timezone.now() - timedelta(seconds=seconds))


def test_a_join_token_is_stored_hashed_and_lives_five_minutes():
    issued = membership.join_token_create(actor=ADMIN)
    token = JoinToken.objects.get()
    assert issued.plaintext.startswith("flock-join-")
    assert issued.plaintext not in token.token_hash and len(token.token_hash) == 64
    assert timedelta(minutes=4, seconds=59) < token.expires_at - token.created_at <= \
        timedelta(minutes=5, seconds=1)
    assert AuditEntry.objects.filter(action="node.join_token.create").count() == 1


def test_a_join_token_registers_one_worker_with_its_own_node_key():
    done = join()
    node = done.node
    assert (node.role, node.state, node.agent_url) == (NodeRole.WORKER, NodeState.READY,
                                                       "http://10.0.0.7:8090")
    assert node.engine_endpoint == "http://10.0.0.7:8090/node/v1/engine"
    assert node.engine_local_endpoint == "http://127.0.0.1:8000"
    assert key_authenticate(done.key_plaintext).scope == "node"
    assert done.agent_secret == agent.agent_secret(node.pk, node.agent_salt)
    assert JoinToken.objects.get().used_by == node
    assert AuditEntry.objects.filter(action="node.register", target=f"node:{node.pk}").exists()


def test_a_join_token_works_once():
    issued = membership.join_token_create(actor=ADMIN)
    membership.node_register(credential=issued.plaintext, report=report("a"), actor=ADMIN)
    with pytest.raises(membership.JoinRefused, match="already used"):
        membership.node_register(credential=issued.plaintext, report=report("b"), actor=ADMIN)
    assert not Node.objects.filter(name="b").exists()


def test_an_expired_or_unknown_join_token_is_refused_with_what_to_do():
    issued = membership.join_token_create(actor=ADMIN)
    JoinToken.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    with pytest.raises(membership.JoinRefused, match="expired.*token create --node"):
        membership.node_register(credential=issued.plaintext, report=report(), actor=ADMIN)
    with pytest.raises(membership.JoinRefused, match="unknown join token"):
        membership.node_register(credential="flock-join-nope", report=report(), actor=ADMIN)


def test_a_refused_registration_does_not_spend_the_token():
    issued = membership.join_token_create(actor=ADMIN)
    with pytest.raises(membership.InvalidReport, match="--advertise"):
        membership.node_register(credential=issued.plaintext,
                                 report=report(url="http://0.0.0.0:8090"), actor=ADMIN)
    assert membership.node_register(credential=issued.plaintext, report=report(),
                                    actor=ADMIN).node.name == "gpu-box"


def test_registering_again_with_the_node_key_reuses_the_node_and_its_key():
    first = join()
    info = key_authenticate(first.key_plaintext)
    again = membership.node_register(credential=info, report=report(url="http://10.0.0.8:8090"),
                                     actor=ADMIN)
    assert again.node.pk == first.node.pk and again.key_plaintext is None
    assert again.agent_secret == first.agent_secret
    assert Node.objects.get().agent_url == "http://10.0.0.8:8090"
    assert ApiKey.objects.filter(scope="node").count() == 1


def test_a_machine_rejoining_under_its_name_takes_over_its_offline_node():
    first = join()
    age(first.node, 60)
    membership.nodes_sweep()
    second = join()
    assert second.node.pk == first.node.pk
    assert second.agent_secret != first.agent_secret
    assert key_authenticate(first.key_plaintext) is None  # the old key is revoked
    assert key_authenticate(second.key_plaintext) is not None


def test_a_name_in_use_by_a_live_node_or_the_leader_is_refused():
    join("busy")
    with pytest.raises(membership.NodeConflict, match="online.*--name"):
        join("busy")
    Node.objects.create(name="leader-box", role=NodeRole.LEADER)
    with pytest.raises(membership.NodeConflict, match="leader"):
        join("leader-box")


def test_heartbeats_make_the_placements_exactly_the_reported_models():
    node = join().node
    beat(node, ["qwen", "llama"], in_flight=3)
    assert sorted(Placement.objects.values_list("model", flat=True)) == ["llama", "qwen"]
    beat(node, ["qwen", "gemma"])
    assert sorted(Placement.objects.values_list("model", flat=True)) == ["gemma", "qwen"]
    assert Node.objects.get().in_flight == 0


def test_three_missed_heartbeats_take_a_worker_out_of_routing_and_a_heartbeat_brings_it_back():
    node = join().node
    beat(node, ["qwen"])
    assert [n.name for n in selectors.nodes_routable()] == ["gpu-box"]
    age(node, 14)
    assert [n.name for n in selectors.nodes_routable()] == ["gpu-box"]
    age(node, 16)
    assert list(selectors.nodes_routable()) == []  # before any sweep ran
    assert membership.nodes_sweep() == ["gpu-box"]
    node.refresh_from_db()
    assert node.state == NodeState.OFFLINE and node.offline_since is not None
    assert Placement.objects.get().state == PlacementState.UNAVAILABLE
    beat(node, ["qwen"])
    node.refresh_from_db()
    assert node.state == NodeState.READY and node.offline_since is None
    assert Placement.objects.get().state == PlacementState.LOADED
    assert [n.name for n in selectors.nodes_routable()] == ["gpu-box"]


def test_a_drained_node_stays_drained_through_an_outage():
    node = join().node
    membership.node_drain(node=node, actor=ADMIN)
    assert list(selectors.nodes_routable()) == []
    age(node, 60)
    membership.nodes_sweep()
    beat(node, ["qwen"])
    assert Node.objects.get().state == NodeState.DRAINING
    membership.node_undrain(node=node, actor=ADMIN)
    assert Node.objects.get().state == NodeState.READY
    actions = list(AuditEntry.objects.order_by("id").values_list("action", flat=True))
    assert actions[-2:] == ["node.drain", "node.undrain"]


def test_removing_a_node_forgets_it_and_revokes_its_key():
    done = join()
    beat(done.node, ["qwen"])
    membership.node_remove(node=done.node, actor=ADMIN)
    assert not Node.objects.exists() and not Placement.objects.exists()
    assert key_authenticate(done.key_plaintext) is None
    assert AuditEntry.objects.filter(action="node.remove").count() == 1
    with pytest.raises(membership.NodeUnknown):
        membership.node_heartbeat(node_id=done.node.pk, key=key_authenticate_node(done.node),
                                  beat=membership.Heartbeat(models=[]))


def test_a_node_key_cannot_heartbeat_for_another_node():
    a, b = join("a").node, join("b").node
    with pytest.raises(membership.NotThisNode):
        membership.node_heartbeat(node_id=b.pk, key=key_authenticate_node(a),
                                  beat=membership.Heartbeat(models=[]))


def test_the_running_leader_cannot_be_removed():
    leader = Node.objects.create(name="boss", role=NodeRole.LEADER)
    with pytest.raises(membership.MembershipError, match="running leader"):
        membership.node_remove(node=leader, actor=ADMIN)


def test_statically_configured_workers_are_not_judged_by_heartbeats():
    Node.objects.create(name="static", engine="vllm", engine_endpoint="http://10.0.0.9:8000")
    assert membership.nodes_sweep() == []
    assert [n.name for n in selectors.nodes_routable()] == ["static"]


def test_a_forgotten_node_registering_with_its_key_keeps_that_key():
    first = join()
    info = key_authenticate(first.key_plaintext)
    Node.objects.all().delete()  # not through node_remove: the key was never revoked
    again = membership.node_register(credential=info, report=report(), actor=ADMIN)
    assert again.key_plaintext is None and again.node.api_key_id == info.id
    assert ApiKey.objects.filter(scope="node").count() == 1
