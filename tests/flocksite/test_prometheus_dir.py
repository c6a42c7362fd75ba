"""The shared metrics directory: fresh when no process that used it is alive, and otherwise
keeping the counters of processes that stopped but not their live gauges."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from flocksite import prometheus_dir

DEAD = 4_000_000  # above pid_max: never a live process


@pytest.fixture
def isolated(monkeypatch):
    """prometheus_dir_prepare points this process at another directory: undo that afterwards."""
    monkeypatch.setenv(prometheus_dir.ENV, os.environ.get(prometheus_dir.ENV, ""))
    monkeypatch.setitem(prometheus_dir._state, "dir", prometheus_dir._state["dir"])


@pytest.fixture
def live_pid():
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    yield proc.pid
    proc.kill()
    proc.wait()


def test_a_directory_no_live_process_uses_starts_empty(tmp_path, isolated):
    directory = tmp_path / "metrics"
    directory.mkdir()
    for name in (f"counter_{DEAD}.db", f"gauge_livesum_{DEAD}.db", f".pid-{DEAD}"):
        (directory / name).write_bytes(b"x")
    assert prometheus_dir.prometheus_dir_prepare(tmp_path) == directory
    assert sorted(p.name for p in directory.iterdir()) == [".lock", f".pid-{os.getpid()}"]
    assert os.environ[prometheus_dir.ENV] == str(directory)


def test_beside_a_live_process_only_the_dead_ones_live_gauges_go(tmp_path, isolated, live_pid):
    directory = tmp_path / "metrics"
    directory.mkdir()
    kept = [f"counter_{DEAD}.db", f"histogram_{DEAD}.db", f".pid-{live_pid}",
            f"counter_{live_pid}.db", f"gauge_livesum_{live_pid}.db"]
    gone = [f"gauge_livesum_{DEAD}.db", f".pid-{DEAD}", f"gauge_livesum_{os.getpid()}.db"]
    for name in kept + gone:
        (directory / name).write_bytes(b"x")
    prometheus_dir.prometheus_dir_prepare(tmp_path)
    names = {p.name for p in directory.iterdir()}
    assert set(kept) <= names
    assert not set(gone) & names
