"""Removing a node that holds a shard tears down that sharded model everywhere, so no process of
it is left running unsupervised."""

from __future__ import annotations

import subprocess
import sys

import pytest

from accounts.audit import Actor
from accounts.models import AuditEntry
from cluster import membership
from cluster.models import Node, NodeRole, Placement, PlacementSource, Shard, ShardRole, ShardState
from tests.cluster.shard_helpers import alive, cluster_nodes, node_queues_served

pytestmark = pytest.mark.django_db(transaction=True)
ADMIN = Actor("admin:ada", source="cli")


def _stand_in(binary: str) -> subprocess.Popen:
    """A process whose command line names `binary`, as the supervisor checks before a kill."""
    return subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)", binary])


def test_removing_a_worker_with_an_rpc_server_tears_the_sharded_model_down():
    w1, w2 = cluster_nodes()
    leader = Node.objects.get(role=NodeRole.LEADER)
    procs = {"rpc1": _stand_in("ggml-rpc-server"), "rpc2": _stand_in("ggml-rpc-server"),
             "coord": _stand_in("llama-server")}
    try:
        for node, role, name in ((w1, ShardRole.RPC, "rpc1"), (w2, ShardRole.RPC, "rpc2"),
                                 (leader, ShardRole.COORDINATOR, "coord")):
            Shard.objects.create(model="big", node=node, role=role, host="127.0.0.1", port=1,
                                 pid=procs[name].pid, state=ShardState.READY)
        Placement.objects.create(node=leader, model="big", source=PlacementSource.SHARD)
        Shard.objects.create(model="other", node=w1, role=ShardRole.RPC, host="127.0.0.1", port=2,
                             state=ShardState.READY)

        with node_queues_served():  # with Redis, the workers' stop tasks go through their queues
            membership.node_remove(node=w2, actor=ADMIN)

        for proc in procs.values():
            proc.wait(15)
        assert not any(alive(p.pid) for p in procs.values())
        assert list(Shard.objects.values_list("model", flat=True)) == ["other"]  # untouched
        assert not Placement.objects.filter(model="big").exists()
        actions = list(AuditEntry.objects.order_by("id").values_list("action", flat=True))
        assert actions[-2:] == ["shard.remove", "node.remove"]
    finally:
        for proc in procs.values():
            proc.kill()
            proc.wait(5)
