"""A node key cannot make the leader call arbitrary addresses: what a worker reports as its agent
and its engine is checked at registration and in every heartbeat. And the worker's engine and
rpc-servers listen on 0.0.0.0 only when an admin asks."""

from __future__ import annotations

import dataclasses

import httpx
import pytest

from cluster.endpoint_policy import PolicyError, agent_url_check, engine_endpoint_check

WORKER = {"name": "gpu-box", "agent_url": "http://10.0.0.7:8090", "engine": "vllm",
          "engine_endpoint": "http://127.0.0.1:8000", "hardware": {"cpu_count": 8}}


@pytest.fixture
def leader_config(settings):
    settings.FLOCK = dataclasses.replace(
        settings.FLOCK, listen_host="0.0.0.0", listen_port=8080,
        database_url="postgres://flock@10.0.0.2:5432/flock", redis_url="redis://10.0.0.3:6379/0")


@pytest.mark.parametrize("url", [
    "http://169.254.169.254:80", "http://[fe80::1]:8090", "http://metadata.google.internal:80",
    "http://127.0.0.1:8080", "http://localhost:8080", "http://10.0.0.2:5432",
    "http://10.0.0.3:6379", "http://10.0.0.7", "ftp://10.0.0.7:21", "http://u:p@10.0.0.7:8090",
    "http://224.0.0.1:8090"])
def test_an_agent_url_aimed_at_the_leader_or_metadata_is_refused(leader_config, url):
    with pytest.raises(PolicyError):
        agent_url_check(url)


@pytest.mark.parametrize("url", ["http://10.0.0.7:8090", "https://gpu-box.lan:8090",
                                 "http://127.0.0.1:8091"])
def test_a_workers_own_agent_address_passes(leader_config, url):
    assert agent_url_check(url) == url


def test_the_engine_endpoint_must_be_on_the_worker_itself():
    agent = "http://10.0.0.7:8090"
    assert engine_endpoint_check("http://127.0.0.1:8000", agent)
    assert engine_endpoint_check("http://10.0.0.7:11434", agent)
    for elsewhere in ("http://10.0.0.8:8000", "http://169.254.169.254:80", "http://127.0.0.1"):
        with pytest.raises(PolicyError):
            engine_endpoint_check(elsewhere, agent)


def test_a_node_key_cannot_point_the_leader_elsewhere_by_heartbeat(gateway, settings):
    from cluster.models import Node

    port = int(gateway.url.rsplit(":", 1)[1])
    settings.FLOCK = dataclasses.replace(settings.FLOCK, listen_port=port)  # as `up` would say

    token = httpx.post(gateway.url + "/admin/v1/nodes/tokens",
                       headers=gateway.headers(gateway.admin_key)).json()["token"]
    joined = httpx.post(gateway.url + "/admin/v1/nodes/register",
                        headers={"authorization": f"Bearer {token}"}, json=WORKER).json()
    node_key = {"authorization": f"Bearer {joined['key']}"}
    before = Node.objects.get(pk=joined["node_id"]).engine_endpoint
    for change in ({"agent_url": "http://169.254.169.254:80"},
                   {"agent_url": f"http://127.0.0.1:{port}"},
                   {"engine_endpoint": "http://10.9.9.9:8000"}):
        r = httpx.post(gateway.url + "/admin/v1/nodes/heartbeat", headers=node_key,
                       json={"node_id": joined["node_id"], "node": {**WORKER, **change}})
        assert r.status_code == 400, r.text
        assert r.json()["error"]["type"] == "invalid_request_error"
    assert Node.objects.get(pk=joined["node_id"]).engine_endpoint == before
    bad = {**WORKER, "name": "other", "agent_url": "http://169.254.169.254:80"}
    token = httpx.post(gateway.url + "/admin/v1/nodes/tokens",
                       headers=gateway.headers(gateway.admin_key)).json()["token"]
    r = httpx.post(gateway.url + "/admin/v1/nodes/register",
                   headers={"authorization": f"Bearer {token}"}, json=bad)
    assert r.status_code == 400


def test_the_embedded_engine_listens_on_loopback(tmp_path, monkeypatch):
    from cluster import embedded

    monkeypatch.setattr(embedded, "server_binary", lambda: "llama-server")
    argv = embedded.server_argv(tmp_path / "model.gguf", 8081)
    assert argv[argv.index("--host") + 1] == "127.0.0.1"


def test_rpc_servers_bind_to_the_cluster_address_unless_bind_all_is_asked(monkeypatch):
    from cluster import sharding_node

    started = {}
    shard = type("S", (), {"host": "10.0.0.7", "build": "", "node": None})()
    monkeypatch.setattr(sharding_node.Shard.objects, "select_related",
                        lambda *a: type("Q", (), {"get": staticmethod(lambda **kw: shard)})())
    monkeypatch.setattr(sharding_node, "_check_build", lambda build: build)
    monkeypatch.setattr(sharding_node, "_port", lambda bind: 50052)
    monkeypatch.setattr(sharding_node, "_start",
                        lambda s, argv, **kw: started.update(argv=argv, bind=kw["bind"]))
    monkeypatch.setattr(sharding_node.embedded, "rpc_server_binary", lambda: "rpc-server")
    sharding_node.rpc_start(shard_id=1, build="b1")
    assert started["argv"][started["argv"].index("-H") + 1] == "10.0.0.7"
