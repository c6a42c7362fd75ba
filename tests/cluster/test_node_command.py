"""`token create --node` and `node ls|show|drain|undrain|remove` from the command line."""

from __future__ import annotations

import json
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from accounts.audit import Actor
from accounts.models import ApiKey, AuditEntry, UsageRecord
from cluster import membership
from cluster.models import JoinToken, Node, NodeRole
from tests.cluster.test_membership import beat, join

pytestmark = pytest.mark.django_db


def run(*args: str) -> str:
    out = StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


def test_token_create_node_prints_a_join_command_with_a_single_use_token(settings):
    out = run("token", "create", "--node")
    token = out.split("valid for 5 minutes):")[1].split()[0]
    assert token.startswith("flock-join-")
    assert "manage.py join 'http://" in out and f"?token={token}'" in out
    assert ApiKey.objects.count() == 0  # no key until a worker joins
    assert JoinToken.objects.count() == 1
    data = json.loads(run("token", "create", "--node", "--json"))
    assert data["token"].startswith("flock-join-") and data["token"] in data["join_command"]
    assert AuditEntry.objects.filter(action="node.join_token.create", source="cli").count() == 2


def test_token_create_node_uses_the_external_url_and_refuses_key_options(settings):
    import dataclasses

    settings.FLOCK = dataclasses.replace(settings.FLOCK, external_url="https://flock.example.lan")
    out = run("token", "create", "--node")
    assert "join 'https://flock.example.lan?token=flock-join-" in out
    with pytest.raises(CommandError, match="--quota"):
        run("token", "create", "--node", "--quota", "5")


def test_node_ls_shows_each_node_with_its_models_and_json_has_the_same(settings):
    Node.objects.create(name="boss", role=NodeRole.LEADER, engine="llamacpp",
                        engine_endpoint="http://127.0.0.1:8081")
    node = join("gpu-box").node
    beat(node, ["qwen-coder-7b", "llama-3.2-3b"], in_flight=1)
    out = run("node", "ls")
    lines = out.splitlines()
    assert lines[0].split()[:5] == ["ID", "NAME", "ROLE", "STATE", "ADDRESS"]
    assert lines[1].split()[1:3] == ["boss", "leader"]
    assert "gpu-box" in lines[2] and "llama-3.2-3b, qwen-coder-7b" in lines[2]
    rows = json.loads(run("node", "ls", "--json"))
    assert [r["name"] for r in rows] == ["boss", "gpu-box"]
    assert rows[1]["models"] == ["llama-3.2-3b", "qwen-coder-7b"] and rows[1]["in_flight"] == 1


def test_node_show_has_hardware_models_recent_requests_and_errors():
    from django.utils import timezone

    node = join("gpu-box").node
    beat(node, ["qwen"])
    for n, outcome in enumerate(["ok", "error"]):
        UsageRecord.objects.create(created_at=timezone.now(), request_id=f"req_{n}", model="qwen",
                                   protocol="openai", endpoint="chat.completions", node="gpu-box",
                                   outcome=outcome, status_code=200 if outcome == "ok" else 502,
                                   error_type="" if outcome == "ok" else "engine_error")
    out = run("node", "show", "gpu-box")
    assert "Hardware:" in out and "8 cores" in out and "Models:     qwen" in out
    assert "2 requests, 1 errors" in out and "engine_error" in out
    data = json.loads(run("node", "show", str(node.pk), "--json"))
    assert len(data["recent_requests"]) == 2 and len(data["recent_errors"]) == 1


def test_drain_undrain_and_remove_from_the_cli_are_audited():
    done = join("gpu-box")
    assert "Draining gpu-box" in run("node", "drain", "gpu-box")
    assert "takes requests again" in run("node", "undrain", "gpu-box")
    with pytest.raises(CommandError, match="--yes"):
        run("node", "remove", "gpu-box")
    assert "Removed gpu-box" in run("node", "remove", "gpu-box", "--yes")
    assert not Node.objects.exists()
    entries = AuditEntry.objects.filter(action__in=["node.drain", "node.undrain", "node.remove"])
    assert sorted(e.action for e in entries) == ["node.drain", "node.remove", "node.undrain"]
    assert {e.source for e in entries} == {"cli"}
    assert not ApiKey.objects.get(pk=done.node.api_key_id).is_active


def test_unknown_node_names_list_the_nodes_there_are():
    join("gpu-box")
    with pytest.raises(CommandError, match="no node 'gpu'.*gpu-box"):
        run("node", "show", "gpu")


def test_the_leader_cannot_be_removed_while_it_runs():
    Node.objects.create(name="boss", role=NodeRole.LEADER)
    with pytest.raises(CommandError, match="running leader"):
        run("node", "remove", "boss", "--yes")
    membership.node_drain(node=Node.objects.get(), actor=Actor.cli())  # draining it is fine
