"""Reading and writing a tool's config file as data: JSON (with the comments and trailing
commas that Zed's and Qwen Code's settings files allow), YAML and TOML."""

from __future__ import annotations

import json
import re
import tomllib
from dataclasses import dataclass
from typing import Any

import yaml

from accounts.snippets.base import dump


class UnreadableConfig(ValueError):
    """The existing file is not valid in its format; nothing is written over it."""


@dataclass(frozen=True)
class Parsed:
    data: dict[str, Any]
    dropped_comments: bool  # writing it back loses comments (the backup keeps them)


def parse(text: str, fmt: str, where: str) -> Parsed:
    if not text.strip():
        return Parsed({}, False)
    try:
        if fmt == "json":
            plain = strip_json_comments(text)
            data, lost = json.loads(plain), plain.strip() != text.strip()
        elif fmt == "yaml":
            data, lost = yaml.safe_load(text), "#" in text
        elif fmt == "toml":
            data, lost = tomllib.loads(text), "#" in text
        else:
            raise ValueError(f"unknown config format {fmt!r}")
    except (json.JSONDecodeError, yaml.YAMLError, tomllib.TOMLDecodeError) as exc:
        first = str(exc).splitlines()[0]
        raise UnreadableConfig(f"{where} is not valid {fmt.upper()} ({first}); fix it or move "
                               "it aside, then try again") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise UnreadableConfig(f"{where}: expected a mapping at the top level, found "
                               f"{type(data).__name__}")
    return Parsed(data, lost)


def render(data: dict[str, Any], fmt: str) -> str:
    return dump(data, fmt)


_TRAILING_COMMA = re.compile(r",(\s*[}\]])")


def strip_json_comments(text: str) -> str:
    """JSONC to JSON: drops // and /* */ comments outside strings, then trailing commas."""
    out: list[str] = []
    i, n = 0, len(text)
    in_string = False
    while i < n:
        ch = text[i]
        if in_string:
            out.append(ch)
            if ch == "\\" and i + 1 < n:
                out.append(text[i + 1])
                i += 1
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
            out.append(ch)
        elif text.startswith("//", i):
            end = text.find("\n", i)
            i = n if end < 0 else end
            continue
        elif text.startswith("/*", i):
            end = text.find("*/", i + 2)
            i = n if end < 0 else end + 2
            continue
        else:
            out.append(ch)
        i += 1
    return _without_trailing_commas("".join(out))


def _without_trailing_commas(text: str) -> str:
    # Only outside strings: split on string literals and clean the pieces between them.
    pieces = re.split(r'("(?:[^"\\]|\\.)*")', text)
    return "".join(p if k % 2 else _TRAILING_COMMA.sub(r"\1", p) for k, p in enumerate(pieces))
