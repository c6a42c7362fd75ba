from __future__ import annotations

from io import StringIO

from catalog.suggest import damerau_levenshtein, suggest
from catalog.terminal import ProgressBar, human_bytes, human_duration, pick


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_the_bar_shows_bytes_rate_and_eta():
    clock, out = Clock(), StringIO()
    bar = ProgressBar(out, "pulling qwen3-8b", tty=False, clock=clock)
    bar.update(0, 5_200_000_000, "pulling 6a0746a1ec1a")
    clock.now += 2
    bar.update(170_000_000, 5_200_000_000, "pulling 6a0746a1ec1a")
    line = bar.last_line
    assert "170.0 MB/5.2 GB" in line and "85.0 MB/s" in line and "ETA 0:59" in line
    assert "█" in bar.line(2_600_000_000, 5_200_000_000, "")


def test_off_a_terminal_it_prints_at_most_a_line_a_second_on_a_terminal_it_redraws():
    clock, out = Clock(), StringIO()
    bar = ProgressBar(out, "x", tty=False, clock=clock)
    for step in range(10):
        clock.now += 0.1
        bar.update(step, 10, "s")
    assert out.getvalue().count("\n") == 1
    tty = StringIO()
    ProgressBar(tty, "x", tty=True, clock=clock).update(1, 10, "s")
    assert tty.getvalue().startswith("\r\033[K")


def test_sizes_and_durations_read_naturally():
    assert human_bytes(4_700_000_000) == "4.7 GB" and human_bytes(512) == "512 B"
    assert human_duration(41) == "0:41" and human_duration(3723) == "1:02:03"
    assert human_duration(None) == "?"


def test_the_picker_filters_as_you_type_and_picks_by_number():
    items = [("qwen3-8b", "5.2 GB"), ("qwen3-14b", "9.3 GB"), ("llama-3.2-1b", "1.3 GB")]
    answers = iter(["qwen", "2"])
    out = StringIO()
    assert pick(items, lambda prompt: next(answers), out) == "qwen3-14b"
    assert "matching qwen (2 of 3)" in out.getvalue()
    answers = iter(["llama", ""])
    assert pick(items, lambda prompt: next(answers), StringIO()) == "llama-3.2-1b"
    assert pick(items, lambda prompt: None, StringIO()) is None


def test_damerau_levenshtein_counts_a_swap_as_one_edit():
    assert damerau_levenshtein("serach", "search") == 1
    assert damerau_levenshtein("ls", "ls") == 0
    assert suggest("remvoe", ["search", "info", "ls", "add", "remove"]) == ["remove"]
    assert suggest("xyz", ["search"]) == []
