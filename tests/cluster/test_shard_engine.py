"""Sharding with the real thing: two workers on 127.0.0.1 each running llama.cpp's rpc-server,
a coordinator llama-server on the leader serving the gemma-3 270M GGUF split across them, and
real tokens through the gateway."""

from __future__ import annotations

import io
import os
import signal
from collections.abc import Iterator

import httpx
import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from accounts.models import AuditEntry
from cluster.models import Placement, PlacementSource, Shard, ShardRole, ShardState
from cluster.supervisor import supervisor
from tests.cluster.shard_helpers import (
    alive,
    cluster_nodes,
    node_queues_served,
    our_engine_processes,
    wait_for,
)

pytestmark = pytest.mark.engine

MODEL = "gemma-3-270m"


@pytest.fixture
def sharding_gateway(_server, transactional_db, monkeypatch) -> Iterator:
    """The gateway over real HTTP with an admin and a user key, a leader and two workers; any
    shard process a failed test leaves behind is stopped."""
    from accounts.services import key_create

    monkeypatch.setenv("FLOCK_RPC_THREADS", "1")  # two "workers" share this machine's cores

    cluster_nodes()
    with node_queues_served():
        yield {"url": f"http://127.0.0.1:{_server.port}",
               "admin": key_create(name="admin", scope="admin").plaintext,
               "user": key_create(name="alice", scope="user").plaintext}
    sup = supervisor()
    for key in sup.keys():
        sup.stop(key)
    for proc in our_engine_processes():
        proc.kill()


def chat(gw: dict, model: str = MODEL, max_tokens: int = 8) -> dict:
    response = httpx.post(gw["url"] + "/v1/chat/completions", timeout=120,
                          headers={"authorization": f"Bearer {gw['user']}"},
                          json={"model": model, "max_tokens": max_tokens,
                                "messages": [{"role": "user", "content": "Say hello"}]})
    assert response.status_code == 200, response.text
    return response.json()


def shards() -> dict[str, Shard]:
    return {f"{s.role}@{s.node.name}": s for s in Shard.objects.select_related("node")}


def test_a_model_sharded_across_two_workers_answers_with_real_tokens_and_leaves_nothing_behind(
        sharding_gateway, gguf):
    out = io.StringIO()
    call_command("shard", "create", MODEL, "2", "--gguf", str(gguf), stdout=out)

    from cluster.services import local_node_name

    rows = shards()
    assert set(rows) == {"rpc@w1", "rpc@w2", f"coordinator@{local_node_name()}"}
    assert all(s.state == ShardState.READY and alive(s.pid) for s in rows.values())
    assert {s.host for s in rows.values() if s.role == ShardRole.RPC} == {"127.0.0.1"}
    coordinator = next(s for s in rows.values() if s.role == ShardRole.COORDINATOR)
    for rpc in (rows["rpc@w1"], rows["rpc@w2"]):
        assert rpc.endpoint in ",".join(coordinator.argv)  # --rpc lists both rpc-servers
    assert Placement.objects.get(model=MODEL).source == PlacementSource.SHARD

    answer = chat(sharding_gateway)
    assert answer["model"] == MODEL
    assert answer["usage"]["completion_tokens"] > 0

    listing = io.StringIO()
    call_command("shard", "ls", stdout=listing)
    for text in ("w1", "w2", "coordinator", "ready", str(rows["rpc@w1"].port)):
        assert text in listing.getvalue()
    logs = io.StringIO()
    call_command("shard", "logs", MODEL, "--node", "w2", stdout=logs)
    assert "rpc-server" in logs.getvalue().lower() or "rpc" in logs.getvalue()
    assert "==> rpc on w2" in logs.getvalue() and "w1" not in logs.getvalue()

    pids = [s.pid for s in rows.values()]
    call_command("shard", "remove", MODEL, "--yes", stdout=io.StringIO())
    assert not any(alive(pid) for pid in pids)
    assert our_engine_processes() == []
    assert not Shard.objects.exists() and not Placement.objects.filter(model=MODEL).exists()
    assert list(AuditEntry.objects.filter(action__startswith="shard.")
                .values_list("action", flat=True).order_by("id")) == ["shard.create", "shard.remove"]


def test_a_killed_rpc_server_is_restarted_by_its_supervisor_and_the_model_serves_again(
        sharding_gateway, gguf):
    api = httpx.Client(base_url=sharding_gateway["url"] + "/admin/v1", timeout=300,
                       headers={"authorization": f"Bearer {sharding_gateway['admin']}"})
    created = api.post("/shards", json={"model": MODEL, "count": 2, "gguf": str(gguf)})
    assert created.status_code == 201, created.text
    victim = shards()["rpc@w1"]
    coordinator = Shard.objects.get(role=ShardRole.COORDINATOR)

    os.kill(victim.pid, signal.SIGKILL)

    restarted = wait_for(lambda: Shard.objects.filter(pk=victim.pk, state=ShardState.READY,
                                                      restarts=1).first(),
                         timeout=30, what="the rpc-server to be restarted")
    assert restarted.pid != victim.pid and alive(restarted.pid)
    # Its weights went with it, so the coordinator loads them again.
    wait_for(lambda: Shard.objects.filter(pk=coordinator.pk, state=ShardState.READY,
                                          restarts__gte=1).exists(),
             timeout=120, what="the coordinator to reload")
    assert chat(sharding_gateway)["usage"]["completion_tokens"] > 0

    listed = api.get("/shards").json()["data"]
    assert [m["model"] for m in listed] == [MODEL]
    by_node = {(s["role"], s["node"]): s for s in listed[0]["shards"]}
    assert by_node[("rpc", "w1")]["restarts"] == 1 and by_node[("rpc", "w1")]["state"] == "ready"
    logs = api.get(f"/shards/{MODEL}/logs", params={"node": "w1", "lines": 2000}).json()["data"]
    assert [row["node"] for row in logs] == ["w1"]
    assert logs[0]["log"].count("==== flock: starting ggml-rpc-server") >= 2

    pids = [s.pid for s in Shard.objects.all()]
    removed = api.delete(f"/shards/{MODEL}")
    assert removed.status_code == 200, removed.text
    assert not any(alive(pid) for pid in pids) and our_engine_processes() == []
    assert api.get("/shards").json()["data"] == []


def test_a_failed_step_is_rolled_back_and_names_the_step_and_the_node(sharding_gateway, tmp_path):
    from cluster.services import local_node_name

    broken = tmp_path / "broken.gguf"
    broken.write_bytes(b"GGUF but not really a model" * 100)
    api = httpx.Client(base_url=sharding_gateway["url"] + "/admin/v1", timeout=120,
                       headers={"authorization": f"Bearer {sharding_gateway['admin']}"})

    response = api.post("/shards", json={"model": MODEL, "count": 2, "gguf": str(broken)})

    assert response.status_code == 502
    message = response.json()["error"]["message"]
    assert "step 'start coordinator' failed on " + local_node_name() in message
    assert "Rolled back" in message
    assert our_engine_processes() == []  # both rpc-servers had started; both are gone
    assert not Shard.objects.exists() and not Placement.objects.filter(model=MODEL).exists()


def test_sharding_refuses_workers_with_another_llama_cpp_build_and_names_them(sharding_gateway,
                                                                               gguf):
    from cluster.models import Node

    Node.objects.filter(name="w2").update(llama_cpp_build="b9999 cuda")

    with pytest.raises(CommandError) as refused:
        call_command("shard", "create", MODEL, "2", "--gguf", str(gguf), stdout=io.StringIO())

    assert "w2" in str(refused.value) and "b9999 cuda" in str(refused.value)
    assert "w1 differ" not in str(refused.value)
    assert our_engine_processes() == [] and not Shard.objects.exists()


def test_model_add_and_remove_of_an_entry_that_requires_sharding_go_through_shards(
        sharding_gateway, gguf, settings):
    catalog_dir = settings.FLOCK.data_dir / "catalog"
    catalog_dir.mkdir(parents=True, exist_ok=True)
    (catalog_dir / "gemma-split.yaml").write_text(f"""\
id: gemma-split
name: Gemma 3 270M split across two workers
family: gemma
parameters: 268M
quantization: Q4_K_M
size_gb: 0.253
hardware: {{min_ram_gb: 1, min_vram_gb: 0}}
context_length: 32768
capabilities: [chat]
license: gemma
released: 2025-08-14
sources:
  llamacpp: {{path: {gguf}}}
sharding: {{required: true, min_nodes: 2}}
""")
    out = io.StringIO()
    try:
        call_command("model", "add", "gemma-split", stdout=out)
        assert "handing over to `shard create`" in out.getvalue()
        assert {s.node.name for s in Shard.objects.filter(role=ShardRole.RPC)} == {"w1", "w2"}
        assert chat(sharding_gateway, model="gemma-split")["model"] == "gemma-split"
        removed = io.StringIO()
        call_command("model", "remove", "gemma-split", "--yes", stdout=removed)
        assert "handing over to `shard remove`" in removed.getvalue()
    finally:
        (catalog_dir / "gemma-split.yaml").unlink()
        if Shard.objects.exists():
            call_command("shard", "remove", "gemma-split", "--yes", stdout=io.StringIO())
    assert our_engine_processes() == [] and not Shard.objects.exists()
