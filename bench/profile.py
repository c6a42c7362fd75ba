"""`--profile`: samples Flock with py-spy while the load generator drives it (non-streaming at
concurrency 32, then 16 streams), and writes the hottest frames, by file:line, beside the table.

py-spy is not a dependency: install it where the bench runs (`.venv/bin/pip install py-spy`)."""

from __future__ import annotations

import shutil
import subprocess
import sys
import threading
from collections import Counter
from pathlib import Path

from bench import scenarios
from bench.paths import PROJECT, Target

OURS = ("gateway/", "accounts/", "flocksite/", "cluster/", "catalog/")


def py_spy() -> str | None:
    beside = Path(sys.executable).parent / "py-spy"
    return str(beside) if beside.exists() else shutil.which("py-spy")


def record(target: Target, spec: dict, out: Path, *, seconds: float) -> Path:
    """Samples every Flock process while `spec` runs; returns the collapsed stacks."""
    tool = py_spy()
    if tool is None:
        raise RuntimeError("--profile needs py-spy: .venv/bin/pip install py-spy")
    raw = out.with_suffix(".folded")
    spies = [subprocess.Popen([tool, "record", "--pid", str(pid), "--duration", str(int(seconds)),
                               "--rate", "100", "--gil", "--format", "raw",
                               "--output", f"{raw}.{pid}"], stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL) for pid in target.pids]
    load = threading.Thread(target=scenarios.loadgen, args=(target, spec),
                            kwargs={"timeout": seconds + 120})
    load.start()
    for spy in spies:
        spy.wait(seconds + 60)
    load.join()
    with raw.open("w") as merged:
        for pid in target.pids:
            part = Path(f"{raw}.{pid}")
            if part.exists():
                merged.write(part.read_text())
                part.unlink()
    return raw


def _frames(line: str) -> tuple[list[str], int]:
    stack, _, count = line.rstrip().rpartition(" ")
    return [f.strip() for f in stack.split(";") if f.strip()], int(count)


def _short(frame: str, *, line: bool = True) -> str:
    name, _, where = frame.partition(" (")
    where = where.rstrip(")")
    for marker in ("site-packages/", "/lib/python3.11/", str(PROJECT) + "/", "flock-src/"):
        if marker in where:
            where = where.split(marker, 1)[1]
    if not line:
        where = where.rsplit(":", 1)[0]
    return f"{name} ({where})"


def _hop_site(frames: list[str]) -> str:
    """The caller of the outermost thread hop in a stack, if the sample is inside one."""
    for i, frame in enumerate(frames):
        if frame.startswith(("SyncToAsync.__call__ ", "BaseEventLoop.run_in_executor ")) and i:
            return _short(frames[i - 1])
    return ""


def summarise(raw: Path, title: str, top: int = 25) -> str:
    """The lines that cost most by themselves (self), and the functions that cost most with
    what they call (inclusive), in shares of the samples taken while holding the GIL."""
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    hops: Counter[str] = Counter()
    total = 0
    for line in raw.read_text().splitlines():
        if not line.strip():
            continue
        frames, count = _frames(line)
        if not frames:
            continue
        total += count
        own[_short(frames[-1])] += count
        for frame in {_short(f, line=False) for f in frames}:
            inclusive[frame] += count
        hop = _hop_site(frames)
        if hop:
            hops[hop] += count
    lines = [f"## {title}", "", f"{total} samples holding the GIL.", "", "Self, by line:", ""]
    lines += [f"- {n / total:5.1%}  {frame}" for frame, n in own.most_common(top)]
    lines += ["", "Inclusive, Flock's own functions:", ""]
    ours = [(f, n) for f, n in inclusive.most_common()
            if any(f"({p}" in f for p in OURS)]
    lines += [f"- {n / total:5.1%}  {frame}" for frame, n in ours[:top]]
    lines += ["", "Inclusive, library functions:", ""]
    libs = [(f, n) for f, n in inclusive.most_common()
            if not any(f"({p}" in f for p in OURS) and n < 0.85 * total]  # not the loop itself
    lines += [f"- {n / total:5.1%}  {frame}" for frame, n in libs[:top]]
    lines += ["", "Thread hops (sync_to_async, run_in_executor) by the line that asks; the event "
              "loop's side only (waiting for the GIL to come back does not show here):", ""]
    lines += [f"- {n / total:5.1%}  {frame}" for frame, n in hops.most_common(top)]
    return "\n".join(lines) + "\n"


def profile_flock(flock: Target, out_dir: Path, *, seconds: float, stream_tokens: int) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    parts = []
    for name, spec in (
        ("rps", {"body": scenarios.chat_body(), "concurrency": 32, "warmup": 0,
                 "duration": seconds}),
        ("stream", {"body": scenarios.chat_body("bench-stream", stream_tokens, stream=True),
                    "mode": "stream", "concurrency": 16, "warmup": 0, "duration": seconds}),
    ):
        raw = record(flock, spec, out_dir / f"flock-{name}", seconds=seconds)
        parts.append(summarise(raw, f"Flock under the {name} scenario"))
    report = out_dir / "flock-profile.md"
    report.write_text("# Where Flock spends its CPU (py-spy)\n\n" + "\n".join(parts))
    return report
