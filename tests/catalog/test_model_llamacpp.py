"""Adding a GGUF file on llama.cpp: Flock copies it into the models directory with progress,
starts a real llama-server for it, and removing it stops the server and deletes the copy."""

from __future__ import annotations

import httpx
import psutil
import pytest
from django.conf import settings

from catalog import services, serving
from catalog.models import InstalledModel
from cluster import embedded
from tests.catalog.conftest import CPU_LAPTOP_16, make_node, model

pytestmark = [pytest.mark.engine, pytest.mark.django_db]


@pytest.fixture
def gguf(tmp_path):
    """The gemma GGUF, outside Flock's models directory, as an admin would have it."""
    source = embedded.model_path(settings.FLOCK.data_dir)
    outside = tmp_path / "my-gemma.gguf"
    outside.symlink_to(source)
    return outside


@pytest.fixture
def cleanup():
    yield
    for row in InstalledModel.objects.all():
        serving.stop(row.serve_pid, row.model_id)


def test_add_file_serves_it_with_a_spawned_llama_server_and_remove_stops_it(gguf, cleanup):
    node = make_node(engine="llamacpp", endpoint="http://127.0.0.1:9", hardware=CPU_LAPTOP_16)
    text = model("add", f"file:{gguf}", "--node", node.name)
    assert "pulling my-gemma [" in text and "253.1 MB/253.1 MB" in text
    row = InstalledModel.objects.get(model_id="my-gemma")
    assert row.state == "ready" and row.engine == "llamacpp" and row.owns_file
    copy = settings.FLOCK.data_dir / "models" / "my-gemma.gguf"
    assert row.local_path == str(copy) and copy.stat().st_size == 253_113_024
    served = httpx.get(row.serve_endpoint + "/v1/models", timeout=5).json()
    assert [m["id"] for m in served["data"]] == ["my-gemma"]
    reply = httpx.post(row.serve_endpoint + "/v1/chat/completions", timeout=60, json={
        "model": "my-gemma", "max_tokens": 4, "messages": [{"role": "user", "content": "Hi"}]})
    assert reply.status_code == 200 and reply.json()["usage"]["completion_tokens"] > 0
    assert "my-gemma" in model("ls", "--no-probe")

    pid = row.serve_pid
    model("remove", "my-gemma", "--yes")
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    assert not copy.exists() and gguf.exists()
    assert not InstalledModel.objects.exists()


def test_the_embedded_catalog_entry_uses_the_packaged_gguf_in_place(cleanup):
    node = make_node(engine="ollama", endpoint="http://127.0.0.1:9", hardware=CPU_LAPTOP_16)
    row = services.model_add(spec="gemma-3-270m", node_name=node.name)
    assert row.engine == "llamacpp" and not row.owns_file
    assert row.local_path == str(embedded.model_path(settings.FLOCK.data_dir))
    assert serving.running(row.serve_pid, "gemma-3-270m")
    services.model_remove(model_id="gemma-3-270m")
    assert embedded.model_path(settings.FLOCK.data_dir).is_file()  # the shared file stays
