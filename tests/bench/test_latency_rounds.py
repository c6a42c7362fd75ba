"""The bench's concurrency-1 runs, taken in rounds, merge into one figure per path."""

from __future__ import annotations

import pytest

from bench.scenarios import merged

pytestmark = pytest.mark.once


def _run(latencies: list[float], seconds: float, gateway_cpu: float, busy: float | None,
         errors: dict[str, int] | None = None) -> dict:
    return {"requests": len(latencies), "errors": sum((errors or {}).values()),
            "error_kinds": errors or {}, "failed_requests": 0, "sent": len(latencies) + 3,
            "seconds": seconds, "rps": len(latencies) / seconds, "client_cpu": 0.1,
            "gateway_cpu": gateway_cpu, "engine_cpu": 0.05, "other_cpu": 0.0,
            "busy_before": busy, "latencies_ms": latencies, "latency_ms": {}}


def test_rounds_merge_into_percentiles_over_every_request_and_time_weighted_shares():
    fast = [0.5] * 98 + [0.6, 0.7]
    slow = [0.9] * 99 + [9.0]  # the machine had a slow spell during the second round
    out = merged([_run(fast, 1.0, 0.8, 0.01), _run(slow, 3.0, 0.4, 0.2, {"timeout": 2})])
    assert out["requests"] == 200 and out["sent"] == 206 and out["rounds"] == 2
    assert out["errors"] == 2 and out["error_kinds"] == {"timeout": 2}
    assert out["latency_ms"]["p50"] == 0.9 and out["latency_ms"]["max"] == 9.0
    assert out["latency_ms"]["min"] == 0.5 and out["latency_ms"]["p99"] == 0.9
    assert out["rps"] == 50.0 and out["seconds"] == 4.0
    assert out["gateway_cpu"] == pytest.approx(0.5)  # (0.8 * 1 + 0.4 * 3) / 4
    assert out["busy_before"] == 0.2
    assert "latencies_ms" not in out  # the raw lists stay out of bench/results/latest.json
