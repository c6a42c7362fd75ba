"""What `model add SPEC` would do, without doing it: which model, which node, which engine, from
which source, how big, whether it fits, and how long it should take. `--dry-run` prints this;
`model add` carries it out (services.model_add)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from catalog import hardware, selectors
from catalog.errors import BadSpec, NoNode, NoSource, UnknownModel
from catalog.schema import Entry
from catalog.suggest import suggest
from cluster.models import Node

_HF = re.compile(r"^(?P<repo>[A-Za-z0-9][\w.-]*/[A-Za-z0-9][\w.-]*)"
                 r"(?::(?P<quant>[A-Za-z0-9_.-]+)|/(?P<file>.+\.gguf))?$")
_TAG = re.compile(r"^[a-z0-9][a-z0-9._/-]*(:[A-Za-z0-9._-]+)?$")
ENGINE_LABELS = {"ollama": "Ollama", "vllm": "vLLM", "mlx": "MLX-LM", "llamacpp": "llama.cpp"}


@dataclass(frozen=True)
class Wanted:
    """The model a spec names: a catalog entry, or an ad-hoc hf:/ollama:/file: model."""

    spec: str
    model_id: str
    name: str
    sources: dict[str, Any]
    entry: Entry | None = None
    size_bytes: int | None = None

    @property
    def ram_gb(self) -> float:
        return self.entry.hardware.min_ram_gb if self.entry else 0.0

    @property
    def vram_gb(self) -> float:
        return self.entry.hardware.min_vram_gb if self.entry else 0.0

    @property
    def capabilities(self) -> list[str]:
        return list(self.entry.capabilities) if self.entry else []


def wanted_resolve(spec: str) -> Wanted:
    """Parses `ID | hf:OWNER/REPO[:QUANT|/FILE.gguf] | ollama:TAG | file:PATH`."""
    spec = spec.strip()
    scheme, sep, rest = spec.partition(":")
    if sep and scheme == "ollama":
        if not _TAG.match(rest):
            raise BadSpec(f"{spec!r}: expected ollama:NAME[:TAG], e.g. ollama:llama3.2:1b")
        return Wanted(spec, rest, rest, {"ollama": rest})
    if sep and scheme == "hf":
        return _hf(spec, rest)
    if sep and scheme == "file":
        return _file(spec, rest)
    entry = selectors.entry_get(spec)
    if entry is None:
        close = suggest(spec, selectors.known_ids())
        hint = f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else \
            "; see `manage.py model search`"
        raise UnknownModel(f"unknown model {spec!r}{hint}", close)
    sources = entry.sources.model_dump(exclude_none=True)
    return Wanted(spec, entry.id, entry.name, sources, entry, entry.size_bytes)


def _hf(spec: str, rest: str) -> Wanted:
    found = _HF.match(rest)
    if not found:
        raise BadSpec(f"{spec!r}: expected hf:OWNER/REPO, hf:OWNER/REPO:QUANT or "
                      "hf:OWNER/REPO/FILE.gguf")
    repo, quant, file = found.group("repo"), found.group("quant"), found.group("file")
    tag = f"hf.co/{repo}" + (f":{quant}" if quant else "")
    gguf = {"repo": repo, "file": file, "quant": quant or "Q4_K_M"}
    return Wanted(spec, tag, repo, {"ollama": None if file else tag, "vllm": repo, "mlx": repo,
                                    "llamacpp": gguf})


def _file(spec: str, rest: str) -> Wanted:
    path = Path(rest).expanduser()
    if path.suffix != ".gguf":
        raise BadSpec(f"{spec!r}: file: takes a .gguf file")
    if not path.is_file():
        raise BadSpec(f"{spec!r}: no such file {path}")
    model_id = path.stem.lower()
    return Wanted(spec, model_id, path.name, {"llamacpp": {"path": str(path.absolute())}},
                  size_bytes=path.stat().st_size)


@dataclass(frozen=True)
class Choice:
    engine: str
    source: str  # human-readable: the tag, repo, repo/file or path
    engine_model: str
    model_id: str


def engine_choose(wanted: Wanted, node: Node) -> Choice:
    """How `node` would serve `wanted`: through its own engine when the model has a source for
    it, else through a llama-server started for it when there is a GGUF."""
    src = wanted.sources
    kind = node.engine
    if kind == "ollama" and src.get("ollama"):
        return Choice("ollama", src["ollama"], src["ollama"], wanted.model_id)
    if kind in ("vllm", "mlx") and src.get(kind):
        model_id = src[kind] if wanted.entry is None else wanted.model_id
        return Choice(kind, src[kind], src[kind], model_id)
    gguf = src.get("llamacpp")
    if gguf:
        return Choice("llamacpp", _gguf_label(gguf), wanted.model_id, wanted.model_id)
    have = ", ".join(k for k, v in src.items() if v) or "none"
    raise NoSource(f"{wanted.model_id} cannot be served by node {node.name}'s engine "
                   f"({ENGINE_LABELS.get(kind, kind or 'none')}); its sources: {have}")


def _gguf_label(gguf: dict) -> str:
    if gguf.get("package"):
        return f"package {gguf['package']}"
    if gguf.get("path"):
        return str(gguf["path"])
    return f"{gguf['repo']}/{gguf.get('file') or '(' + gguf.get('quant', 'Q4_K_M') + ')'}"


def node_choose(wanted: Wanted, node_name: str | None) -> Node:
    """The named node, or the routable node where the model fits with the most free RAM (the
    leader on a tie)."""
    from cluster.selectors import node_by_name, nodes_all, nodes_routable

    if node_name:
        node = node_by_name(node_name)
        if node is None:
            names = [n.name for n in nodes_all()]
            close = suggest(node_name, names)
            hint = f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else \
                f"; nodes: {', '.join(names) or 'none'}"
            raise NoNode(f"no node named {node_name!r}{hint}")
        return node
    nodes = list(nodes_routable())
    if not nodes:
        raise NoNode("no node is ready to host a model; start Flock with `manage.py up` "
                     "(or join a worker) first")
    usable = [n for n in nodes if _servable(wanted, n)] or nodes
    fitting = [n for n in usable if _fit(wanted, n).ok] or usable
    return max(fitting, key=lambda n: ((n.hardware or {}).get("ram_available_bytes", 0),
                                       n.role == "leader"))


def _servable(wanted: Wanted, node: Node) -> bool:
    try:
        engine_choose(wanted, node)
    except NoSource:
        return False
    return True


def _fit(wanted: Wanted, node: Node, engine: str | None = None) -> hardware.Fit:
    return hardware.fit_check(wanted.ram_gb, wanted.vram_gb, node.hardware or {},
                              engine or node.engine)


@dataclass(frozen=True)
class Plan:
    wanted: Wanted
    node: Node
    choice: Choice
    fit: hardware.Fit
    size_bytes: int | None
    eta_seconds: float | None
    sharding: dict | None = None
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {
            "model": self.choice.model_id, "spec": self.wanted.spec, "name": self.wanted.name,
            "catalog": self.wanted.entry is not None, "node": self.node.name,
            "engine": self.choice.engine, "source": self.choice.source,
            "size_bytes": self.size_bytes, "eta_seconds": self.eta_seconds,
            "fit": self.fit.as_dict(), "sharding": self.sharding, "notes": self.notes,
        }


def plan(spec: str, *, node_name: str | None = None) -> Plan:
    wanted = wanted_resolve(spec)
    entry = wanted.entry
    sharding = entry.sharding.model_dump() if entry and entry.sharding_required else None
    node = node_choose(wanted, node_name)
    choice = engine_choose(wanted, node)
    fit = _fit(wanted, node, choice.engine)
    notes = list(fit.notes)
    if choice.engine == "llamacpp" and node.engine != "llamacpp":
        notes.append(f"served by a llama-server started for it (the node's engine is "
                     f"{node.engine or 'none'})")
    if choice.engine in ("vllm", "mlx"):
        notes.append(f"{ENGINE_LABELS[choice.engine]} serves the model it was started with; "
                     "Flock checks that it serves this one")
    size = wanted.size_bytes
    local_copy = (wanted.sources.get("llamacpp") or {}).get("path") and choice.engine == "llamacpp"
    rate = 500_000_000 if local_copy else selectors.pull_rate_bps()
    eta = size / rate if size else None
    return Plan(wanted, node, choice, fit, size, eta, sharding, notes)
