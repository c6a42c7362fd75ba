"""10,000 requests at concurrency 100 across two daphne processes sharing a Redis and a
PostgreSQL, OpenAI and Anthropic, streamed and not, against a fast fake engine: no 5xx, exactly
10,000 usage records, and each key's quota counter equal to its ledger."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.reliability.load import run
from tests.reliability.stack import ROOT, ledger, quota_counter, seed, wait_for

TOTAL = int(os.environ.get("FLOCK_LOAD_TOTAL", 10_000))
CONCURRENCY = 100

# About a minute of both cores: once per `make test`, in its PostgreSQL and Redis pass (on services
# of its own all the same). FLOCK_LOAD_TEST=1 runs it in any run.
pytestmark = pytest.mark.skipif(
    not (os.environ.get("REDIS_URL") or os.environ.get("FLOCK_LOAD_TEST")),
    reason="runs once per `make test`: in the PostgreSQL and Redis pass")


@pytest.fixture
def engine_process():
    """The fake engine in a process of its own, so the load's client does not share its GIL."""
    proc = subprocess.Popen([sys.executable, "-m", "tests.reliability.serve_engine", "--port", "0"],
                            cwd=ROOT, stdout=subprocess.PIPE, text=True, stdin=subprocess.DEVNULL)
    port = int(proc.stdout.readline().split()[1])
    yield f"http://127.0.0.1:{port}"
    proc.terminate()
    proc.wait(10)


def test_ten_thousand_mixed_requests_across_two_processes_lose_nothing(stack, engine_process):
    keys = seed(stack.env, engine_process)
    gateways = [stack.gateway(), stack.gateway()]

    tally = run([g.url for g in gateways], [keys["alice"], keys["bob"]], total=TOTAL,
                concurrency=CONCURRENCY)

    assert tally.sent == TOTAL
    assert tally.statuses == {200: TOTAL}, (tally.statuses, tally.transport_errors)
    assert tally.broken_streams == 0
    wait_for(lambda: stack.usage_count() == TOTAL, 60, "every usage record written")
    assert stack.usage_count() == TOTAL
    assert len(set(tally.request_ids)) == TOTAL
    assert stack.redis.client().llen("flock:usage:pending") == 0
    for key in ("alice", "bob"):
        assert quota_counter(stack, keys[key + "_id"]) == ledger(stack, keys[key + "_id"]) > 0
