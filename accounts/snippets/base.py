"""The shapes every client module builds: a Target (where and as whom to connect), a Snippet
(what to paste), and the structured ConfigFile form that `connect --write` merges."""

from __future__ import annotations

import json
import os
import shlex
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from accounts.snippets.toml_dump import toml_dumps

OPENAI = "openai"
ANTHROPIC = "anthropic"
BOTH = "openai+anthropic"
KEY_ENV = "FLOCK_API_KEY"  # the variable our snippets use when a tool reads its key from one


@dataclass(frozen=True)
class Target:
    """The gateway root URL (no /v1), the key and the model a snippet points at."""

    root: str
    token: str
    model: str

    @property
    def v1(self) -> str:
        """Where OpenAI-dialect clients are pointed: they append /chat/completions."""
        return self.root + "/v1"


def normalize_base_url(url: str) -> str:
    """'http://h:8080/v1/' -> 'http://h:8080'. Anthropic clients append /v1/messages themselves
    and OpenAI clients need /v1, so the root is kept and each snippet adds what its tool needs."""
    url = url.strip().rstrip("/")
    if not url.startswith(("http://", "https://")):
        raise ValueError(f"{url!r} is not an http:// or https:// URL")
    if url.endswith("/v1"):
        url = url[: -len("/v1")]
    return url


class Append:
    """In a config patch: add these items to the list at this key instead of replacing it."""

    def __init__(self, *items: Any) -> None:
        self.items = list(items)

    def __repr__(self) -> str:
        return f"Append({self.items!r})"


class IfAbsent:
    """In a config patch: set this value only when the key is missing."""

    def __init__(self, value: Any) -> None:
        self.value = value

    def __repr__(self) -> str:
        return f"IfAbsent({self.value!r})"


def materialize(patch: Any) -> Any:
    """The patch as plain data, as it looks in a fresh file."""
    if isinstance(patch, Append):
        return [materialize(item) for item in patch.items]
    if isinstance(patch, IfAbsent):
        return materialize(patch.value)
    if isinstance(patch, dict):
        return {key: materialize(value) for key, value in patch.items()}
    if isinstance(patch, list):
        return [materialize(item) for item in patch]
    return patch


def dump(data: Any, fmt: str) -> str:
    if fmt == "json":
        return json.dumps(data, indent=2, ensure_ascii=False) + "\n"
    if fmt == "yaml":
        return yaml.safe_dump(data, sort_keys=False, default_flow_style=False, allow_unicode=True)
    if fmt == "toml":
        return toml_dumps(data)
    raise ValueError(f"unknown config format {fmt!r}")


@dataclass(frozen=True)
class ConfigFile:
    """A tool's own config file: where it lives and what Flock adds to it."""

    path: str  # as shown to people: "~/.claude/settings.json"
    format: str  # json | yaml | toml
    patch: dict[str, Any]
    after: str = ""  # what the file cannot hold and is still needed, e.g. an exported key

    def resolve(self, home: Path | None = None) -> Path:
        """The real path; ~/.config honours XDG_CONFIG_HOME like the tools themselves do."""
        home = home or Path.home()
        if self.path.startswith("~/.config/") and os.environ.get("XDG_CONFIG_HOME"):
            return Path(os.environ["XDG_CONFIG_HOME"]) / self.path[len("~/.config/"):]
        return home / self.path[len("~/"):]

    def text(self) -> str:
        return dump(materialize(self.patch), self.format)


@dataclass(frozen=True)
class Block:
    kind: str  # shell | python | json | yaml | toml | steps | text
    text: str
    caption: str = ""


@dataclass(frozen=True)
class Snippet:
    client: str
    title: str
    dialect: str
    url: str  # the URL this tool is given
    blocks: tuple[Block, ...]
    config: ConfigFile | None = None
    notes: tuple[str, ...] = ()
    undo: str = ""

    @property
    def text(self) -> str:
        """Everything a person would paste, as one string."""
        return "\n".join(block.text for block in self.blocks)

    def as_dict(self) -> dict[str, Any]:
        return {
            "client": self.client, "title": self.title, "dialect": self.dialect, "url": self.url,
            "blocks": [{"kind": b.kind, "caption": b.caption, "text": b.text} for b in self.blocks],
            "config_file": None if self.config is None else {
                "path": self.config.path, "format": self.config.format,
                "content": materialize(self.config.patch), "after": self.config.after},
            "notes": list(self.notes), "undo": self.undo,
        }


@dataclass(frozen=True)
class Client:
    name: str
    title: str
    dialect: str
    kind: str  # terminal agent | editor | web app | SDK | HTTP
    build: Callable[[Target], Snippet] = field(repr=False)


# Quoting: every value lands in a shell line, a Python literal or a JSON string, so each is
# escaped for where it goes; a model or URL with odd characters still pastes correctly.

def sh(value: str) -> str:
    return shlex.quote(value)


def py(value: str) -> str:
    return json.dumps(value)  # a JSON string literal is a valid Python string literal


def exports(pairs: list[tuple[str, str]]) -> str:
    return "\n".join(f"export {name}={sh(value)}" for name, value in pairs)


def unsets(names: list[str]) -> str:
    return "unset " + " ".join(names)


def steps(*lines: str) -> str:
    return "\n".join(f"{n}. {line}" for n, line in enumerate(lines, 1))


def config_block(config: ConfigFile, lead: str = "merge into") -> Block:
    return Block(config.format, config.text(), f"{lead} {config.path}")
