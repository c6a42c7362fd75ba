"""Shards in Django admin and the admin API's refusals (no process is started here; the real
processes are in test_shard_engine.py)."""

from __future__ import annotations

import io

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from accounts.models import AuditEntry
from cluster.models import Node, Placement, PlacementSource, Shard, ShardRole, ShardState
from tests.cluster.shard_helpers import cluster_nodes, node_queues_served


def recorded_shards(model: str = "big-model") -> list[Shard]:
    """Rows as a finished `shard create` leaves them, without processes behind them."""
    workers = cluster_nodes()
    leader = Node.objects.get(role="leader")
    rows = [Shard.objects.create(model=model, node=w, role=ShardRole.RPC, host="127.0.0.1",
                                 port=50052 + i, state=ShardState.READY) for i, w in enumerate(workers)]
    rows.append(Shard.objects.create(model=model, node=leader, role=ShardRole.COORDINATOR,
                                     host="127.0.0.1", port=9001, state=ShardState.CRASHLOOP,
                                     restarts=5))
    Placement.objects.create(node=leader, model=model, source=PlacementSource.SHARD)
    return rows


@pytest.mark.django_db(transaction=True)  # with Redis, the stops run in a worker's threads
def test_shards_are_listed_in_django_admin_and_torn_down_with_audit(admin_client):
    rows = recorded_shards()
    page = admin_client.get("/admin/cluster/shard/")
    assert page.status_code == 200
    for text in (b"big-model", b"w1", b"w2", b"crashloop", b"127.0.0.1:50052"):
        assert text in page.content
    assert admin_client.get(f"/admin/cluster/shard/{rows[0].pk}/change/").status_code == 200

    with node_queues_served():
        admin_client.post("/admin/cluster/shard/", {"action": "remove_models",
                                                    "_selected_action": [rows[0].pk]})

    assert not Shard.objects.exists()
    assert not Placement.objects.filter(model="big-model").exists()
    assert AuditEntry.objects.filter(source="admin", action="shard.remove",
                                     target="model:big-model").count() == 1


@pytest.mark.django_db
def test_a_heartbeat_does_not_drop_a_sharded_models_placement():
    from cluster.membership import placements_reconcile

    recorded_shards()
    leader = Node.objects.get(role="leader")
    placements_reconcile(node=leader, models=["something-else"])
    assert set(Placement.objects.filter(node=leader).values_list("model", flat=True)) == \
        {"big-model", "something-else"}


@pytest.mark.django_db
def test_remove_needs_confirmation_off_a_terminal_and_names_unknown_models():
    recorded_shards()
    with pytest.raises(CommandError, match="needs confirmation: add --yes"):
        call_command("shard", "remove", "big-model", stdout=io.StringIO())
    with pytest.raises(CommandError, match="'nope' is not sharded \\(sharded: big-model\\)"):
        call_command("shard", "remove", "nope", "--yes", stdout=io.StringIO())
    assert Shard.objects.count() == 3


@pytest.mark.django_db
def test_ls_prints_json_with_every_process():
    recorded_shards()
    import json

    out = io.StringIO()
    call_command("shard", "ls", "--json", stdout=out)
    rows = json.loads(out.getvalue())
    assert {(r["role"], r["node"], r["state"]) for r in rows} >= {("rpc", "w1", "ready"),
                                                                  ("rpc", "w2", "ready")}
    assert next(r for r in rows if r["role"] == "coordinator")["restarts"] == 5


@pytest.mark.django_db
def test_creating_needs_as_many_ready_workers_as_asked_for(client):
    cluster_nodes()
    with pytest.raises(CommandError, match="needs 3 ready workers; ready: w1, w2"):
        call_command("shard", "create", "gemma-3-270m", "3", "--gguf", "/tmp/x.gguf",
                     stdout=io.StringIO())
    assert not Shard.objects.exists()


@pytest.mark.django_db(transaction=True)  # keys are looked up from another thread
def test_the_admin_api_refuses_user_keys_and_maps_errors(client):
    from accounts.services import key_create

    recorded_shards()
    admin = {"HTTP_AUTHORIZATION": "Bearer " + key_create(name="a", scope="admin").plaintext}
    user = {"HTTP_AUTHORIZATION": "Bearer " + key_create(name="u", scope="user").plaintext}

    assert client.get("/admin/v1/shards", **user).status_code == 403
    listed = client.get("/admin/v1/shards", **admin).json()["data"]
    assert [m["model"] for m in listed] == ["big-model"] and len(listed[0]["shards"]) == 3
    again = client.post("/admin/v1/shards/create", {"model": "big-model", "count": 2},
                        content_type="application/json", **admin)
    assert again.status_code == 409 and "already sharded" in again.json()["error"]["message"]
    missing = client.delete("/admin/v1/shards/nope", **admin)
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "shard_not_found"
    Node.objects.filter(name="w1").update(llama_cpp_build="b1 metal")
    Shard.objects.all().delete()
    mismatch = client.post("/admin/v1/shards", {"model": "gemma-3-270m", "gguf": "/tmp/x.gguf"},
                           content_type="application/json", **admin)
    assert mismatch.status_code == 409 and mismatch.json()["error"]["code"] == "build_mismatch"
    assert "w1" in mismatch.json()["error"]["message"]


@pytest.mark.django_db
def test_workers_are_picked_by_free_ram_plus_vram_and_silent_or_draining_ones_are_skipped():
    from datetime import timedelta

    from django.utils import timezone

    from cluster.models import NodeRole, NodeState
    from cluster.sharding import workers_pick

    cluster_nodes()  # w1: 8 GB free, w2: 4 GB free
    gpu = {"ram_available_bytes": 2 * 1024 ** 3,
           "gpus": [{"memory_free_bytes": 20 * 1024 ** 3}, {"memory_free_bytes": 4 * 1024 ** 3}]}
    Node.objects.create(name="gpu-box", role=NodeRole.WORKER, hardware=gpu,
                        last_heartbeat_at=timezone.now(), llama_cpp_build="cpu")
    Node.objects.create(name="silent", role=NodeRole.WORKER, hardware={"ram_available_bytes": 10**12},
                        last_heartbeat_at=timezone.now() - timedelta(minutes=5))
    Node.objects.create(name="drained", role=NodeRole.WORKER, state=NodeState.DRAINING,
                        hardware={"ram_available_bytes": 10**12}, last_heartbeat_at=timezone.now())

    assert [n.name for n in workers_pick(2)] == ["gpu-box", "w1"]
    assert [n.name for n in workers_pick(3)] == ["gpu-box", "w1", "w2"]
