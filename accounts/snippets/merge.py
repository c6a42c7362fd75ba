"""Merging a snippet's config patch into a tool's existing settings, and taking exactly that
merge back out. Pure functions on plain data; files are handled in `connections`.

`merge` returns the changes it made. Each names a key path and, for values, a fingerprint of
what was written rather than the value, so the record of a connection never holds a key.
`unmerge` replays the changes backwards: a value is removed (or restored from the original)
only while it still has the fingerprint written, so later edits by the user survive."""

from __future__ import annotations

import copy
import hashlib
import json
from typing import Any

from accounts.snippets.base import Append, IfAbsent, materialize

Change = dict[str, Any]  # {"op": "set"|"append"|"create", "path": [...], "hash": ..., ...}


def fingerprint(value: Any) -> str:
    canonical = json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def merge(doc: dict[str, Any], patch: dict[str, Any]) -> tuple[dict[str, Any], list[Change]]:
    merged = copy.deepcopy(doc)
    changes: list[Change] = []
    _merge_into(merged, patch, [], changes)
    return merged, changes


def _merge_into(target: dict[str, Any], patch: dict[str, Any], path: list[str],
                changes: list[Change]) -> None:
    for key, wanted in patch.items():
        here = [*path, key]
        if isinstance(wanted, IfAbsent):
            if key not in target:
                _set(target, key, materialize(wanted.value), here, changes)
        elif isinstance(wanted, Append):
            _append(target, key, wanted, here, changes)
        elif isinstance(wanted, dict):
            current = target.get(key)
            if current is None and key not in target:
                target[key] = {}
                changes.append({"op": "create", "path": here})
                _merge_into(target[key], wanted, here, changes)
            elif isinstance(current, dict):
                _merge_into(current, wanted, here, changes)
            else:
                _set(target, key, materialize(wanted), here, changes)
        else:
            _set(target, key, materialize(wanted), here, changes)


def _set(target: dict[str, Any], key: str, value: Any, path: list[str],
         changes: list[Change]) -> None:
    if key in target and target[key] == value:
        return  # already so: nothing of ours to take back later
    changes.append({"op": "set", "path": path, "hash": fingerprint(value),
                    "existed": key in target})
    target[key] = value


def _append(target: dict[str, Any], key: str, wanted: Append, path: list[str],
            changes: list[Change]) -> None:
    current = target.get(key)
    if key not in target:
        target[key] = current = []
        changes.append({"op": "create", "path": path})
    elif not isinstance(current, list):
        _set(target, key, materialize(wanted), path, changes)
        return
    present = {fingerprint(item) for item in current}
    for item in (materialize(i) for i in wanted.items):
        if fingerprint(item) not in present:
            current.append(item)
            changes.append({"op": "append", "path": path, "hash": fingerprint(item)})


def unmerge(doc: dict[str, Any], changes: list[Change],
            original: dict[str, Any] | None) -> tuple[dict[str, Any], list[str]]:
    """`doc` without `changes`; values that existed before come back from `original` (the
    backed-up file). Returns the document and notes on anything left in place."""
    result = copy.deepcopy(doc)
    notes: list[str] = []
    for change in reversed(changes):
        path = change["path"]
        parent = _parent(result, path)
        key = path[-1]
        dotted = ".".join(path)
        if parent is None or key not in parent:
            continue
        if change["op"] == "create":
            if parent[key] in ({}, []):
                del parent[key]
        elif change["op"] == "append":
            items = parent[key]
            found = [i for i, item in enumerate(items if isinstance(items, list) else [])
                     if fingerprint(item) == change["hash"]]
            if found:
                del items[found[0]]
            else:
                notes.append(f"the entry added to {dotted} was changed or removed; left as is")
        elif fingerprint(parent[key]) != change["hash"]:
            notes.append(f"{dotted} was changed after connect; left as is")
        else:
            earlier = _parent(original, path) if change["existed"] and original else None
            if earlier is not None and key in earlier:
                parent[key] = copy.deepcopy(earlier[key])
            else:
                del parent[key]
                if change["existed"]:
                    notes.append(f"{dotted} was removed; its earlier value was in the backup, "
                                 "which is gone")
    return result, notes


def _parent(doc: dict[str, Any] | None, path: list[str]) -> dict[str, Any] | None:
    node: Any = doc
    for part in path[:-1]:
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node if isinstance(node, dict) else None
