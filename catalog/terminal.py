"""Terminal output for `manage.py model`: sizes, tables, the pull progress bar and the picker.

The bar redraws one line on a terminal; elsewhere (pipes, logs, CI) it prints a line at most
once a second, so progress still reaches whoever reads the output."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Sequence
from typing import IO

BAR_WIDTH = 24
PLAIN_INTERVAL = 1.0
RATE_WINDOW = 5.0  # seconds of samples behind the bytes/s figure
PICK_SHOWN = 15


def human_bytes(count: float | None) -> str:
    if count is None:
        return "?"
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if abs(count) < 1000 or unit == "TB":
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1000
    return f"{count:.1f} TB"


def human_duration(seconds: float | None) -> str:
    if seconds is None or seconds != seconds or seconds == float("inf"):
        return "?"
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    cells = [[str(c) for c in headers]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()
                     for row in cells)


class ProgressBar:
    """`pulling qwen3-8b [██████░░░░] 1.2 GB/5.2 GB · 85.0 MB/s · ETA 0:47`"""

    def __init__(self, out: IO[str], label: str, *, tty: bool,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.out, self.label, self.tty, self.clock = out, label, tty, clock
        self.samples: deque[tuple[float, int]] = deque()
        self.started = clock()
        self._printed = 0.0
        self._status = ""
        self.last_line = ""

    def rate(self) -> float | None:
        if len(self.samples) < 2:
            return None
        (t0, b0), (t1, b1) = self.samples[0], self.samples[-1]
        return (b1 - b0) / (t1 - t0) if t1 > t0 else None

    def line(self, done: int, total: int, status: str) -> str:
        rate = self.rate()
        if total:
            filled = int(BAR_WIDTH * min(done, total) / total)
            bar = "█" * filled + "░" * (BAR_WIDTH - filled)
            eta = (total - done) / rate if rate else None
            text = (f"{self.label} [{bar}] {human_bytes(done)}/{human_bytes(total)} · "
                    f"{human_bytes(rate) + '/s' if rate is not None else '… /s'} · "
                    f"ETA {human_duration(eta if done < total else 0)}")
        else:
            text = f"{self.label} · {status or 'starting'}"
        return text

    def update(self, done: int, total: int, status: str = "") -> None:
        now = self.clock()
        self.samples.append((now, done))
        while len(self.samples) > 2 and now - self.samples[0][0] > RATE_WINDOW:
            self.samples.popleft()
        text = self.line(done, total, status)
        self.last_line = text
        if self.tty:
            self.out.write("\r\033[K" + text)
            self.out.flush()
            return
        if now - self._printed >= PLAIN_INTERVAL or status != self._status:
            self._printed, self._status = now, status
            self.out.write(text + "\n")
            self.out.flush()

    def finish(self, message: str) -> None:
        elapsed = self.clock() - self.started
        if self.tty:
            self.out.write("\r\033[K")
        elif self.last_line:
            self.out.write(self.last_line + "\n")
        self.out.write(f"{message} in {human_duration(elapsed)}\n")
        self.out.flush()


def _filtered(items: Sequence[tuple[str, str]], words: list[str]) -> list[tuple[str, str]]:
    return [item for item in items
            if all(w in f"{item[0]} {item[1]}".lower() for w in words)]


def pick(items: Sequence[tuple[str, str]], read: Callable[[str], str | None], out: IO[str],
         *, title: str = "Pick a model") -> str | None:
    """A numbered list you narrow by typing: words filter, a number picks, Enter picks the only
    match, q or end of input gives up. `read(prompt)` returns a line or None at end of input."""
    words: list[str] = []
    while True:
        shown = _filtered(items, words)
        out.write(f"{title}{' matching ' + ' '.join(words) if words else ''} "
                  f"({len(shown)} of {len(items)}):\n")
        for number, (key, label) in enumerate(shown[:PICK_SHOWN], 1):
            out.write(f"  {number:>2}. {key:<28} {label}\n")
        if len(shown) > PICK_SHOWN:
            out.write(f"  … {len(shown) - PICK_SHOWN} more; type to narrow\n")
        answer = read("number, words to filter, or q: ")
        if answer is None or answer.strip().lower() in ("q", "quit"):
            return None
        answer = answer.strip()
        if answer.isdigit() and 1 <= int(answer) <= min(len(shown), PICK_SHOWN):
            return shown[int(answer) - 1][0]
        if not answer and len(shown) == 1:
            return shown[0][0]
        exact = [key for key, _ in items if key == answer]
        if exact:
            return exact[0]
        words = answer.lower().split() if answer else []
