"""Client setup snippets: every client names the right URL, key and model; config files parse
in their own format; the curl and SDK snippets work as printed against the live gateway."""

from __future__ import annotations

import ast
import contextlib
import io
import json
import os
import subprocess
import tomllib

import pytest
import yaml

from accounts.snippets import CLIENTS, ORDER, Target, client_get, normalize_base_url, snippet_for
from accounts.snippets.base import Append, IfAbsent, materialize
from accounts.snippets.merge import merge, unmerge
from accounts.snippets.toml_dump import toml_dumps

ROOT = "http://flock.test:9123"
TOKEN = "sk-flock-TESTtoken0123456789"
MODEL = "qwen3-coder-30b"
TARGET = Target(ROOT, TOKEN, MODEL)
ANSWER = "Hello from the fake engine"
SPEC_CLIENTS = ("claude-code cursor aider continue zed cline qwen-code hermes openclaw opencode "
                "open-webui open-notebook goose plandex openhands codex-cli openai-sdk "
                "anthropic-sdk curl").split()
ANTHROPIC_ONLY = {"claude-code", "anthropic-sdk"}
PARSERS = {"json": json.loads, "yaml": yaml.safe_load, "toml": tomllib.loads}


def test_the_nineteen_clients_of_the_original_are_all_there_in_its_order():
    assert ORDER == tuple(SPEC_CLIENTS)
    assert [c.name for c in CLIENTS] == SPEC_CLIENTS


@pytest.mark.parametrize("name", SPEC_CLIENTS)
def test_every_snippet_names_the_base_url_the_key_and_the_model(name):
    snippet = snippet_for(name, TARGET)
    text = snippet.text
    assert TOKEN in text and MODEL in text
    if name in ANTHROPIC_ONLY:
        assert snippet.dialect == "anthropic" and snippet.url == ROOT
        assert ROOT in text and ROOT + "/v1" not in text  # the SDK adds /v1/messages itself
    elif name == "goose":
        assert f"OPENAI_HOST={ROOT}\n" in text and "OPENAI_BASE_PATH=v1/chat/completions" in text
    else:
        assert snippet.url == ROOT + "/v1" and ROOT + "/v1" in text


@pytest.mark.parametrize("name", SPEC_CLIENTS)
def test_config_blocks_parse_in_their_format_and_code_blocks_compile(name):
    snippet = snippet_for(name, TARGET)
    for block in snippet.blocks:
        if block.kind in PARSERS:
            assert PARSERS[block.kind](block.text), f"{name}: empty {block.kind} block"
        elif block.kind == "python":
            compile(block.text, f"<{name}>", "exec")
        elif block.kind == "shell":
            subprocess.run(["bash", "-n", "-c", block.text], check=True)
    if snippet.config is not None:
        parsed = PARSERS[snippet.config.format](snippet.config.text())
        assert parsed == materialize(snippet.config.patch)
        assert snippet.config.path.startswith("~/")


def test_the_structured_config_forms_match_each_tools_format():
    def patch(name):
        return materialize(snippet_for(name, TARGET).config.patch)

    assert patch("claude-code")["env"] == {"ANTHROPIC_BASE_URL": ROOT,
                                           "ANTHROPIC_AUTH_TOKEN": TOKEN, "ANTHROPIC_MODEL": MODEL}
    model = patch("continue")["models"][0]
    assert (model["provider"], model["apiBase"], model["model"]) == ("openai", ROOT + "/v1", MODEL)
    assert patch("continue")["schema"] == "v1"
    assert patch("zed")["language_models"]["openai_compatible"]["Flock"]["api_url"] == ROOT + "/v1"
    opencode = patch("opencode")["provider"]["flock"]
    assert opencode["npm"] == "@ai-sdk/openai-compatible"
    assert opencode["options"]["baseURL"] == ROOT + "/v1"
    assert patch("opencode")["model"] == f"flock/{MODEL}"
    codex = patch("codex-cli")
    assert codex["model_provider"] == "flock" and codex["model"] == MODEL
    assert codex["model_providers"]["flock"]["base_url"] == ROOT + "/v1"
    assert patch("aider")["model"] == f"openai/{MODEL}"
    assert patch("goose")["GOOSE_PROVIDER"] == "openai"
    assert patch("qwen-code")["security"]["auth"]["selectedType"] == "openai"
    assert patch("openclaw")["agents"]["defaults"]["model"]["primary"] == f"flock/{MODEL}"


def test_odd_characters_in_values_survive_the_shell_exactly():
    tricky = Target(ROOT, "sk-flock-it's $HOME; `x`", "model with 'quotes' & spaces")
    text = snippet_for("aider", tricky).blocks[0].text.replace("\naider ", "\n: aider ")
    out = subprocess.run(["bash", "-c", text + '\nprintf %s "$OPENAI_API_KEY"'],
                         capture_output=True, text=True, check=True).stdout
    assert out == tricky.token
    code = snippet_for("openai-sdk", tricky).blocks[0].text
    literals = {kw.arg: kw.value.value for node in ast.walk(ast.parse(code))
                if isinstance(node, ast.Call) for kw in node.keywords
                if isinstance(kw.value, ast.Constant)}
    assert (literals["api_key"], literals["model"]) == (tricky.token, tricky.model)


def test_base_urls_are_normalised_to_the_root():
    assert normalize_base_url("http://h:8080/v1/") == "http://h:8080"
    assert normalize_base_url(" https://flock.example.com ") == "https://flock.example.com"
    with pytest.raises(ValueError, match="not an http"):
        normalize_base_url("flock.example.com")


def test_a_mistyped_client_gets_a_suggestion_and_aliases_resolve():
    with pytest.raises(ValueError, match="did you mean claude-code"):
        client_get("claud-code")
    with pytest.raises(ValueError, match="did you mean open-webui"):
        client_get("open-webiu")
    assert client_get("codex").name == "codex-cli" and client_get("Claude").name == "claude-code"


def test_toml_written_back_reads_the_same():
    data = {"model": "m", "n": 3, "on": True, "f": 1.5, "list": ["a", "b"],
            "model_providers": {"flock": {"name": "Flock", "weird key": "x"}},
            "profiles": {"deep": {"inner": {"x": 1}}},
            "mcp": [{"name": "a", "env": {"K": "v"}}, {"name": "b"}]}
    assert tomllib.loads(toml_dumps(data)) == data


def test_a_merge_keeps_other_settings_and_unmerge_restores_what_was_there():
    original = {"theme": "dark", "env": {"MODEL": "old"}, "models": [{"name": "mine"}]}
    patch = {"env": {"MODEL": "new", "URL": "u"}, "models": Append({"name": "flock"}),
             "schema": IfAbsent("v1"), "theme": IfAbsent("light"), "extra": {"a": {"b": 1}}}
    merged, changes = merge(original, patch)
    assert merged == {"theme": "dark", "env": {"MODEL": "new", "URL": "u"},
                      "models": [{"name": "mine"}, {"name": "flock"}], "schema": "v1",
                      "extra": {"a": {"b": 1}}}
    assert TOKEN not in json.dumps(changes)
    restored, notes = unmerge(merged, changes, original)
    assert restored == original and notes == []


def test_unmerge_leaves_what_the_user_changed_after_the_merge():
    merged, changes = merge({"env": {}}, {"env": {"A": "1", "B": "2"}, "new": {"x": 1}})
    merged["env"]["B"] = "mine"
    merged["new"]["y"] = 2
    restored, notes = unmerge(merged, changes, {"env": {}})
    assert restored == {"env": {"B": "mine"}, "new": {"y": 2}}
    assert notes == ["env.B was changed after connect; left as is"]


def _no_proxy_env() -> dict[str, str]:
    return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": os.environ.get("HOME", "/")}


def test_the_curl_snippet_reaches_the_gateway_in_both_dialects(gateway):
    text = snippet_for("curl", Target(gateway.url, gateway.user_key, "fake-model")).text
    run = subprocess.run(["bash", "-e", "-c", text], capture_output=True, text=True, timeout=60,
                         env=_no_proxy_env())
    assert run.returncode == 0, run.stderr
    openai_line, anthropic_line = [line for line in run.stdout.splitlines() if line.strip()]
    assert json.loads(openai_line)["choices"][0]["message"]["content"] == ANSWER
    assert json.loads(anthropic_line)["content"][0]["text"] == ANSWER


@pytest.mark.parametrize("name", ["openai-sdk", "anthropic-sdk"])
def test_the_sdk_snippets_run_as_printed_against_the_gateway(gateway, monkeypatch, name):
    for variable in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy",
                     "all_proxy", "OPENAI_BASE_URL", "ANTHROPIC_BASE_URL"):
        monkeypatch.delenv(variable, raising=False)
    code = snippet_for(name, Target(gateway.url, gateway.user_key, "fake-model")).blocks[0].text
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        exec(compile(code, f"<{name} snippet>", "exec"), {"__name__": "__snippet__"})
    assert printed.getvalue().strip() == ANSWER
    assert gateway.usage_records()[-1].key_name == "alice"
