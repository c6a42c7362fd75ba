"""The node routes of the admin API over real HTTP: join tokens, register, heartbeat, list,
show, drain and remove, with the credentials each one takes."""

from __future__ import annotations

import httpx

from accounts.models import AuditEntry
from cluster.models import Node, NodeState

WORKER = {"name": "gpu-box", "agent_url": "http://10.0.0.7:8090", "engine": "vllm",
          "engine_endpoint": "http://127.0.0.1:8000", "hardware": {"cpu_count": 8}}


def bearer(key: str) -> dict[str, str]:
    return {"authorization": f"Bearer {key}"} if key else {}


def join_token(gateway) -> str:
    r = httpx.post(gateway.url + "/admin/v1/nodes/tokens", headers=gateway.headers(gateway.admin_key))
    assert r.status_code == 201, r.text
    assert "manage.py join" in r.json()["join_command"]
    return r.json()["token"]


def register(gateway, credential: str, body: dict | None = None) -> httpx.Response:
    return httpx.post(gateway.url + "/admin/v1/nodes/register", headers=bearer(credential),
                      json=body or WORKER)


def test_a_join_token_is_exchanged_once_for_a_node_key_and_a_node_id(gateway):
    token = join_token(gateway)
    r = register(gateway, token)
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["name"] == "gpu-box" and body["key"].startswith("sk-flock-")
    assert body["heartbeat_seconds"] == 5 and body["offline_after_seconds"] == 15
    assert len(body["agent_secret"]) == 64
    again = register(gateway, token, {**WORKER, "name": "other"})
    assert again.status_code == 401 and "already used" in again.json()["error"]["message"]


def test_registering_needs_a_token_or_a_node_or_admin_key(gateway):
    assert register(gateway, "").status_code == 401
    assert register(gateway, gateway.user_key).status_code == 403
    assert register(gateway, gateway.admin_key).status_code == 201
    bad = register(gateway, join_token(gateway), {**WORKER, "agent_url": "http://0.0.0.0:8090"})
    assert bad.status_code == 400 and "--advertise" in bad.json()["error"]["message"]


def test_a_heartbeat_carries_models_and_load_into_the_node_list(gateway):
    joined = register(gateway, join_token(gateway)).json()
    r = httpx.post(gateway.url + "/admin/v1/nodes/heartbeat", headers=bearer(joined["key"]),
                   json={"node_id": joined["node_id"], "models": ["qwen", "llama"], "in_flight": 2,
                         "engine_reachable": True})
    assert r.status_code == 200 and r.json()["state"] == "ready"
    nodes = httpx.get(gateway.url + "/admin/v1/nodes", headers=gateway.headers(gateway.admin_key))
    worker = next(n for n in nodes.json()["data"] if n["name"] == "gpu-box")
    assert worker["models"] == ["llama", "qwen"] and worker["in_flight"] == 2
    assert worker["routable"] is True and worker["engine_local_endpoint"] == "http://127.0.0.1:8000"
    assert "agent_secret" not in worker and "key" not in worker
    shown = httpx.get(gateway.url + f"/admin/v1/nodes/{joined['node_id']}",
                      headers=gateway.headers(gateway.admin_key))
    assert shown.json()["name"] == "gpu-box" and "recent_requests" in shown.json()


def test_a_heartbeat_for_a_forgotten_node_is_a_404_and_with_a_user_key_a_403(gateway):
    joined = register(gateway, join_token(gateway)).json()
    Node.objects.filter(pk=joined["node_id"]).delete()  # the leader lost it (a restored DB)
    r = httpx.post(gateway.url + "/admin/v1/nodes/heartbeat", headers=bearer(joined["key"]),
                   json={"node_id": joined["node_id"], "models": []})
    assert r.status_code == 404
    r = httpx.post(gateway.url + "/admin/v1/nodes/heartbeat", headers=gateway.headers(),
                   json={"node_id": joined["node_id"], "models": []})
    assert r.status_code == 403


def test_drain_and_remove_are_audited_and_a_removed_node_is_refused(gateway):
    joined = register(gateway, join_token(gateway)).json()
    admin = gateway.headers(gateway.admin_key)
    r = httpx.post(gateway.url + "/admin/v1/nodes/gpu-box/drain", headers=admin)
    assert r.status_code == 200 and r.json()["state"] == NodeState.DRAINING
    assert r.json()["routable"] is False
    r = httpx.delete(gateway.url + f"/admin/v1/nodes/{joined['node_id']}", headers=admin)
    assert r.status_code == 200 and r.json()["removed"]["name"] == "gpu-box"
    actions = set(AuditEntry.objects.values_list("action", flat=True))
    assert {"node.join_token.create", "node.register", "node.drain", "node.remove"} <= actions
    assert all(e.source == "api" for e in AuditEntry.objects.filter(action__startswith="node."))
    r = httpx.post(gateway.url + "/admin/v1/nodes/heartbeat", headers=bearer(joined["key"]),
                   json={"node_id": joined["node_id"], "models": []})
    assert r.status_code == 401
    missing = httpx.post(gateway.url + "/admin/v1/nodes/nope/drain", headers=admin)
    assert missing.status_code == 404


def test_node_routes_other_than_register_and_heartbeat_need_an_admin_key(gateway):
    joined = register(gateway, join_token(gateway)).json()
    for method, path in (("GET", ""), ("POST", "/tokens"), ("POST", "/gpu-box/drain"),
                         ("DELETE", "/gpu-box")):
        r = httpx.request(method, gateway.url + "/admin/v1/nodes" + path,
                          headers=bearer(joined["key"]))
        assert r.status_code == 403, (method, path)
