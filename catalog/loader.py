"""Finds the catalog's YAML files and loads them into validated entries.

Directories are searched in the Go original's order: every directory in FLOCK_CATALOG_DIR, the
catalog shipped with this app, `<data_dir>/catalog`, `/usr/local/share/flock/catalog`,
`/usr/share/flock/catalog`. An id found in an earlier directory wins over the same id later, so a
user's directory can override a shipped entry or add new ones. A broken file is reported (file and
field) and skipped; it never stops the other entries loading. No I/O happens at import."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from pydantic import ValidationError

from catalog.schema import Entry

BUILTIN_DIR = Path(__file__).resolve().parent / "entries"
SYSTEM_DIRS = (Path("/usr/local/share/flock/catalog"), Path("/usr/share/flock/catalog"))


@dataclass(frozen=True)
class Problem:
    file: Path
    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.file}: {self.field}: {self.message}"


@dataclass(frozen=True)
class Catalog:
    entries: dict[str, Entry] = field(default_factory=dict)
    origins: dict[str, Path] = field(default_factory=dict)
    problems: tuple[Problem, ...] = ()
    dirs: tuple[Path, ...] = ()

    def get(self, model_id: str) -> Entry | None:
        return self.entries.get(model_id)

    def __len__(self) -> int:
        return len(self.entries)


def search_dirs(catalog_dirs: tuple[Path, ...] = (), data_dir: Path | None = None) -> tuple[Path, ...]:
    dirs = [*catalog_dirs, BUILTIN_DIR]
    if data_dir is not None:
        dirs.append(Path(data_dir) / "catalog")
    dirs.extend(SYSTEM_DIRS)
    unique: list[Path] = []
    for directory in dirs:
        if directory not in unique:
            unique.append(directory)
    return tuple(unique)


def _files(dirs: tuple[Path, ...]) -> list[Path]:
    found = []
    for directory in dirs:
        if directory.is_dir():
            found.extend(sorted(p for p in directory.iterdir()
                                if p.suffix in (".yaml", ".yml") and p.is_file()))
    return found


def _field(loc: tuple) -> str:
    return ".".join(str(part) for part in loc) or "(entry)"


def load_file(path: Path) -> tuple[Entry | None, list[Problem]]:
    """One file: the entry, or the problems that keep it out."""
    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, UnicodeDecodeError) as exc:
        return None, [Problem(path, "(file)", f"cannot be read: {exc}")]
    except yaml.YAMLError as exc:
        where = getattr(exc, "problem_mark", None)
        line = f" at line {where.line + 1}" if where is not None else ""
        return None, [Problem(path, "(file)", f"is not valid YAML{line}")]
    if not isinstance(data, dict):
        return None, [Problem(path, "(file)", "must hold one mapping (a model entry)")]
    try:
        entry = Entry.model_validate(data)
    except ValidationError as exc:
        return None, [Problem(path, _field(err["loc"]), err["msg"]) for err in exc.errors()]
    if entry.id != path.stem:
        return None, [Problem(path, "id", f"{entry.id!r} must match the file name {path.stem!r}")]
    return entry, []


def _load(dirs: tuple[Path, ...]) -> Catalog:
    entries: dict[str, Entry] = {}
    origins: dict[str, Path] = {}
    problems: list[Problem] = []
    for path in _files(dirs):
        entry, found = load_file(path)
        problems.extend(found)
        if entry is not None and entry.id not in entries:
            entries[entry.id] = entry
            origins[entry.id] = path
    for entry in entries.values():
        for index, other in enumerate(entry.fallback):
            if other not in entries:
                problems.append(Problem(origins[entry.id], f"fallback.{index}",
                                        f"names {other!r}, which is not in the catalog"))
    return Catalog(dict(sorted(entries.items())), origins, tuple(problems), dirs)


_cache: dict[tuple, Catalog] = {}
_lock = threading.Lock()


def _signature(dirs: tuple[Path, ...]) -> tuple:
    stamps = []
    for path in _files(dirs):
        try:
            stat = path.stat()
        except OSError:
            continue
        stamps.append((str(path), stat.st_mtime_ns, stat.st_size))
    return dirs, tuple(stamps)


def load(dirs: tuple[Path, ...]) -> Catalog:
    """The catalog in `dirs`; reloaded only when a file there changed."""
    key = _signature(dirs)
    with _lock:
        found = _cache.get(key)
        if found is None:
            found = _load(dirs)
            _cache.clear()  # one live catalog per process is enough
            _cache[key] = found
        return found


def load_configured() -> Catalog:
    """The catalog for this process's configuration (settings.FLOCK)."""
    from django.conf import settings

    cfg = settings.FLOCK
    return load(search_dirs(cfg.catalog_dirs, cfg.data_dir))
