"""The invite, connect and disconnect commands: keys issued once, snippets printed, config files
merged under a throwaway HOME and restored byte for byte."""

from __future__ import annotations

import dataclasses
import json
import re
import tomllib
from io import StringIO
from pathlib import Path

import pytest
import yaml
from django.core.management import call_command
from django.core.management.base import CommandError

from accounts.models import ApiKey, AuditEntry
from accounts.snippets import Target, snippet_for
from accounts.snippets.base import Append, IfAbsent
from accounts.snippets.formats import strip_json_comments

TOKEN = "sk-flock-CONNECTtest0123456789"
PARSERS = {"json": lambda t: json.loads(strip_json_comments(t)), "yaml": yaml.safe_load,
           "toml": tomllib.loads}

# What a user already has in each tool's file; comments, odd spacing and other settings included.
ORIGINALS = {
    "claude-code": '{\n  // mine\n  "theme": "dark",\n  "env": {"FOO": "1", "ANTHROPIC_MODEL": '
                   '"opus"},\n}\n',
    "zed": '// Zed settings\n{\n  "vim_mode": true,\n  "language_models": {"openai_compatible": '
           '{"Other": {"api_url": "http://other/v1"}}}\n}\n',
    "qwen-code": '{"model": {"name": "qwen3-coder-plus"}, "modelProviders": {"openai": '
                 '[{"id": "a", "envKey": "K"}]}}',
    "opencode": '{\n  "$schema": "https://opencode.ai/config.json",\n  "theme": "opencode"\n}\n',
    "openclaw": '{"gateway": {"port": 18789}}\n',
    "continue": "# my Continue config\nname: Mine\nversion: 0.0.1\nschema: v1\nmodels:\n"
                "  - name: Local\n    provider: ollama\n    model: llama3\n",
    "aider": "# aider\nauto-commits: false\nmodel: sonnet\n",
    "goose": "GOOSE_PROVIDER: anthropic\nGOOSE_MODEL: claude-sonnet\nextensions:\n"
             "  developer:\n    enabled: true\n",
    "hermes": "model:\n  default: anthropic/claude-opus\n  provider: openrouter\nterminal:\n"
              "  backend: local\n",
    "codex-cli": '# my codex\nmodel = "gpt-5"\napproval_policy = "on-request"\n\n'
                 '[mcp_servers.docs]\ncommand = "docs-mcp"\n',
}


@pytest.fixture
def home(tmp_path, monkeypatch, settings) -> Path:
    """A throwaway HOME and FLOCK_DATA_DIR for the commands."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    for name in ("XDG_CONFIG_HOME", "FLOCK_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    settings.FLOCK = dataclasses.replace(settings.FLOCK, data_dir=tmp_path / "flock")
    return home


def run(*args: str) -> str:
    out = StringIO()
    call_command(*args, stdout=out, stderr=StringIO())
    return out.getvalue()


def config_of(client: str):
    return snippet_for(client, Target("http://localhost:8080", TOKEN, "m")).config


def records(home: Path) -> dict:
    path = home.parent / "flock" / "connections.json"
    return json.loads(path.read_text())["connections"] if path.exists() else {}


def holds(data, patch) -> bool:
    """Whether `data` has everything the patch sets (IfAbsent values may have been kept)."""
    for key, wanted in patch.items():
        if isinstance(wanted, IfAbsent):
            continue
        if isinstance(wanted, Append):
            if not all(item in data.get(key, []) for item in wanted.items):
                return False
        elif isinstance(wanted, dict):
            if not holds(data.get(key, {}), wanted):
                return False
        elif data.get(key) != wanted:
            return False
    return True


@pytest.mark.parametrize("client", sorted(ORIGINALS))
def test_connect_write_then_disconnect_restores_the_file_byte_for_byte(home, client):
    config = config_of(client)
    path = config.resolve(home)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(ORIGINALS[client])
    path.chmod(0o640)
    original = path.read_bytes()

    out = run("connect", client, "--write", "--token", TOKEN, "--model", "m")
    assert f"Merged into {path}" in out
    assert path.stat().st_mode & 0o777 == 0o600  # it holds a key now: owner only
    merged = PARSERS[config.format](path.read_text())
    assert holds(merged, config.patch)
    assert set(PARSERS[config.format](ORIGINALS[client])) <= set(merged)  # nothing of theirs lost
    assert Path(records(home)[client]["backup"]).read_bytes() == original
    assert TOKEN not in json.dumps(records(home))  # fingerprints only

    assert "Restored" in run("disconnect", client)
    assert path.read_bytes() == original and path.stat().st_mode & 0o777 == 0o640
    assert not list(path.parent.glob("*.flock-backup*")) and client not in records(home)


def test_a_file_and_folders_that_connect_created_are_removed_again(home):
    path = home / ".codex" / "config.toml"
    out = run("connect", "codex-cli", "--write", "--token", TOKEN)
    assert f"Created {path}" in out and "export FLOCK_API_KEY=" in out
    assert path.stat().st_mode & 0o777 == 0o600  # it holds a key
    assert tomllib.loads(path.read_text())["model_providers"]["flock"]["wire_api"] == "responses"
    assert "Removed" in run("disconnect", "codex-cli")
    assert not (home / ".codex").exists()


def test_connect_json_with_write_keeps_stdout_pure_json(home):
    out, err = StringIO(), StringIO()
    call_command("connect", "hermes", "--write", "--json", "--token", TOKEN, stdout=out,
                 stderr=err)
    assert json.loads(out.getvalue())["config_file"]["path"] == "~/.hermes/config.yaml"
    assert "Created" in err.getvalue()
    assert yaml.safe_load((home / ".hermes" / "config.yaml").read_text())["model"]["api_key"] \
        == TOKEN


def test_edits_made_after_connect_survive_disconnect(home):
    path = home / ".claude" / "settings.json"
    path.parent.mkdir()
    path.write_text('{"env": {"ANTHROPIC_MODEL": "opus"}}')
    run("connect", "claude-code", "--write", "--token", TOKEN, "--model", "m")
    data = json.loads(path.read_text())
    data["env"]["EXTRA"] = "kept"
    data["theme"] = "light"
    path.write_text(json.dumps(data))

    out = run("disconnect", "claude-code")
    assert "Took Flock's settings out" in out and "flock-backup" in out
    assert json.loads(path.read_text()) == {"env": {"ANTHROPIC_MODEL": "opus", "EXTRA": "kept"},
                                            "theme": "light"}


def test_connecting_again_replaces_the_earlier_connection(home):
    path = home / ".aider.conf.yml"
    path.write_text("model: sonnet\n")
    run("connect", "aider", "--write", "--token", TOKEN, "--model", "one")
    run("connect", "aider", "--write", "--token", TOKEN, "--model", "two")
    assert yaml.safe_load(path.read_text())["model"] == "openai/two"
    run("disconnect", "aider")
    assert path.read_text() == "model: sonnet\n"
    assert [p.name for p in home.iterdir()] == [".aider.conf.yml"]


def test_a_config_file_that_does_not_parse_is_left_alone(home):
    path = home / ".claude" / "settings.json"
    path.parent.mkdir()
    path.write_text("{not json")
    with pytest.raises(CommandError, match="is not valid JSON"):
        run("connect", "claude-code", "--write", "--token", TOKEN)
    assert path.read_text() == "{not json" and records(home) == {}
    assert [p.name for p in path.parent.iterdir()] == ["settings.json"]


def test_connect_prints_the_snippet_and_uses_the_admin_key_saying_so(home):
    key_file = home.parent / "flock" / "admin.key"
    key_file.parent.mkdir()
    key_file.write_text("sk-flock-ADMINkey\n")
    out = run("connect", "curl", "--base-url", "https://flock.example.com/v1/", "--model", "q")
    assert f"Using the admin key from {key_file}" in out
    assert "https://flock.example.com/v1/chat/completions" in out and "sk-flock-ADMINkey" in out
    assert '"model": "q"' in out


def test_without_any_key_connect_prints_a_placeholder_but_will_not_write_it(home):
    out = run("connect", "aider")
    assert "No key found" in out and "<your-flock-key>" in out
    with pytest.raises(CommandError, match="no key to write"):
        run("connect", "aider", "--write")


def test_connect_list_names_every_client_with_its_dialect(home):
    rows = json.loads(run("connect", "--list", "--json"))
    assert len(rows) == 19
    by_name = {row["client"]: row for row in rows}
    assert by_name["claude-code"]["dialect"] == "anthropic"
    assert by_name["cursor"]["dialect"] == "openai" and by_name["cursor"]["config_file"] is None
    assert by_name["continue"]["config_file"] == "~/.continue/config.yaml"
    assert "claude-code" in run("connect", "--list")


def test_bad_client_names_and_unwritable_clients_get_one_line_errors(home):
    with pytest.raises(CommandError, match="did you mean claude-code"):
        run("connect", "claude-cod")
    with pytest.raises(CommandError, match="Cursor has no config file"):
        run("connect", "cursor", "--write", "--token", TOKEN)
    with pytest.raises(CommandError, match="not an http"):
        run("connect", "aider", "--base-url", "flock.lan")
    with pytest.raises(CommandError, match="name a client"):
        run("connect")  # stdin is not a terminal under pytest
    with pytest.raises(CommandError, match="did you mean"):
        run("disconnect", "aidr")


def test_with_no_client_on_a_terminal_connect_offers_a_numbered_picker(home, monkeypatch):
    monkeypatch.setattr("sys.stdin.isatty", lambda: True)
    monkeypatch.setattr("builtins.input", lambda prompt: "3")
    out = run("connect", "--token", TOKEN)
    assert " 3. aider" in out and "aider --model openai/" in out


def test_disconnect_lists_connections_and_explains_a_client_set_up_by_hand(home):
    assert "No clients connected" in run("disconnect", "--list")
    run("connect", "goose", "--write", "--token", TOKEN)
    listed = json.loads(run("disconnect", "--list", "--json"))
    assert [row["client"] for row in listed] == ["goose"]
    assert "changes" not in listed[0]
    out = run("disconnect", "claude-code")
    assert "nothing to remove" in out and "unset ANTHROPIC_BASE_URL" in out


# invite


def invite(*args: str) -> tuple[str, str]:
    out, err = StringIO(), StringIO()
    call_command("invite", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


@pytest.mark.django_db
def test_invite_creates_one_user_key_with_the_quota_and_prints_it_once(home):
    keys, audits = ApiKey.objects.count(), AuditEntry.objects.count()
    out, err = invite("hadi", "--quota", "100000", "--base-url", "https://flock.example.com")
    assert ApiKey.objects.count() == keys + 1 and AuditEntry.objects.count() == audits + 1
    key = ApiKey.objects.latest("id")
    assert (key.name, key.scope, key.daily_token_quota) == ("hadi", "user", 100000)
    plaintext = re.search(r"sk-flock-[A-Za-z0-9]{44}", out).group(0)
    assert out.count(plaintext) == 1 and plaintext not in err
    assert AuditEntry.objects.latest("id").action == "token.create"
    assert AuditEntry.objects.latest("id").source == "cli"
    for title in ("Claude Code", "Cursor", "Aider", "Continue", "OpenAI SDK", "curl"):
        assert f"### {title}" in out
    assert "https://flock.example.com/v1" in out and "100,000 tokens a day" in out


@pytest.mark.django_db
def test_invite_json_carries_the_token_and_the_chosen_clients(home):
    out, _ = invite("bob", "--clients", "zed,codex", "--model", "qwen", "--format", "json")
    card = json.loads(out)
    key = ApiKey.objects.get(pk=card["key_id"])
    assert card["token"].startswith("sk-flock-") and key.lookup in card["token"]
    assert [c["client"] for c in card["clients"]] == ["zed", "codex-cli"]
    assert card["model"] == "qwen" and card["daily_token_quota"] == 0
    assert out.count(card["token"]) == 1


@pytest.mark.django_db
def test_invite_refuses_bad_input_before_creating_anything(home):
    keys = ApiKey.objects.count()
    with pytest.raises(CommandError, match="did you mean cursor"):
        invite("carol", "--clients", "cursr")
    with pytest.raises(CommandError, match="negative"):
        invite("carol", "--quota", "-1")
    with pytest.raises(CommandError, match="not an http"):
        invite("carol", "--base-url", "nope")
    assert ApiKey.objects.count() == keys
