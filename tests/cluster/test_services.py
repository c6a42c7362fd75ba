from __future__ import annotations

import dataclasses
import stat

import pytest
from django.conf import settings

from accounts.models import ApiKey
from cluster import selectors, services
from cluster.models import Node, NodeRole, NodeState
from tests.cluster.conftest import closed_endpoints
from tests.fakes.ollama_server import FakeOllama

pytestmark = pytest.mark.django_db


def register(name: str = "box", endpoint: str = "http://127.0.0.1:9001") -> Node:
    return services.node_register_leader(
        name=name, address="http://box:8080", engine="llamacpp", endpoint=endpoint,
        embedded=True, hardware=services.hardware_detect())


def test_registering_the_leader_twice_updates_one_node():
    register(endpoint="http://127.0.0.1:9001")
    node = register(endpoint="http://127.0.0.1:9002")
    assert Node.objects.count() == 1
    assert (node.role, node.state, node.engine_endpoint) == (
        NodeRole.LEADER, NodeState.READY, "http://127.0.0.1:9002")
    assert node.hardware["cpu_count"] >= 1 and node.hardware["ram_total_bytes"] > 0
    assert node.last_heartbeat_at is not None


def test_a_renamed_leader_takes_the_old_leader_offline():
    register("old-name")
    register("new-name")
    assert Node.objects.get(name="old-name").state == NodeState.OFFLINE
    assert [n.name for n in selectors.nodes_routable()] == ["new-name"]


def test_routable_nodes_are_ready_with_an_endpoint_and_the_leader_comes_first():
    Node.objects.create(name="a-worker", engine="ollama", engine_endpoint="http://a:11434")
    Node.objects.create(name="b-draining", engine="ollama", engine_endpoint="http://b:11434",
                        state=NodeState.DRAINING)
    Node.objects.create(name="c-no-engine")
    register("z-leader")
    assert [n.name for n in selectors.nodes_routable()] == ["z-leader", "a-worker"]


def test_engine_detect_prefers_the_configured_engine_without_probing():
    cfg = dataclasses.replace(settings.FLOCK, engine="vllm", endpoints=closed_endpoints())
    assert services.engine_detect(cfg) == ("vllm", cfg.endpoints["vllm"])


def test_engine_detect_finds_an_engine_on_its_default_port(fake_engine):
    endpoints = {**closed_endpoints(), "mlx": fake_engine.url}
    cfg = dataclasses.replace(settings.FLOCK, engine="", endpoints=endpoints)
    assert services.engine_detect(cfg) == ("mlx", fake_engine.url)


def test_engine_detect_asks_ollama_for_its_version():
    with FakeOllama() as ollama:
        cfg = dataclasses.replace(settings.FLOCK, engine="",
                                  endpoints={**closed_endpoints(), "ollama": ollama.url})
        assert services.engine_detect(cfg) == ("ollama", ollama.url)
        probe = services.engine_probe("ollama", ollama.url)
    assert ("GET", "/api/version", None) in ollama.requests
    assert "llama3.2:1b" in probe.models


def test_engine_detect_finds_nothing_when_nothing_answers():
    cfg = dataclasses.replace(settings.FLOCK, engine="", endpoints=closed_endpoints())
    assert services.engine_detect(cfg) is None


def test_the_first_admin_key_is_created_once_and_saved_privately(tmp_path):
    first = services.admin_key_bootstrap(data_dir=tmp_path)
    assert first.plaintext and first.path == tmp_path / "admin.key"
    assert first.path.read_text().strip() == first.plaintext
    assert stat.S_IMODE(first.path.stat().st_mode) == 0o600
    again = services.admin_key_bootstrap(data_dir=tmp_path)
    assert again.plaintext is None
    assert ApiKey.objects.filter(scope="admin").count() == 1
