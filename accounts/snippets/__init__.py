"""Setup snippets for the clients people point at Flock: what to export, paste or click for
each tool, in that tool's current configuration format, for a given base URL, key and model.

    snippet_for("claude-code", Target(root="http://host:8080", token="sk-flock-…", model="m"))

One module per family of tools; this module is the registry and the name lookup."""

from __future__ import annotations

import difflib

from accounts.snippets import agents, editors, sdks, terminal, web_apps
from accounts.snippets.base import (
    ANTHROPIC,
    BOTH,
    OPENAI,
    Client,
    ConfigFile,
    Snippet,
    Target,
    normalize_base_url,
)

ORDER = ("claude-code", "cursor", "aider", "continue", "zed", "cline", "qwen-code", "hermes",
         "openclaw", "opencode", "open-webui", "open-notebook", "goose", "plandex", "openhands",
         "codex-cli", "openai-sdk", "anthropic-sdk", "curl")
DEFAULT_INVITE_CLIENTS = ("claude-code", "cursor", "aider", "continue", "openai-sdk", "curl")
ALIASES = {
    "claude": "claude-code", "claudecode": "claude-code", "continue-dev": "continue",
    "continuedev": "continue", "cn": "continue", "qwen": "qwen-code", "codex": "codex-cli",
    "openwebui": "open-webui", "webui": "open-webui", "opennotebook": "open-notebook",
    "hermes-agent": "hermes", "openai": "openai-sdk", "anthropic": "anthropic-sdk",
    "roo-code": "cline", "roo": "cline", "open-hands": "openhands",
}

_BY_NAME: dict[str, Client] = {
    c.name: c for c in [*terminal.CLIENTS, *agents.CLIENTS, *editors.CLIENTS, *web_apps.CLIENTS,
                        *sdks.CLIENTS]
}
CLIENTS: tuple[Client, ...] = tuple(_BY_NAME[name] for name in ORDER)
assert set(_BY_NAME) == set(ORDER), "every client module entry must be listed in ORDER"

__all__ = ["ANTHROPIC", "BOTH", "CLIENTS", "DEFAULT_INVITE_CLIENTS", "OPENAI", "Client",
           "ConfigFile", "Snippet", "Target", "UnknownClient", "client_get", "normalize_base_url",
           "snippet_for"]


class UnknownClient(ValueError):
    """A client name Flock has no snippet for; the message suggests the closest names."""


def client_get(name: str) -> Client:
    key = name.strip().lower()
    key = ALIASES.get(key, key)
    if key in _BY_NAME:
        return _BY_NAME[key]
    close = difflib.get_close_matches(key, [*ORDER, *ALIASES], n=3, cutoff=0.6)
    close += [n for n in ORDER if len(key) >= 3 and key in n and n not in close]
    names = list(dict.fromkeys(ALIASES.get(n, n) for n in close))[:3]
    hint = f"; did you mean {' or '.join(names)}?" if names else ""
    raise UnknownClient(f"unknown client {name!r}{hint} (`connect --list` shows all "
                        f"{len(ORDER)})")


def snippet_for(name: str, target: Target) -> Snippet:
    return client_get(name).build(target)
