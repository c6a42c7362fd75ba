"""The Shards page in a real browser: a sharded model's processes with their states, updated
live, and a tear-down confirmed in the dialog."""

from __future__ import annotations

import pytest

from cluster.models import Node, Shard, ShardRole, ShardState
from tests.dashboard.test_browser import BOX, browser, page, shots, site  # noqa: F401  (fixtures)

pytest.importorskip("playwright", reason="pip install -r requirements-dev.txt")


def test_a_sharded_model_shows_its_processes_live_and_is_torn_down(site, page):  # noqa: F811
    # Both processes on this machine's node, so tearing down stops them here in either pass
    # (with Redis, another node's stop task would wait for that node's Celery worker).
    worker = Node.objects.get(name=BOX)
    Shard.objects.create(model="llama-3.1-405b", node=worker, role=ShardRole.COORDINATOR,
                         host="127.0.0.1", port=18080, state=ShardState.STARTING, build="b1")
    rpc = Shard.objects.create(model="llama-3.1-405b", node=worker, role=ShardRole.RPC,
                               host="10.0.0.7", port=50052, state=ShardState.READY, build="b1")
    page.goto(site.url + "/shards")
    group = page.locator(".shard-group[data-model='llama-3.1-405b']")
    assert group.get_attribute("data-health") == "starting"
    assert "10.0.0.7:50052" in group.inner_text()
    Shard.objects.filter(pk=rpc.pk).update(state=ShardState.CRASHLOOP, restarts=5)
    page.wait_for_selector(f"tr[data-role=rpc][data-node='{BOX}'][data-state=crashloop]",
                           timeout=10_000)
    site.shoot(page, "shards")
    group.locator("button:has-text('Tear down')").click()
    page.click("#confirm-dialog [data-confirm-ok]")
    page.wait_for_selector(".toast:has-text('llama-3.1-405b was torn down')")
    page.wait_for_selector(".shard-group", state="detached", timeout=10_000)
    assert not Shard.objects.exists()
