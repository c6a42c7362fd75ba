"""Dashboard actions call the apps' services as the signed-in admin: nodes, join tokens and
models."""

from __future__ import annotations

import pytest

from accounts.models import AuditEntry
from catalog.models import InstalledModel, InstallState
from cluster.models import JoinToken, Node, NodeRole, NodeState
from cluster.services import local_node_name
from tests.catalog.conftest import RTX_4090_BOX
from tests.fakes.ollama_pull import FakeOllamaPull, wait_for

JSON = {"HTTP_ACCEPT": "application/json"}
# Pulls run in-process for this machine's own node, with or without Redis (catalog.services).
BOX = local_node_name()


@pytest.fixture
def worker(transactional_db) -> Node:
    Node.objects.create(name="leader", role=NodeRole.LEADER, engine="vllm",
                        engine_endpoint="http://127.0.0.1:9")
    return Node.objects.create(name=BOX, role=NodeRole.WORKER, engine="ollama",
                               engine_endpoint="http://127.0.0.1:9", hardware=RTX_4090_BOX)


def test_a_join_token_is_shown_once_with_the_commands_and_only_its_hash_is_kept(admin):
    answer = admin.post("/nodes/join-token", **JSON)
    body = answer.json()
    assert answer["cache-control"] == "no-store"
    token = body["token"]
    assert token.startswith("flock-join-")
    assert f"python manage.py join '{body['leader']}?token={token}'" in body["join"]
    assert "make setup" in body["install"] and token in body["install"]
    stored = JoinToken.objects.get()
    assert stored.token_hash != token and token not in stored.token_hash
    assert stored.created_by == "admin:ada"
    assert token not in admin.get("/nodes").content.decode()
    assert AuditEntry.objects.filter(action="node.join_token.create", actor="admin:ada").exists()


def test_a_worker_is_drained_undrained_and_removed_with_each_step_audited(admin, worker):
    drained = admin.post(f"/nodes/{worker.pk}/drain", **JSON).json()
    assert drained["ok"] and "draining" in drained["message"]
    worker.refresh_from_db()
    assert worker.state == NodeState.DRAINING
    assert admin.post(f"/nodes/{worker.pk}/undrain", **JSON).json()["ok"]
    worker.refresh_from_db()
    assert worker.state == NodeState.READY
    assert admin.post(f"/nodes/{worker.pk}/remove", **JSON).json()["ok"]
    assert not Node.objects.filter(pk=worker.pk).exists()
    actions = set(AuditEntry.objects.filter(actor="admin:ada").values_list("action", flat=True))
    assert {"node.drain", "node.undrain", "node.remove"} <= actions


def test_the_running_leader_cannot_be_removed(admin, worker):
    leader = Node.objects.get(name="leader")
    answer = admin.post(f"/nodes/{leader.pk}/remove", **JSON)
    assert answer.status_code == 409 and "running leader" in answer.json()["message"]
    assert admin.post(f"/nodes/{leader.pk}/explode", **JSON).status_code == 404


def test_a_plain_form_post_redirects_back_with_a_message(admin, worker):
    answer = admin.post(f"/nodes/{worker.pk}/drain", follow=True)
    assert answer.redirect_chain[-1][0] == "/nodes"
    assert f"{BOX} is draining" in answer.content.decode()


def test_installing_an_unknown_or_sharded_model_is_refused_at_once(admin, worker):
    unknown = admin.post("/models/install", {"spec": "qwen9-900b"}, **JSON)
    assert unknown.status_code == 400 and "unknown model" in unknown.json()["message"]
    sharded = admin.post("/models/install", {"spec": "deepseek-r1-671b-sharded"}, **JSON)
    assert sharded.status_code == 400 and "must be split across" in sharded.json()["message"]
    tiny = Node.objects.create(name="pi", role=NodeRole.WORKER, engine="ollama",
                               engine_endpoint="http://127.0.0.1:9",
                               hardware={**RTX_4090_BOX, "ram_total_bytes": 2 * 1024**3,
                                         "ram_available_bytes": 1024**3, "gpus": []})
    big = admin.post("/models/install", {"spec": "qwen3-32b", "node": tiny.name}, **JSON)
    assert big.status_code == 400 and "does not fit" in big.json()["message"]
    assert not InstalledModel.objects.exists()


def test_installing_from_the_catalog_pulls_in_the_background_and_removal_unloads(admin, worker):
    fake = FakeOllamaPull().start()
    try:
        Node.objects.filter(pk=worker.pk).update(engine_endpoint=fake.url)
        answer = admin.post("/models/install", {"spec": "qwen3-8b", "node": BOX}, **JSON)
        assert answer.json() == {"ok": True, "message": f"Installing qwen3-8b on {BOX}…",
                                 "model": "qwen3-8b", "node": BOX}
        assert wait_for(lambda: InstalledModel.objects.filter(
            state=InstallState.READY).exists(), timeout=20)
        row = InstalledModel.objects.get()
        assert row.bytes_done == row.bytes_total > 0 and row.added_by == "admin:ada"
        panel = admin.get("/live?panels=installed").json()["panels"]["installed"]
        assert "100%" in panel and "badge ready" in panel
        again = admin.post("/models/install", {"spec": "qwen3-8b", "node": BOX}, **JSON)
        assert "already installed" in again.json()["message"]
        removed = admin.post("/models/remove", {"model": "qwen3-8b", "node": BOX}, **JSON)
        assert removed.json()["ok"] and fake.deleted == ["qwen3:8b"]
        assert not InstalledModel.objects.exists()
        missing = admin.post("/models/remove", {"model": "qwen3-8b"}, **JSON)
        assert missing.status_code == 400 and "not installed" in missing.json()["message"]
    finally:
        fake.stop()


def test_the_catalog_browser_searches_sorts_and_hides_installed(admin, worker):
    InstalledModel.objects.create(model_id="qwen3-8b", catalog_id="qwen3-8b", node=worker,
                                  engine="ollama", engine_model="qwen3:8b", source="qwen3:8b",
                                  state=InstallState.READY)

    def ids(query: str) -> list[str]:
        html = admin.get("/live?panels=catalog&" + query).json()["panels"]["catalog"]
        return [part.split('"')[0] for part in html.split('data-catalog-id="')[1:]]

    qwen = ids("q=qwen3")
    assert "qwen3-8b" in qwen and "qwen3-32b" in qwen and "llama-3.2-1b" not in qwen
    assert "qwen3-8b" not in ids("q=qwen3&hide_installed=1")
    sizes = ids("sort=size")
    assert sizes.index("gemma-3-270m") < sizes.index("qwen3-8b")
    newest = ids("sort=newest")
    assert newest != sorted(newest) and newest != sizes
    html = admin.get("/live?panels=catalog&q=gemma-3-4b").json()["panels"]["catalog"]
    assert "license restricted" in html and "Gemma Terms of Use" in html
    html = admin.get("/live?panels=catalog&q=qwen3-8b").json()["panels"]["catalog"]
    assert "license permissive" in html and "badge ready\">installed" in html
