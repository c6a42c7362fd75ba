"""Choosing among replicas of a model: least outstanding requests (counted in the shared cache),
the leader on ties, sticky sessions, and replicas that refused a connection tried last."""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from collections.abc import Iterator

import httpx
import pytest
from asgiref.sync import async_to_sync
from django.core.cache import cache

from gateway import balancing
from gateway.engines.registry import make_engine
from gateway.router import Candidate
from tests.fakes.openai_server import FakeOpenAIEngine

CHAT = {"model": "fake-model", "messages": [{"role": "user", "content": "hi"}]}


def candidate(node: str, model: str = "m") -> Candidate:
    return Candidate(node, make_engine("vllm", f"http://{node}:8000"), model)


def order(cands: list[Candidate], session: str = "", leaders=("lead",)) -> list[str]:
    ordered = async_to_sync(balancing.order)(cands, requested="m", session=session,
                                             leaders=leaders)
    return [c.node for c in ordered]


def busy(node: str, n: int, model: str = "m") -> None:
    cache.set(balancing.inflight_key(node, model), n, 60)


def test_the_replica_with_the_fewest_requests_in_flight_goes_first():
    busy("a", 3)
    busy("b", 1)
    assert order([candidate("a"), candidate("b"), candidate("c")]) == ["c", "b", "a"]


def test_the_leader_wins_a_tie_when_it_has_the_model():
    assert order([candidate("a"), candidate("lead")]) == ["lead", "a"]
    busy("lead", 1)
    assert order([candidate("a"), candidate("lead")]) == ["a", "lead"]


def test_a_session_sticks_to_its_replica_while_it_is_a_candidate():
    busy("lead", 2)
    assert order([candidate("lead"), candidate("a")], session="alice")[0] == "a"
    busy("a", 5)  # busier now, but alice's conversation is cached there
    assert order([candidate("lead"), candidate("a")], session="alice")[0] == "a"
    assert order([candidate("lead"), candidate("a")], session="bob")[0] == "lead"
    # a gone (offline, drained): alice moves, and then sticks to her new replica
    assert order([candidate("lead"), candidate("b")], session="alice")[0] == "b"
    busy("b", 9)
    assert order([candidate("lead"), candidate("b"), candidate("a")], session="alice")[0] == "b"


def test_a_replica_that_refused_a_connection_is_tried_last_for_a_while(settings):
    async_to_sync(balancing.note_unreachable)(candidate("lead"))
    assert order([candidate("lead"), candidate("a")], session="carol") == ["a", "lead"]
    cache.delete_many([k for k in [f"lb:down:{balancing._digest('lead')}"]])
    assert order([candidate("lead"), candidate("a")]) == ["lead", "a"]


def test_an_attempt_counts_as_in_flight_until_it_ends_however_it_ends():
    c = candidate("a")

    async def run() -> list[int]:
        seen = []
        async with balancing.outstanding(c):
            seen.append(await balancing.in_flight("a", "m"))
            async with balancing.outstanding(c):
                seen.append(await balancing.in_flight("a", "m"))
        with pytest.raises(RuntimeError):
            async with balancing.outstanding(c):
                raise RuntimeError("engine broke")
        seen.append(await balancing.in_flight("a", "m"))
        return seen

    assert async_to_sync(run)() == [1, 2, 0]


# --- through the gateway, over HTTP ----------------------------------------------------------------

# Each test's replicated model has a name of its own, so that a stream of an earlier test still
# ending in the shared server cannot move this test's in-flight counts.
REPLICATED = {"model": "fake-model"}


def chat(**extra) -> dict:
    return {**CHAT, "model": REPLICATED["model"], **extra}


@pytest.fixture
def replica(gateway) -> Iterator[FakeOpenAIEngine]:
    """A second node (a worker) serving the same model as the leader's engine."""
    from cluster.models import Node

    engine = FakeOpenAIEngine().start()
    engine.script.text = "from the worker"
    gateway.engine.script.text = "from the leader"
    REPLICATED["model"] = f"replicated-{uuid.uuid4().hex[:8]}"
    gateway.engine.script.models = engine.script.models = [REPLICATED["model"]]
    Node.objects.create(name="worker-b", role="worker", engine="vllm", engine_endpoint=engine.url)
    yield engine
    engine.stop()


def served_by(gateway, *, session: str = "", body: dict | None = None) -> str:
    headers = {**gateway.headers(), **({"x-session-id": session} if session else {})}
    r = httpx.post(gateway.v1 + "/chat/completions", headers=headers, json=chat(**(body or {})),
                   timeout=30)
    assert r.status_code == 200, r.text
    return r.json()["choices"][0]["message"]["content"].split()[-1]


def _completions(engines) -> int:
    return sum(1 for engine in engines for path, *_ in engine.requests
               if path.endswith("completions"))


def slow_streams(gateway, count: int, engines=()) -> list[threading.Thread]:
    """`count` slow streams started one after the other: each once the one before it reached an
    engine (so the gateway counts it in flight), however slow the machine is."""
    engines = list(engines) or [gateway.engine]

    def one() -> None:
        with httpx.stream("POST", gateway.v1 + "/chat/completions", headers=gateway.headers(),
                          json=chat(stream=True), timeout=30) as s:
            s.read()

    threads = [threading.Thread(target=one) for _ in range(count)]
    before = _completions(engines)
    for n, t in enumerate(threads, start=1):
        t.start()
        deadline = time.monotonic() + 10
        while _completions(engines) < before + n and time.monotonic() < deadline:
            time.sleep(0.01)
    return threads


def test_concurrent_requests_spread_over_the_replicas_of_a_model(gateway, replica):
    gateway.engine.script.token_delay = replica.script.token_delay = 0.15
    for t in slow_streams(gateway, 6, engines=(gateway.engine, replica)):
        t.join()
    leader_share = sum(1 for path, *_ in gateway.engine.requests if path.endswith("completions"))
    worker_share = sum(1 for path, *_ in replica.requests if path.endswith("completions"))
    assert (leader_share, worker_share) == (3, 3)


def test_without_load_the_leader_serves(gateway, replica):
    assert {served_by(gateway) for _ in range(3)} == {"leader"}


def test_a_session_stays_on_its_replica_after_the_load_that_placed_it_is_gone(gateway, replica):
    gateway.engine.script.token_delay = 0.3
    background = slow_streams(gateway, 1)  # the leader is busy...
    time.sleep(0.1)
    assert served_by(gateway, session="s-1") == "worker"
    assert served_by(gateway, body={"user": "user-7"}) == "worker"
    for t in background:
        t.join()
    # ...and no longer: new sessions go to the leader, the placed ones stay.
    assert served_by(gateway) == "leader"
    for _ in range(3):
        assert served_by(gateway, session="s-1") == "worker"
        assert served_by(gateway, body={"user": "user-7"}) == "worker"


def test_an_anthropic_user_id_is_a_session_too(gateway, replica):
    gateway.engine.script.token_delay = 0.3
    background = slow_streams(gateway, 1)
    time.sleep(0.1)
    body = {"model": REPLICATED["model"], "max_tokens": 50,
            "metadata": {"user_id": "claude-code-u1"},
            "messages": [{"role": "user", "content": "hi"}]}

    def ask() -> str:
        r = httpx.post(gateway.v1 + "/messages", headers=gateway.headers(), json=body, timeout=30)
        assert r.status_code == 200, r.text
        return r.json()["content"][0]["text"].split()[-1]

    assert ask() == "worker"
    for t in background:
        t.join()
    assert [ask() for _ in range(3)] == ["worker"] * 3


def test_in_flight_counts_return_to_zero_after_a_client_hangs_up(gateway, replica):
    gateway.engine.script.token_delay = replica.script.token_delay = 0.2
    keys = [balancing.inflight_key(node, REPLICATED["model"]) for node in ("leader", "worker-b")]

    def in_flight() -> int:
        return sum(int(cache.get(key) or 0) for key in keys)

    with httpx.stream("POST", gateway.v1 + "/chat/completions", headers=gateway.headers(),
                      json=chat(stream=True), timeout=30) as s:
        chunks = s.iter_raw()  # held: a dropped iterator closes the connection at once
        next(chunks)
        assert in_flight() == 1
    deadline = time.monotonic() + 5
    while in_flight() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert in_flight() == 0


def test_a_replica_that_dies_costs_no_failed_request(gateway, replica):
    gateway.engine.script.token_delay = 0.3
    background = slow_streams(gateway, 1)
    time.sleep(0.1)
    assert served_by(gateway, session="s-9") == "worker"
    for t in background:
        t.join()
    from cluster.models import Node

    # The worker's engine goes away (nothing listens there now); its node still reads ready.
    Node.objects.filter(name="worker-b").update(engine_endpoint="http://127.0.0.1:9")
    answers = []
    for _ in range(12):
        answers.append(served_by(gateway, session="s-9"))
        time.sleep(0.25)
    assert answers[-1] == "leader" and set(answers) <= {"worker", "leader"}


@pytest.mark.parametrize("concurrency", [8])
def test_many_concurrent_requests_all_succeed_and_leave_no_count_behind(gateway, replica,
                                                                       concurrency):
    async def burst() -> list[int]:
        async with httpx.AsyncClient(timeout=30) as client:
            answers = await asyncio.gather(*[
                client.post(gateway.v1 + "/chat/completions", headers=gateway.headers(), json=chat())
                for _ in range(concurrency * 4)])
        return [a.status_code for a in answers]

    assert set(asyncio.run(burst())) == {200}
    for node in ("leader", "worker-b"):
        assert not cache.get(balancing.inflight_key(node, REPLICATED["model"]))
