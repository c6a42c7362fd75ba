"""Django admin for the cluster: listed, drained and removed through the audited services."""

from __future__ import annotations

import pytest

from accounts.models import AuditEntry
from cluster.models import Node, NodeRole


@pytest.mark.django_db
def test_nodes_are_listed_and_drained_and_removed_with_audit(admin_client):
    worker = Node.objects.create(name="gpu-1", role=NodeRole.WORKER, engine="vllm",
                                 engine_endpoint="http://127.0.0.1:9/node/v1/engine")
    page = admin_client.get("/admin/cluster/node/")
    assert page.status_code == 200 and b"gpu-1" in page.content
    admin_client.post("/admin/cluster/node/", {"action": "drain_selected",
                                               "_selected_action": [worker.pk]})
    assert Node.objects.get(pk=worker.pk).drain_requested_at is not None
    admin_client.post("/admin/cluster/node/", {"action": "remove_selected",
                                               "_selected_action": [worker.pk]})
    assert not Node.objects.filter(pk=worker.pk).exists()
    actions = set(AuditEntry.objects.filter(source="admin").values_list("action", flat=True))
    assert {"node.drain", "node.remove"} <= actions


@pytest.mark.django_db
def test_placements_and_join_tokens_pages_render_without_secrets(admin_client):
    from datetime import timedelta

    from django.utils import timezone

    from cluster.models import JoinToken

    token = JoinToken.objects.create(token_hash="f" * 64, created_by="cli:root",
                                     expires_at=timezone.now() + timedelta(minutes=5))
    assert admin_client.get("/admin/cluster/placement/").status_code == 200
    listing = admin_client.get("/admin/cluster/jointoken/")
    detail = admin_client.get(f"/admin/cluster/jointoken/{token.pk}/change/")
    assert listing.status_code == 200 and b"cli:root" in listing.content
    assert b"f" * 64 not in listing.content + detail.content
