"""Model-level fallback: which catalog entry a served model is, the chain it falls back along,
and the recent latency of each model for latency fallback.

- A catalog entry's `fallback: [next, ...]` lists the models to try, in order, when every engine
  of the primary fails before its first byte (gateway/attempts.py moves along the list).
- With `router.latency_fallback_p95_seconds` / FLOCK_LATENCY_P95_SECONDS above 0, a primary whose
  recent p95 time to first token is above it has a faster model of its chain tried first.

Everything here is in-process and costs no I/O per request: the catalog index is rebuilt by the
router at most every few seconds, and latencies are a small rolling window per model."""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Iterable
from pathlib import PurePosixPath

from catalog.schema import Entry

LATENCY_SAMPLES = 50  # the most recent answers kept per model
LATENCY_MAX_AGE = 300.0  # seconds; older samples no longer say anything about the model
LATENCY_MIN_SAMPLES = 3  # fewer than this and a model's p95 is unknown


def _normal(name: str) -> str:
    name = name.strip().lower()
    if name.endswith(":latest"):
        name = name[: -len(":latest")]
    if name.endswith(".gguf"):
        name = PurePosixPath(name).name[: -len(".gguf")]
    return name


class CatalogIndex:
    """Catalog entries by every name an engine may serve them under: the entry id, and its
    Ollama tag, vLLM/MLX repository and GGUF file."""

    def __init__(self, entries: Iterable[Entry] = (), source: object = None) -> None:
        self.source = source  # the catalog it was built from, to tell when to build anew
        self.entries: dict[str, Entry] = {}
        self._names: dict[str, Entry] = {}
        for entry in entries:
            self.entries[entry.id] = entry
            self._names.setdefault(_normal(entry.id), entry)
        for entry in self.entries.values():
            for name in _source_names(entry):
                self._names.setdefault(_normal(name), entry)

    def entry_of(self, model: str) -> Entry | None:
        """The catalog entry a model name (the caller's or an engine's) stands for."""
        return self._names.get(_normal(model)) if model else None

    def capabilities(self, model: str) -> tuple[str, ...]:
        entry = self.entry_of(model)
        return tuple(entry.capabilities) if entry else ()


def _source_names(entry: Entry) -> list[str]:
    sources = entry.sources
    names = [n for n in (sources.ollama, sources.vllm, sources.mlx) if n]
    if sources.ollama and ":" not in sources.ollama:
        names.append(sources.ollama + ":latest")
    if sources.llamacpp is not None and sources.llamacpp.file:
        names.append(sources.llamacpp.file)
    return names


# --- latency --------------------------------------------------------------------------------------


class LatencyWindow:
    """Time to first token of each model's recent answers (a non-streamed answer's first token
    arrives with the whole answer), kept per model in this process."""

    def __init__(self) -> None:
        self._samples: dict[str, deque[tuple[float, float]]] = {}

    def clear(self) -> None:
        self._samples.clear()

    def note(self, model: str, seconds: float, *, now: float | None = None) -> None:
        if not model or seconds < 0:
            return
        window = self._samples.get(model)
        if window is None:
            window = self._samples[model] = deque(maxlen=LATENCY_SAMPLES)
        window.append((time.monotonic() if now is None else now, seconds))

    def p95(self, model: str, *, now: float | None = None) -> float | None:
        """The model's recent p95, or None when too few recent answers say."""
        window = self._samples.get(model)
        if not window:
            return None
        oldest = (time.monotonic() if now is None else now) - LATENCY_MAX_AGE
        while window and window[0][0] < oldest:
            window.popleft()
        if len(window) < LATENCY_MIN_SAMPLES:
            return None
        values = sorted(seconds for _, seconds in window)
        return values[min(len(values) - 1, math.ceil(0.95 * len(values)) - 1)]


latencies = LatencyWindow()


def latency_order(groups: list[list], threshold: float, window: LatencyWindow = latencies) -> list[list]:
    """`groups` (the primary's candidates, then each fallback's) with a faster fallback moved to
    the front when the primary's recent p95 is above `threshold`. A fallback counts as faster when
    its own p95 is under the threshold, or unknown (it gets tried, and so measured)."""
    if threshold <= 0 or len(groups) < 2 or not groups[0]:
        return groups
    slow = window.p95(groups[0][0].model)
    if slow is None or slow <= threshold:
        return groups
    for index, group in enumerate(groups[1:], start=1):
        p95 = window.p95(group[0].model)
        if p95 is None or p95 < min(threshold, slow):
            return [group, *groups[:index], *groups[index + 1:]]
    return groups
