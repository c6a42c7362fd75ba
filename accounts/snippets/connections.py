"""`connect --write` and `disconnect` on disk: merge a snippet's config into the tool's own
file (backing the original up next to it), record what was written in
$FLOCK_DATA_DIR/connections.json, and later take exactly that back out.

When the file is still as Flock wrote it, disconnect puts the backup back, byte for byte. When
the user has edited it since, only Flock's own keys are removed and their edits stay. The
record holds paths and fingerprints, never a key."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from accounts.snippets import formats
from accounts.snippets.base import Snippet
from accounts.snippets.merge import merge, unmerge

RECORDS_FILE = "connections.json"
BACKUP_SUFFIX = ".flock-backup"


class ConnectFailed(RuntimeError):
    """A connect or disconnect that cannot proceed; the message says why and what to do."""


@dataclass
class Written:
    path: Path
    backup: Path | None
    created: bool
    changed: bool
    notes: list[str] = field(default_factory=list)


@dataclass
class Removed:
    path: Path
    how: str  # restored | deleted | edited
    backup: Path | None
    notes: list[str] = field(default_factory=list)


def connections_list(*, data_dir: Path) -> list[dict[str, Any]]:
    records = _load(data_dir)
    return [{"client": name, **{k: v for k, v in rec.items() if k != "changes"}}
            for name, rec in sorted(records.items())]


def connection_write(*, snippet: Snippet, data_dir: Path, home: Path | None = None) -> Written:
    """Merges `snippet.config` into the tool's config file and records it. Connecting a client
    that is already connected first takes the earlier connection back out."""
    config = snippet.config
    if config is None:
        raise ConnectFailed(f"{snippet.title} has no config file Flock can write; follow the "
                               f"steps `connect {snippet.client}` prints")
    notes: list[str] = []
    if snippet.client in _load(data_dir):
        notes += connection_remove(client=snippet.client, data_dir=data_dir).notes
    path = config.resolve(home)
    before = path.read_bytes() if path.exists() else None
    parsed = formats.parse(before.decode() if before else "", config.format, str(path))
    merged, changes = merge(parsed.data, config.patch)
    if not changes:
        return Written(path, None, False, False, notes + ["already set up; nothing to change"])
    made_dirs = _make_parents(path)
    backup = None
    if before is not None:
        backup = _free_backup_name(path)
        shutil.copy2(path, backup)  # keeps the mode and times of the original
        if parsed.dropped_comments:
            notes.append(f"comments in the original are not carried over; {backup.name} keeps "
                         "them")
    text = formats.render(merged, config.format)
    # It now holds a key: keep the owner's bits of the original, drop group and other.
    mode = path.stat().st_mode & 0o700 | 0o600 if before is not None else 0o600
    _write_atomic(path, text.encode(), mode)
    records = _load(data_dir)
    records[snippet.client] = {
        "path": str(path), "format": config.format, "url": snippet.url,
        "written_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "sha256": hashlib.sha256(text.encode()).hexdigest(),
        "backup": str(backup) if backup else None, "created": before is None,
        "created_dirs": [str(d) for d in made_dirs], "changes": changes,
    }
    _save(data_dir, records)
    return Written(path, backup, before is None, True, notes)


def connection_remove(*, client: str, data_dir: Path) -> Removed:
    records = _load(data_dir)
    record = records.get(client)
    if record is None:
        raise ConnectFailed(f"{client} has no connection written by `connect --write`")
    path, backup = Path(record["path"]), Path(record["backup"]) if record["backup"] else None
    if backup is not None and not backup.exists():
        backup = None
    current = path.read_bytes() if path.exists() else None
    untouched = current is not None and hashlib.sha256(current).hexdigest() == record["sha256"]
    if current is None:
        how, notes = _put_back(path, backup, record), [f"{path} was already gone"]
    elif untouched and (record["created"] or backup is not None):
        how, notes = _put_back(path, backup, record), []
    else:
        how, notes = _take_out(path, current, backup, record)
    for directory in reversed(record.get("created_dirs", [])):
        try:
            Path(directory).rmdir()  # only when empty: anything the user put there stays
        except OSError:
            pass
    del records[client]
    _save(data_dir, records)
    return Removed(path, how, backup if how == "edited" else None, notes)


def _put_back(path: Path, backup: Path | None, record: dict[str, Any]) -> str:
    if record["created"]:
        path.unlink(missing_ok=True)
        return "deleted"
    if backup is None:
        return "deleted"
    os.replace(backup, path)
    return "restored"


def _take_out(path: Path, current: bytes, backup: Path | None,
              record: dict[str, Any]) -> tuple[str, list[str]]:
    fmt = record["format"]
    data = formats.parse(current.decode(), fmt, str(path)).data
    original = formats.parse(backup.read_text(), fmt, str(backup)).data if backup else None
    remaining, notes = unmerge(data, record["changes"], original)
    if record["created"] and not remaining:
        path.unlink()
        return "deleted", notes
    _write_atomic(path, formats.render(remaining, fmt).encode(), path.stat().st_mode & 0o777)
    if backup is not None:
        notes.append(f"the file was edited after connect, so only Flock's settings were taken "
                     f"out; the original is still in {backup}")
    return "edited", notes


def _make_parents(path: Path) -> list[Path]:
    missing = [p for p in reversed(path.parents) if not p.exists()]
    path.parent.mkdir(parents=True, exist_ok=True)
    return missing


def _free_backup_name(path: Path) -> Path:
    candidate = path.with_name(path.name + BACKUP_SUFFIX)
    if not candidate.exists():
        return candidate
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%f")
    return path.with_name(f"{path.name}{BACKUP_SUFFIX}-{stamp}")


def _write_atomic(path: Path, data: bytes, mode: int) -> None:
    partial = path.with_name(f".{path.name}.flock-{os.getpid()}")
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        os.fchmod(fd, mode)
        os.write(fd, data)
    finally:
        os.close(fd)
    os.replace(partial, path)


def _load(data_dir: Path) -> dict[str, Any]:
    path = Path(data_dir) / RECORDS_FILE
    if not path.exists():
        return {}
    try:
        data = json.loads(path.read_text())
        return dict(data["connections"])
    except (ValueError, KeyError, TypeError):
        raise ConnectFailed(f"{path} is not a connections file Flock wrote; move it aside "
                               "and try again") from None


def _save(data_dir: Path, records: dict[str, Any]) -> None:
    Path(data_dir).mkdir(parents=True, exist_ok=True)
    text = json.dumps({"version": 1, "connections": records}, indent=2) + "\n"
    _write_atomic(Path(data_dir) / RECORDS_FILE, text.encode(), 0o600)
