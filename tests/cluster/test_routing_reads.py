"""The router's reads, run every second or two from SQL compiled once (flocksite.compiled_query),
give what the ORM querysets they are compiled from give, with the time filled in anew each run."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from catalog.models import InstalledModel, InstallState
from catalog.selectors import served_endpoints
from cluster import selectors
from cluster.agent import engine_access
from cluster.models import OFFLINE_AFTER, Node, NodeRole, NodeState, Shard, ShardRole, ShardState
from flocksite.compiled_query import Compiled

pytestmark = pytest.mark.django_db


def _routing(nodes) -> list[tuple]:
    return [(n.pk, n.name, n.role, n.engine, n.engine_endpoint, engine_access(n)) for n in nodes]


def test_the_routers_node_list_is_the_routable_nodes_in_order():
    now = timezone.now()
    Node.objects.create(name="z-leader", role=NodeRole.LEADER, engine="ollama",
                        engine_endpoint="http://127.0.0.1:11434",
                        last_heartbeat_at=now - timedelta(hours=1))  # a leader needs none
    Node.objects.create(name="b-static", engine="vllm", engine_endpoint="http://10.0.0.9:8000")
    fresh = Node.objects.create(name="a-joined", engine="vllm",
                                engine_endpoint="http://10.0.0.7:8090/engine",
                                agent_url="http://10.0.0.7:8090", agent_salt="salt-1",
                                last_heartbeat_at=now)
    Node.objects.create(name="c-silent", engine="vllm", engine_endpoint="http://10.0.0.8:8000",
                        last_heartbeat_at=now - OFFLINE_AFTER - timedelta(seconds=1))
    Node.objects.create(name="d-draining", engine="vllm", engine_endpoint="http://10.0.0.6:8000",
                        state=NodeState.DRAINING)
    Node.objects.create(name="e-no-engine", engine="vllm", engine_endpoint="")

    light = selectors.nodes_routable_for_routing()
    assert [n.name for n in light] == ["z-leader", "a-joined", "b-static"]
    assert _routing(light) == _routing(selectors.nodes_routable())
    assert engine_access(light[1])[1]  # the joined node's agent secret, from its id and salt

    # The time is a parameter of each run, not fixed when the SQL was compiled.
    Node.objects.filter(pk=fresh.pk).update(
        last_heartbeat_at=now - OFFLINE_AFTER - timedelta(seconds=5))
    assert [n.name for n in selectors.nodes_routable_for_routing()] == ["z-leader", "b-static"]
    Node.objects.filter(pk=fresh.pk).update(last_heartbeat_at=timezone.now())
    assert [n.name for n in selectors.nodes_routable_for_routing()] == [
        "z-leader", "a-joined", "b-static"]


def test_served_endpoints_list_ready_model_servers_and_coordinators_on_ready_nodes():
    box = Node.objects.create(name="box", engine="llamacpp", engine_endpoint="http://10.0.0.5:8080")
    gone = Node.objects.create(name="gone", engine="llamacpp", state=NodeState.OFFLINE,
                               engine_endpoint="http://10.0.0.4:8080")
    common = {"engine": "llamacpp", "spec": "x", "engine_model": "m", "source": "s"}
    InstalledModel.objects.create(model_id="b-model", node=box, state=InstallState.READY,
                                  serve_endpoint="http://10.0.0.5:9001", **common)
    InstalledModel.objects.create(model_id="a-model", node=box, state=InstallState.READY,
                                  serve_endpoint="http://10.0.0.5:9000", **common)
    InstalledModel.objects.create(model_id="pulling", node=box, state=InstallState.PULLING,
                                  serve_endpoint="http://10.0.0.5:9002", **common)
    InstalledModel.objects.create(model_id="on-gone", node=gone, state=InstallState.READY,
                                  serve_endpoint="http://10.0.0.4:9000", **common)
    InstalledModel.objects.create(model_id="no-server", node=box, state=InstallState.READY,
                                  serve_endpoint="", **common)
    Shard.objects.create(model="big", node=box, role=ShardRole.COORDINATOR, host="127.0.0.1",
                         port=9100, state=ShardState.READY)
    Shard.objects.create(model="big", node=box, role=ShardRole.RPC, host="0.0.0.0", port=50052,
                         state=ShardState.READY)
    Shard.objects.create(model="other", node=box, role=ShardRole.COORDINATOR, host="127.0.0.1",
                         port=9101, state=ShardState.CRASHLOOP)
    assert served_endpoints() == [("box", "llamacpp", "http://10.0.0.5:9000"),
                                  ("box", "llamacpp", "http://10.0.0.5:9001"),
                                  ("box", "llamacpp", "http://127.0.0.1:9100")]


def test_a_compiled_query_refuses_a_time_it_cannot_place():
    query = Compiled(lambda when: Node.objects.values_list("name"), "when")
    with pytest.raises(ValueError, match="markers"):
        query.rows(when=timezone.now())
