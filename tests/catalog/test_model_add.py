from __future__ import annotations

import io
import json

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from catalog import services
from catalog.errors import DoesNotFit, ShardingRequired
from catalog.models import InstalledModel, InstallState
from tests.catalog.conftest import RTX_4090_BOX, make_node, model

pytestmark = pytest.mark.django_db


def pulls(fake) -> list:
    return [body for method, path, body in fake.requests if path == "/api/pull"]


def test_dry_run_prints_size_engine_node_ram_check_and_eta_and_pulls_nothing(ollama_node, ollama):
    text = model("add", "qwen3-8b", "--dry-run")
    assert "Dry run: nothing pulled." in text
    assert "size     5.2 GB" in text and "engine   Ollama" in text
    assert f"node     {ollama_node.name}" in text and "source   qwen3:8b" in text
    assert "RAM      fits: needs 8 GB RAM" in text and "ETA      1:44" in text  # at 50 MB/s
    data = json.loads(model("add", "qwen3-8b", "--dry-run", "--json"))
    assert data["engine"] == "ollama" and data["size_bytes"] == 5_200_000_000
    assert data["fit"]["ok"] is True and data["eta_seconds"] == pytest.approx(104)
    assert pulls(ollama) == [] and not InstalledModel.objects.exists()


def test_a_model_that_does_not_fit_is_refused_with_the_reason(ollama_node, ollama):
    out = io.StringIO()
    with pytest.raises(CommandError, match=r"qwen3-32b does not fit node .*needs 24 GB of RAM; "
                                           r"the node has 15.6 GiB \(add --force"):
        call_command("model", "add", "qwen3-32b", stdout=out)
    assert out.getvalue() == ""  # the refusal is the only output
    assert pulls(ollama) == [] and not InstalledModel.objects.exists()
    text = model("add", "qwen3-32b", "--dry-run")
    assert "RAM      DOES NOT FIT" in text


def test_force_installs_a_model_that_does_not_fit(ollama_node, ollama):
    ollama.pullable["qwen3:32b"] = [2_000_000]
    model("add", "qwen3-32b", "--force")
    assert InstalledModel.objects.get(model_id="qwen3-32b").state == InstallState.READY
    assert "qwen3:32b" in ollama.models


def test_add_streams_ollama_pull_progress_to_the_user(ollama_node, ollama):
    ollama.pull_delay = 0.03
    text = model("add", "qwen3-8b")
    assert pulls(ollama) == [{"model": "qwen3:8b", "stream": True}]
    assert "pulling qwen3-8b [" in text and "/52.0 MB" in text and "MB/s" in text
    assert "ETA" in text and "✔ qwen3-8b ready on" in text
    row = InstalledModel.objects.get(model_id="qwen3-8b")
    assert row.state == InstallState.READY and row.bytes_done == row.bytes_total == 52_012_700
    assert row.engine == "ollama" and row.engine_model == "qwen3:8b" and row.added_by
    assert "qwen3:8b" in ollama.models  # routable: the engine now lists it
    assert any(path == "/api/generate" for _, path, _ in ollama.requests)  # warmed


def test_progress_events_reach_the_caller_in_order(ollama_node, ollama):
    events = []
    services.model_add(spec="qwen3-8b", on_progress=events.append)
    done = [e.done for e in events if e.total]
    assert len(done) >= 10 and done == sorted(done) and done[-1] == 52_012_700
    assert events[0].status == "pulling manifest" and events[-1].status == "success"


def test_a_failed_pull_exits_non_zero_with_one_line_and_is_recorded(ollama_node, ollama):
    ollama.pull_error = "pull model manifest: file does not exist"
    with pytest.raises(CommandError) as failure:
        model("add", "qwen3-8b")
    assert str(failure.value) == ("ollama could not pull qwen3:8b: pull model manifest: "
                                  "file does not exist")
    row = InstalledModel.objects.get(model_id="qwen3-8b")
    assert row.state == InstallState.FAILED and "file does not exist" in row.error
    ollama.pull_error = ""
    model("add", "qwen3-8b")  # a failed model can be added again
    assert InstalledModel.objects.get(model_id="qwen3-8b").state == InstallState.READY


def test_adding_twice_is_a_no_op_and_force_pulls_again(ollama_node, ollama):
    model("add", "qwen3-8b")
    model("add", "qwen3-8b")
    assert len(pulls(ollama)) == 1
    model("add", "qwen3-8b", "--force")
    assert len(pulls(ollama)) == 2 and InstalledModel.objects.count() == 1


def test_ollama_and_hf_specs_pull_those_tags(ollama_node, ollama):
    ollama.pullable["smollm2:135m"] = [1_000_000]
    ollama.pullable["hf.co/bartowski/SmolLM2-135M-Instruct-GGUF:Q4_K_M"] = [900_000]
    model("add", "ollama:smollm2:135m")
    model("add", "hf:bartowski/SmolLM2-135M-Instruct-GGUF:Q4_K_M")
    assert [p["model"] for p in pulls(ollama)] == [
        "smollm2:135m", "hf.co/bartowski/SmolLM2-135M-Instruct-GGUF:Q4_K_M"]
    assert set(InstalledModel.objects.values_list("model_id", flat=True)) == {
        "smollm2:135m", "hf.co/bartowski/SmolLM2-135M-Instruct-GGUF:Q4_K_M"}


def test_unknown_ids_nodes_and_specs_fail_with_a_suggestion(ollama_node):
    with pytest.raises(CommandError, match="unknown model 'qwen3-8'; did you mean 'qwen3-8b'"):
        model("add", "qwen3-8")
    with pytest.raises(CommandError, match=f"did you mean '{ollama_node.name}'"):
        model("add", "qwen3-8b", "--node", ollama_node.name + "x")
    with pytest.raises(CommandError, match="expected hf:OWNER/REPO"):
        model("add", "hf:not-a-repo")
    with pytest.raises(CommandError, match="no such file"):
        model("add", "file:/nowhere/model.gguf")


def test_the_node_is_picked_by_fit_and_the_engine_it_runs(ollama_node, ollama):
    from cluster.models import NodeRole

    big = make_node(name="gpu-box", role=NodeRole.WORKER, engine="ollama", endpoint=ollama.url,
                    hardware=RTX_4090_BOX)
    plan = json.loads(model("add", "qwen3-32b", "--dry-run", "--json"))
    assert plan["node"] == big.name and plan["fit"]["ok"]
    assert json.loads(model("add", "qwen3-8b", "--dry-run", "--json", "--node",
                            ollama_node.name))["node"] == ollama_node.name


def test_sharded_models_are_handed_to_the_shard_commands(ollama_node):
    with pytest.raises(ShardingRequired, match="shard create llama-3.3-70b-sharded 2"):
        services.model_add(spec="llama-3.3-70b-sharded")
    assert "sharding required: at least 2 nodes" in model("add", "llama-3.3-70b-sharded",
                                                          "--dry-run")


def test_without_an_id_off_a_terminal_it_says_what_is_missing(ollama_node):
    for words in (["add"], ["info"], ["remove"]):
        with pytest.raises(CommandError, match="missing model"):
            model(*words)


def test_on_a_terminal_a_missing_id_opens_the_picker(ollama_node, ollama, monkeypatch):
    import io

    monkeypatch.setattr("catalog.management.commands.model.interactive", lambda out: True)
    monkeypatch.setattr("sys.stdin", io.StringIO("qwen3 8b\n\n"))
    text = model("add", "--dry-run")
    assert "Pick a model matching qwen3 8b" in text and "model    qwen3-8b" in text


def test_services_raise_typed_errors(ollama_node):
    with pytest.raises(DoesNotFit) as refused:
        services.model_add(spec="llama-3.3-70b")
    assert refused.value.fit.ram_needed_gb == 48


def test_a_model_the_nodes_llamacpp_engine_already_serves_gets_no_second_server(fake_engine):
    # The embedded engine serves gemma-3-270m; adding it records it without starting anything.
    fake_engine.script.models = ["gemma-3-270m"]
    node = make_node(engine="llamacpp", endpoint=fake_engine.url, hardware=RTX_4090_BOX)
    row = services.model_add(spec="gemma-3-270m", node_name=node.name)
    assert row.state == InstallState.READY and row.serve_pid is None and not row.local_path
