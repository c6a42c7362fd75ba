"""Terminal output for the cluster commands: ✔/✖ lines, coloured only on a terminal and never
when NO_COLOR or FLOCK_NO_COLOR is set."""

from __future__ import annotations

import os
from typing import IO

_CODES = {"green": "32", "red": "31", "yellow": "33", "bold": "1", "dim": "2", "cyan": "36"}


def colour_enabled(stream: IO[str]) -> bool:
    if os.environ.get("NO_COLOR") or os.environ.get("FLOCK_NO_COLOR"):
        return False
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


class Console:
    def __init__(self, out: IO[str]) -> None:
        # `out` is a command's self.stdout, so output stays capturable by call_command.
        self.out = out
        self.colour = colour_enabled(out)

    def _write(self, text: str) -> None:
        self.out.write(text)
        self.out.flush()  # a pipe would hold progress lines back until exit

    def paint(self, text: str, colour: str) -> str:
        return f"\033[{_CODES[colour]}m{text}\033[0m" if self.colour else text

    def line(self, text: str = "") -> None:
        self._write(text)

    def ok(self, text: str) -> None:
        self._write(f"{self.paint('✔', 'green')} {text}")

    def fail(self, text: str) -> None:
        self._write(f"{self.paint('✖', 'red')} {text}")

    def warn(self, text: str) -> None:
        self._write(f"{self.paint('!', 'yellow')} {text}")

    def step(self, text: str) -> None:
        self._write(f"{self.paint('…', 'dim')} {text}")

    def hint(self, text: str) -> None:
        self._write(f"    {self.paint(text, 'dim')}")


def table(rows: list[dict], columns: list[tuple[str, str]]) -> str:
    """Rows as a plain text table; `columns` is [(key, heading), ...]."""
    cells = [[heading for _, heading in columns]]
    cells += [["" if row.get(key) is None else str(row.get(key)) for key, _ in columns]
              for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(columns))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in cells]
    return "\n".join(lines)
