"""The Shards page: sharded models grouped with the state of each process, creating a shard set
(refused at once when it cannot work; with the real rpc-server and coordinator otherwise) and
tearing it down."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from django.conf import settings

from accounts.models import AuditEntry
from cluster.models import Node, NodeRole, Shard, ShardRole, ShardState
from tests.cluster.shard_helpers import (
    alive,
    cluster_nodes,
    node_queues_served,
    our_engine_processes,
    wait_for,
)

JSON = {"HTTP_ACCEPT": "application/json"}


def _rows(model: str = "qwen3-235b-sharded") -> None:
    leader = Node.objects.get(role=NodeRole.LEADER)
    w1, w2 = Node.objects.filter(role=NodeRole.WORKER).order_by("name")
    Shard.objects.create(model=model, node=leader, role=ShardRole.COORDINATOR, host="127.0.0.1",
                         port=18080, pid=None, state=ShardState.READY, build="b1")
    Shard.objects.create(model=model, node=w1, role=ShardRole.RPC, host="10.0.0.7", port=50052,
                         state=ShardState.READY, build="b1")
    Shard.objects.create(model=model, node=w2, role=ShardRole.RPC, host="10.0.0.8", port=50053,
                         state=ShardState.CRASHLOOP, restarts=5, build="b1",
                         error="exited with code 1 six times")


def test_shards_are_grouped_by_model_with_each_process_state(admin):
    cluster_nodes()
    _rows()
    text = admin.get("/shards").content.decode()
    group = text.split('data-model="qwen3-235b-sharded"')[1]
    assert 'data-health="crashloop"' in text and "2 workers" in group
    assert 'data-role="rpc" data-node="w2" data-state="crashloop"' in group
    assert "10.0.0.8:50053" in group and "exited with code 1 six times" in group
    assert 'data-role="coordinator"' in group and "Tear down" in group
    assert '<option value="gemma-3-270m">' in text  # the create form offers GGUF models


def test_the_shards_panel_is_live(admin):
    cluster_nodes()
    panel = admin.get("/live?panels=shards").json()["panels"]["shards"]
    assert "No sharded models" in panel and "2 ready workers" in panel
    _rows()
    panel = admin.get("/live?panels=shards").json()["panels"]["shards"]
    assert 'data-state="crashloop"' in panel


def test_creating_is_refused_at_once_without_enough_workers_or_with_mixed_builds(admin):
    cluster_nodes(builds={"w2": "b9999 (other)"})
    answer = admin.post("/shards/create", {"model": "gemma-3-270m", "workers": "3"}, **JSON)
    assert answer.status_code == 409 and "needs 3 ready workers" in answer.json()["message"]
    answer = admin.post("/shards/create", {"model": "gemma-3-270m", "workers": "2"}, **JSON)
    assert answer.status_code == 409 and "w2" in answer.json()["message"]
    assert "builds differ" in answer.json()["message"]
    answer = admin.post("/shards/create", {"model": "no-such-model"}, **JSON)
    assert answer.status_code == 409 and "not in the catalog" in answer.json()["message"]
    assert not Shard.objects.exists()


def test_tearing_down_stops_and_forgets_every_process_and_is_audited(admin):
    cluster_nodes()
    _rows()
    with node_queues_served():  # with Redis, the workers' stop tasks travel through their queues
        answer = admin.post("/shards/remove", {"model": "qwen3-235b-sharded"}, **JSON)
    assert answer.status_code == 200 and "3 processes stopped" in answer.json()["message"]
    assert not Shard.objects.exists()
    entry = AuditEntry.objects.get(action="shard.remove")
    assert entry.actor == "admin:ada" and entry.target == "model:qwen3-235b-sharded"
    missing = admin.post("/shards/remove", {"model": "qwen3-235b-sharded"}, **JSON)
    assert missing.status_code == 404 and "not sharded" in missing.json()["message"]


@pytest.mark.engine
def test_a_shard_set_created_from_the_dashboard_comes_up_serves_logs_and_tears_down(admin, gguf):
    models = Path(settings.FLOCK.data_dir) / "models"
    models.mkdir(parents=True, exist_ok=True)
    if not (models / gguf.name).exists():
        (models / gguf.name).symlink_to(gguf)  # the catalog's gemma entry looks for it here
    cluster_nodes()
    try:
        with node_queues_served():  # with Redis, worker tasks travel through their queues
            answer = admin.post("/shards/create", {"model": "gemma-3-270m", "workers": "2"}, **JSON)
            assert answer.status_code == 200, answer.content
            assert "across w1, w2" in answer.json()["message"]
            wait_for(lambda: Shard.objects.filter(state=ShardState.READY).count() == 3
                     and "data-health=\"ready\"" in admin.get("/live?panels=shards").json()
                     ["panels"]["shards"], timeout=120, what="all three processes ready")
            pids = list(Shard.objects.values_list("pid", flat=True))
            logs = admin.get("/shards/gemma-3-270m/logs").content.decode()
            assert logs.count("data-role=") == 3 and "rpc" in logs
            answer = admin.post("/shards/remove", {"model": "gemma-3-270m"}, **JSON)
            assert json.loads(answer.content)["ok"]
            assert not any(alive(pid) for pid in pids) and not Shard.objects.exists()
    finally:
        from cluster.supervisor import supervisor

        sup = supervisor()
        for key in sup.keys():
            sup.stop(key)
        for proc in our_engine_processes():
            proc.kill()
