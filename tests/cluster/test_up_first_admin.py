"""`up` on a terminal offers to create the first dashboard admin; in scripts it only says how."""

from __future__ import annotations

import os
import pty
import select
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from cluster.processes import free_port

ROOT = Path(__file__).resolve().parents[2]
READY = "Press Ctrl-C to stop."


class Terminal:
    """`manage.py up` with a pseudo-terminal for stdin, stdout and stderr."""

    def __init__(self, env: dict[str, str], *args: str) -> None:
        self.master, slave = pty.openpty()
        self.proc = subprocess.Popen([sys.executable, "manage.py", "up", *args], cwd=ROOT, env=env,
                                     stdin=slave, stdout=slave, stderr=slave, start_new_session=True)
        os.close(slave)
        self.seen = ""

    def expect(self, text: str, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while text not in self.seen:
            left = deadline - time.monotonic()
            assert left > 0 and self.proc.poll() is None, f"never saw {text!r}:\n{self.seen}"
            ready, _, _ = select.select([self.master], [], [], min(left, 1.0))
            if ready:
                self.seen += os.read(self.master, 4096).decode(errors="replace")

    def answer(self, prompt: str, reply: str) -> None:
        self.expect(prompt)
        self.seen = self.seen.split(prompt, 1)[1]
        os.write(self.master, reply.encode() + b"\n")

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)
        os.close(self.master)


def _staff(data_dir: Path) -> list[tuple[str, int]]:
    with sqlite3.connect(data_dir / "flock.db") as db:
        return db.execute("SELECT username, is_superuser FROM auth_user WHERE is_staff").fetchall()


def test_up_on_a_terminal_offers_to_create_the_first_admin(up_env):
    up = Terminal(up_env, "--no-engine", "--listen", f"127.0.0.1:{free_port()}")
    try:
        up.answer("No dashboard admin yet. Create one now? [Y/n]", "y")
        up.answer("Username", "ada")
        up.answer("Email address:", "")
        up.answer("Password:", "correct horse battery staple")
        up.answer("Password (again):", "correct horse battery staple")
        up.expect(READY)
        assert "(no admin yet" not in up.seen
    finally:
        up.stop()
    assert _staff(Path(up_env["FLOCK_DATA_DIR"])) == [("ada", 1)]


def test_declining_the_offer_starts_anyway_and_says_how(up_env):
    up = Terminal(up_env, "--no-engine", "--listen", f"127.0.0.1:{free_port()}")
    try:
        up.answer("Create one now? [Y/n]", "n")
        up.expect(READY)
        assert "python manage.py createsuperuser" in up.seen
    finally:
        up.stop()
    assert _staff(Path(up_env["FLOCK_DATA_DIR"])) == []


def test_without_a_terminal_up_never_asks(up_env):
    port = free_port()
    proc = subprocess.Popen([sys.executable, "manage.py", "up", "--no-engine", "--listen",
                             f"127.0.0.1:{port}"], cwd=ROOT, env=up_env, stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)
    out = ""
    try:
        for line in proc.stdout:
            out += line
            if READY in line:
                break
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(20)
    assert READY in out and "Create one now" not in out
    assert "(no admin yet: python manage.py createsuperuser)" in out
