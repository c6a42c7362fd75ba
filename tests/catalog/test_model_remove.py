from __future__ import annotations

import io
import json

import pytest
from django.core.management.base import CommandError

from catalog.models import InstalledModel
from tests.catalog.conftest import model

pytestmark = pytest.mark.django_db


@pytest.fixture
def installed(ollama_node, ollama):
    model("add", "qwen3-8b")
    return InstalledModel.objects.get(model_id="qwen3-8b")


def test_ls_lists_added_models_and_what_the_engine_serves_besides(installed, ollama):
    rows = json.loads(model("ls", "--json"))
    mine = [r for r in rows if r["model"] == "qwen3-8b"]
    assert mine[0]["state"] == "ready" and mine[0]["size_bytes"] == 52_012_700
    served = {r["model"] for r in rows if r["state"] == "served"}
    assert "llama3.2:1b" in served and "qwen3:8b" not in served  # the added one, once
    assert "qwen3-8b" in model("ls", "--no-probe") and "52.0 MB" in model("ls")


def test_remove_needs_confirmation_off_a_terminal(installed, ollama):
    with pytest.raises(CommandError, match="needs confirmation: add --yes"):
        model("remove", "qwen3-8b")
    assert InstalledModel.objects.filter(pk=installed.pk).exists()


def test_remove_unloads_deletes_from_the_engine_and_forgets(installed, ollama):
    text = model("remove", "qwen3-8b", "--yes")
    assert f"removed qwen3-8b from {installed.node.name}" in text
    assert ("DELETE", "/api/delete", {"model": "qwen3:8b"}) in ollama.requests
    assert ollama.deleted == ["qwen3:8b"] and "qwen3:8b" not in ollama.models
    assert not InstalledModel.objects.exists()
    unload = [b for m, p, b in ollama.requests if p == "/api/generate" and b.get("keep_alive") == 0]
    assert unload == [{"model": "qwen3:8b", "keep_alive": 0, "stream": False}]


def test_a_terminal_confirms_and_a_no_keeps_the_model(installed, monkeypatch):
    monkeypatch.setattr("catalog.management.commands.model.interactive", lambda out: True)
    monkeypatch.setattr("sys.stdin", io.StringIO("n\n"))
    with pytest.raises(CommandError, match="cancelled"):
        model("remove", "qwen3-8b")
    monkeypatch.setattr("sys.stdin", io.StringIO("1\ny\n"))
    assert "removed qwen3-8b" in model("remove")  # picker, then confirmation
    assert not InstalledModel.objects.exists()


def test_removing_what_is_not_installed_suggests_what_is(installed):
    with pytest.raises(CommandError, match="'qwen3-8' is not installed; did you mean 'qwen3-8b'"):
        model("remove", "qwen3-8", "--yes")


def test_an_unreachable_engine_blocks_removal_unless_forced(installed, ollama):
    ollama.stop()
    with pytest.raises(CommandError, match="could not unload qwen3-8b .*--force"):
        model("remove", "qwen3-8b", "--yes")
    assert InstalledModel.objects.get().state == "failed"
    model("remove", "qwen3-8b", "--yes", "--force")
    assert not InstalledModel.objects.exists()
