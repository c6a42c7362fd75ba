"""Prometheus multi-process mode: every gateway process (several daphne processes may serve one
machine) writes its metrics to memory-mapped files in `<data_dir>/metrics`, and `/metrics`,
whichever process answers it, sums them.

prometheus_client picks its value class when it is first imported, so `prometheus_dir_prepare`
runs from the settings module, before anything imports it. Files of processes that died stay, so
counters summed across processes never go backwards while others run; the directory starts empty
when no process that used it is alive any more (a fresh start of the whole gateway)."""

from __future__ import annotations

import fcntl
import logging
import os
import re
import sys
from pathlib import Path

ENV = "PROMETHEUS_MULTIPROC_DIR"
_FILE = re.compile(r"^(?P<kind>[a-z_]+)_(?P<pid>\d+)\.db$")
_MARKER = re.compile(r"^\.pid-(?P<pid>\d+)$")
log = logging.getLogger("flock")
_state: dict[str, Path | None] = {"dir": None}


def metrics_dir(data_dir: Path) -> Path:
    return Path(data_dir) / "metrics"


def multiprocess_dir() -> Path | None:
    """The shared directory when this process runs in multi-process mode, else None."""
    return _state["dir"]


def pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, someone else's
        return True
    return True


def _pids(directory: Path) -> set[int]:
    found = set()
    for path in directory.iterdir():
        match = _FILE.match(path.name) or _MARKER.match(path.name)
        if match:
            found.add(int(match["pid"]))
    return found


def prometheus_dir_prepare(data_dir: Path) -> Path | None:
    """Points prometheus_client at `<data_dir>/metrics` for this process (overriding an
    inherited PROMETHEUS_MULTIPROC_DIR, which would belong to another data dir). Returns the
    directory, or None when prometheus_client was imported too early to switch modes."""
    if "prometheus_client.values" in sys.modules and not os.environ.get(ENV):
        log.warning("prometheus_client was imported before the settings; /metrics will show "
                    "this process only")
        return None
    directory = metrics_dir(data_dir)
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    with open(directory / ".lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            others = {pid for pid in _pids(directory) if pid != os.getpid() and pid_alive(pid)}
            if not others:
                _wipe(directory)
            else:
                dead_processes_forget(directory)
                # An earlier process with our pid left its live gauges: they are not ours.
                for path in directory.glob(f"gauge_live*_{os.getpid()}.db"):
                    path.unlink(missing_ok=True)
            (directory / f".pid-{os.getpid()}").touch()
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
    first = "prometheus_client.values" not in sys.modules
    os.environ[ENV] = str(directory)
    _state["dir"] = directory
    if first:
        _value_class_install()
    return directory


_pid = [os.getpid()]
os.register_at_fork(after_in_child=lambda: _pid.__setitem__(0, os.getpid()))


def _own_pid() -> int:
    return _pid[0]


def _value_class_install() -> None:
    """prometheus_client asks the kernel for the process id on every counter bump, to notice a
    fork; on a virtual machine that system call was an eighth of a request's CPU. The id is
    kept here instead and renewed in the child of every fork. Done once, right after the first
    import, before any metric exists (metrics made earlier would keep the other value class,
    and two of them would write the same files)."""
    from prometheus_client import values

    values.ValueClass = values.MultiProcessValue(process_identifier=_own_pid)


def _wipe(directory: Path) -> None:
    for path in directory.iterdir():
        if _FILE.match(path.name) or _MARKER.match(path.name):
            path.unlink(missing_ok=True)


def dead_processes_forget(directory: Path) -> None:
    """Drops the live gauges (in-flight requests, buffer depth) of processes that are gone;
    their counters and histograms stay in the sums."""
    for path in directory.iterdir():
        match = _FILE.match(path.name)
        if match and match["kind"].startswith("gauge_live") and not pid_alive(int(match["pid"])):
            path.unlink(missing_ok=True)
        marker = _MARKER.match(path.name)
        if marker and not pid_alive(int(marker["pid"])):
            path.unlink(missing_ok=True)
