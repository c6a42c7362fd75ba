"""The worker's heartbeat loop reacting to the leader: transient failures back off exponentially,
a 404 registers again, a 401 stops the worker."""

from __future__ import annotations

import threading

import pytest

from cluster.worker import (
    BACKOFF_MAX,
    HeartbeatLoop,
    Identity,
    LeaderRefused,
    LeaderUnavailable,
    NodeGone,
)

ME = Identity(leader="http://leader:8080", node_id=7, name="w", key="sk-node", agent_secret="s")


class ScriptedLeader:
    """Answers heartbeats from a script: an exception to raise, or an answer."""

    def __init__(self, *script: object) -> None:
        self.script = list(script)
        self.beats: list[tuple[str, dict]] = []

    def heartbeat(self, key: str, beat: dict) -> dict:
        self.beats.append((key, dict(beat)))
        step = self.script.pop(0) if self.script else {"state": "ready"}
        if isinstance(step, Exception):
            raise step
        return step  # type: ignore[return-value]


class CountingStop(threading.Event):
    """Records each wait's delay instead of sleeping; stops after `limit` waits."""

    def __init__(self, limit: int) -> None:
        super().__init__()
        self.delays: list[float] = []
        self.limit = limit

    def wait(self, timeout: float | None = None) -> bool:
        self.delays.append(round(timeout or 0, 1))
        return len(self.delays) > self.limit


def loop(leader: ScriptedLeader, reregister=None) -> HeartbeatLoop:
    return HeartbeatLoop(leader, ME, beat=lambda: {"models": ["m"]},  # type: ignore[arg-type]
                         reregister=reregister or (lambda: ME), interval=5)


def test_transient_failures_back_off_exponentially_and_reset_after_a_success():
    down = LeaderUnavailable("leader down")
    leader = ScriptedLeader(down, down, down, down, down, down, {"state": "ready"})
    stop = CountingStop(limit=8)
    assert loop(leader).run(stop) == "stopped"
    assert stop.delays[:8] == [0.0, 1.0, 2.0, 4.0, 8.0, BACKOFF_MAX, BACKOFF_MAX, 5.0]
    assert all(beat["node_id"] == 7 and beat["models"] == ["m"] for _, beat in leader.beats)


def test_a_forgotten_node_registers_again_and_carries_on_under_its_new_id():
    again = Identity(leader=ME.leader, node_id=8, name="w", key="sk-node", agent_secret="s2")
    leader = ScriptedLeader(NodeGone("no node 7"), {"state": "ready"})
    beats = loop(leader, reregister=lambda: again)
    beats.run(CountingStop(limit=2))
    assert [beat["node_id"] for _, beat in leader.beats][:2] == [7, 8]
    assert beats.identity.node_id == 8


def test_a_refused_key_stops_the_loop():
    leader = ScriptedLeader({"state": "ready"}, LeaderRefused("the leader answered 401"))
    with pytest.raises(LeaderRefused):
        loop(leader).run(CountingStop(limit=10))
    assert len(leader.beats) == 2
