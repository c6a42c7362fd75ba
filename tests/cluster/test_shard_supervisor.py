"""The shard supervisor: readiness by TCP probe, restarts after 1, 2, 4, 8, 16 s, then a visible
crashloop; and a shard process that keeps crashing, seen through `shard ls`."""

from __future__ import annotations

import io
import os
import signal
import stat
import sys
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from cluster import processes
from cluster import supervisor as supervisor_module
from cluster.models import Node, Shard, ShardRole, ShardState
from cluster.supervisor import BACKOFF, ProcessSpec, StartFailed, Supervisor
from tests.cluster.shard_helpers import alive, cluster_nodes, node_queues_served, wait_for

FAKE = Path(__file__).resolve().parent.parent / "fakes" / "tcp_server.py"
FAST = (0.05, 0.1, 0.2, 0.4, 0.8)


def spec(tmp_path: Path, *extra: str, key: str = "fake") -> ProcessSpec:
    port = processes.free_port()
    return ProcessSpec(key=key, argv=[sys.executable, str(FAKE), "-H", "127.0.0.1", "-p", str(port),
                                      *extra],
                       host="127.0.0.1", port=port, log_path=tmp_path / f"{key}.log",
                       ready_timeout=10)


@pytest.fixture
def sup():
    found = Supervisor()
    yield found
    found.shutdown()


def test_the_backoff_is_one_two_four_eight_sixteen_seconds():
    assert BACKOFF == (1.0, 2.0, 4.0, 8.0, 16.0)
    assert Supervisor().backoff == BACKOFF


def test_a_killed_process_is_restarted_after_a_second_and_probed_ready(sup, tmp_path):
    states = []
    managed = sup.start(spec(tmp_path), listener=lambda change: states.append(change.state))
    first = managed.pid

    os.kill(first, signal.SIGKILL)

    wait_for(lambda: managed.state == "ready" and managed.restarts == 1, timeout=15,
             what="the restart")
    assert managed.pid != first and alive(managed.pid)
    assert managed.history == [1.0]
    assert states == ["ready", "restarting", "restarting", "ready"]  # crashed, respawned, probed


def test_a_process_that_keeps_crashing_ends_in_crashloop_after_five_restarts(tmp_path):
    sup = Supervisor(backoff=FAST)
    managed = sup.start(spec(tmp_path, "--exit-after", "0.2"))

    wait_for(lambda: managed.state == "crashloop", timeout=30, what="crashloop")

    assert managed.restarts == 5 and managed.history == list(FAST)
    assert "gave up after 5 restarts" in managed.error
    assert "crashing with exit code 3" in managed.error  # the log's last lines
    assert managed.pid is None
    sup.shutdown()


def test_a_process_that_exits_at_once_fails_to_start_and_says_why(sup, tmp_path):
    broken = spec(tmp_path, "--no-such-flag")
    with pytest.raises(StartFailed, match="exited with code 2") as failed:
        sup.start(broken)
    assert "unrecognized arguments: --no-such-flag" in str(failed.value)
    assert sup.keys() == []


def test_a_stopped_process_is_gone_and_not_restarted(sup, tmp_path):
    managed = sup.start(spec(tmp_path))
    pid = managed.pid
    assert sup.stop("fake") is True
    assert not alive(pid) and sup.keys() == []


def test_an_unwanted_process_that_exits_is_forgotten_not_restarted(sup, tmp_path):
    wanted = {"yes": True}
    managed = sup.start(spec(tmp_path), wanted=lambda: wanted["yes"])
    wanted["yes"] = False
    os.kill(managed.pid, signal.SIGKILL)
    wait_for(lambda: sup.keys() == [], timeout=10, what="the process to be forgotten")
    assert managed.restarts == 0


@pytest.mark.engine  # the node checks its llama.cpp build before starting an rpc-server
def test_a_shard_that_keeps_crashing_shows_crashloop_in_shard_ls(transactional_db, tmp_path,
                                                                  monkeypatch):
    from cluster import embedded, tasks

    fake = tmp_path / "ggml-rpc-server"
    fake.write_text(f'#!/bin/sh\nexec {sys.executable} {FAKE} "$@" --exit-after 0.2\n')
    fake.chmod(fake.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setattr(embedded, "rpc_server_binary", lambda: fake)
    monkeypatch.setattr(supervisor_module, "_supervisor", Supervisor(backoff=FAST))
    cluster_nodes()
    shard = Shard.objects.create(model="crashy", node=Node.objects.get(name="w1"),
                                 role=ShardRole.RPC, host="127.0.0.1", port=0)

    tasks.shard_rpc_start.apply(kwargs={"shard_id": shard.pk, "build": embedded.build_label()},
                                throw=True)
    row = wait_for(lambda: Shard.objects.filter(pk=shard.pk, state=ShardState.CRASHLOOP).first(),
                   timeout=30, what="crashloop")

    assert row.restarts == 5 and "gave up after 5 restarts" in row.error
    out = io.StringIO()
    call_command("shard", "ls", stdout=out)
    assert "crashloop" in out.getvalue()
    assert "rpc of crashy on w1 is in crashloop" in out.getvalue()
    with node_queues_served():
        call_command("shard", "remove", "crashy", "--yes", stdout=io.StringIO())
    assert not Shard.objects.exists()
    supervisor_module.supervisor().shutdown()


@pytest.mark.django_db(transaction=True)  # the supervisor writes rows from its own thread
def test_processes_left_by_a_supervisor_that_exited_are_taken_over_and_restarted(tmp_path,
                                                                                  monkeypatch):
    import socket
    import subprocess

    from cluster.sharding_node import shards_adopt, supervisor_id

    monkeypatch.setattr(supervisor_module, "_supervisor", Supervisor())
    cluster_nodes()
    orphan = spec(tmp_path, key="orphan")
    proc = subprocess.Popen(orphan.argv, start_new_session=True, stdout=subprocess.DEVNULL)
    wait_for(lambda: supervisor_module.port_answers("127.0.0.1", orphan.port), timeout=10,
             what="the orphan to listen")
    gone = subprocess.Popen(["true"])
    gone.wait()  # the pid of a supervisor that has exited
    shard = Shard.objects.create(model="orphaned", node=Node.objects.get(name="w1"),
                                 role=ShardRole.RPC, host="127.0.0.1", port=orphan.port,
                                 pid=proc.pid, argv=orphan.argv, state=ShardState.READY,
                                 log_path=str(orphan.log_path),
                                 supervisor=f"{socket.gethostname()}:{gone.pid}")

    assert shards_adopt() == [shard.pk]
    assert shards_adopt() == []  # supervised here now
    assert Shard.objects.get(pk=shard.pk).supervisor == supervisor_id()

    proc.kill()
    proc.wait()
    row = wait_for(lambda: Shard.objects.filter(pk=shard.pk, state=ShardState.READY,
                                                restarts=1).first(), timeout=15,
                   what="the adopted process to be restarted")
    assert row.pid != proc.pid and alive(row.pid)
    supervisor_module.supervisor().shutdown()
    assert not alive(row.pid)


@pytest.mark.engine  # the node checks its llama.cpp build before starting an rpc-server
def test_an_rpc_server_failing_on_the_second_worker_stops_the_first_and_names_the_step(
        transactional_db, tmp_path, monkeypatch):
    from cluster import embedded

    # The first rpc-server starts (w1, the most free memory); the second exits at once.
    fake = tmp_path / "ggml-rpc-server"
    fake.write_text(f'#!/bin/sh\nif [ -e {tmp_path}/started ]; then echo "bind failed" >&2; '
                    f'exit 1; fi\ntouch {tmp_path}/started\nexec {sys.executable} {FAKE} "$@"\n')
    fake.chmod(fake.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setattr(embedded, "rpc_server_binary", lambda: fake)
    cluster_nodes()
    started = []
    real_start = Supervisor.start

    def recording(self, spec, **kwargs):
        managed = real_start(self, spec, **kwargs)
        started.append(managed.pid)
        return managed

    monkeypatch.setattr(Supervisor, "start", recording)

    with node_queues_served(), pytest.raises(CommandError) as failed:
        call_command("shard", "create", "gemma-3-270m", "2", "--gguf", str(tmp_path / "m.gguf"),
                     stdout=io.StringIO())

    assert "step 'start rpc-server' failed on w2" in str(failed.value)
    assert "bind failed" in str(failed.value)  # the log's last lines
    assert len(started) == 1 and not alive(started[0])  # w1's rpc-server was stopped
    assert not Shard.objects.exists()
