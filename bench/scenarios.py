"""The scenarios: each runs the load generator in a process of its own against every path and
returns its figures, with the CPU each party used meanwhile."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import time
from dataclasses import dataclass

import psutil

from bench.paths import PROJECT, Target
from bench.procs import cpu_seconds, rss_mb

PROMPT = [{"role": "user", "content": "Say hi in one short sentence."}]
SENT: dict[str, int] = {}  # requests sent to each path, warm-up included


@dataclass(frozen=True)
class Plan:
    """How much traffic each scenario sends (--quick shortens every one of them)."""

    latency_requests: int = 10_000  # p99: the 100th slowest (of 3,000 it swung with one hiccup)
    latency_rounds: int = 5  # the paths take turns, so a slow spell of the machine hits each
    rps_seconds: float = 15.0
    stream_seconds: float = 15.0
    stream_tokens: int = 200
    hold_streams: int = 1000
    hold_tokens: int = 30  # at --slow-pace-ms each: a 15 s stream by default
    hold_ramp: float = 5.0
    warmup_seconds: float = 2.0
    quiet_wait: float = 30.0  # seconds to wait, before each run, for the machine to be idle

    @classmethod
    def quick(cls) -> Plan:
        return cls(latency_requests=600, latency_rounds=2, rps_seconds=5.0, stream_seconds=5.0,
                   hold_tokens=12, hold_ramp=4.0, warmup_seconds=1.0, quiet_wait=5.0)


def chat_body(model: str = "bench-fast", max_tokens: int = 16, stream: bool = False) -> dict:
    body: dict = {"model": model, "messages": PROMPT, "max_tokens": max_tokens}
    if stream:
        body["stream"] = True
    return body


def loadgen(target: Target, spec: dict, *, timeout: float) -> dict:
    spec = {"port": target.port, "api_key": target.api_key, **spec}
    done = subprocess.run([sys.executable, "-m", "bench.loadgen", json.dumps(spec)],
                          cwd=PROJECT, capture_output=True, text=True, timeout=timeout)
    if done.returncode:
        raise RuntimeError(f"the load generator failed:\n{done.stderr[-2000:]}")
    result = json.loads(done.stdout)
    SENT[target.name] = SENT.get(target.name, 0) + result["sent"]
    return result


def busy_seconds() -> float:
    """CPU seconds the whole machine spent running something, over all cores."""
    t = psutil.cpu_times()
    return t.user + t.nice + t.system + getattr(t, "irq", 0.0) + getattr(t, "softirq", 0.0)


QUIET_CORES = 0.3


def wait_quiet(max_wait: float) -> float:
    """Waits up to `max_wait` seconds for a second in which the machine is nearly idle (others
    may be running test suites on it); returns the cores busy in the last second."""
    deadline = time.monotonic() + max_wait
    while True:
        before = busy_seconds()
        time.sleep(1.0)
        level = busy_seconds() - before
        if level < QUIET_CORES or time.monotonic() >= deadline:
            return level


def measured(target: Target, engine: Target, spec: dict, *, timeout: float,
             quiet_wait: float = 0.0) -> dict:
    """One load-generator run, with the share of a core the gateway, the engine and everything
    else on the machine (other people's work disturbs the figures) used meanwhile."""
    busy_before = wait_quiet(quiet_wait) if quiet_wait else None
    gateway_pids = target.pids if target.name != "direct" else []
    before = (cpu_seconds(gateway_pids), cpu_seconds(engine.pids), busy_seconds(),
              time.monotonic())
    result = loadgen(target, spec, timeout=timeout)
    wall = time.monotonic() - before[3]
    gateway = cpu_seconds(gateway_pids) - before[0]
    engine_s = cpu_seconds(engine.pids) - before[1]
    client = result["client_cpu"] * result.get("client_wall", wall)
    result["gateway_cpu"] = round(gateway / wall, 3)
    result["engine_cpu"] = round(engine_s / wall, 3)
    result["other_cpu"] = round(max(0.0, busy_seconds() - before[2] - gateway - engine_s - client)
                                / wall, 3)
    result["busy_before"] = None if busy_before is None else round(busy_before, 2)
    return result


def warm(target: Target) -> None:
    """A few requests of each kind, so first-request costs stay out of the figures."""
    loadgen(target, {"body": chat_body(), "concurrency": 2, "warmup": 0, "duration": 10,
                     "count": 100}, timeout=60)
    loadgen(target, {"body": chat_body("bench-stream", 20, stream=True), "mode": "stream",
                     "concurrency": 2, "warmup": 0, "duration": 10, "count": 4}, timeout=60)


def latency(targets: list[Target], engine: Target, plan: Plan) -> dict[str, dict]:
    """Concurrency 1, in rounds: each path in turn sends its share of the requests, so a spell
    in which the machine is slower (a neighbour's work, the host) falls on every path alike
    instead of on whichever ran then. Each path's percentiles are over all its requests."""
    rounds = max(1, plan.latency_rounds)
    runs: dict[str, list[dict]] = {t.name: [] for t in targets}
    for n in range(rounds):
        spec = {"body": chat_body(), "concurrency": 1, "duration": 120, "raw": True,
                "warmup": plan.warmup_seconds if n == 0 else 0.25,
                "count": plan.latency_requests // rounds}
        for t in targets:
            runs[t.name].append(measured(t, engine, spec, timeout=300,
                                         quiet_wait=plan.quiet_wait))
    return {name: merged(parts) for name, parts in runs.items()}


def merged(parts: list[dict]) -> dict:
    """Runs of one path as one: counts summed, rates and CPU shares weighted by each run's
    time, percentiles over every request."""
    from bench.loadgen import percentiles

    seconds = sum(p["seconds"] for p in parts) or 1e-9
    every = [ms for p in parts for ms in p.pop("latencies_ms", [])]
    kinds: dict[str, int] = {}
    for p in parts:
        for kind, count in p["error_kinds"].items():
            kinds[kind] = kinds.get(kind, 0) + count
    out = dict(parts[-1])
    out.update(
        requests=sum(p["requests"] for p in parts), errors=sum(p["errors"] for p in parts),
        error_kinds=kinds, failed_requests=sum(p["failed_requests"] for p in parts),
        sent=sum(p["sent"] for p in parts), seconds=round(seconds, 3),
        latency_ms=percentiles(every),
        rounds=len(parts))
    out["rps"] = round(out["requests"] / seconds, 1)
    for field in ("client_cpu", "gateway_cpu", "engine_cpu", "other_cpu"):
        out[field] = round(sum(p.get(field, 0.0) * p["seconds"] for p in parts) / seconds, 3)
    busy = [p["busy_before"] for p in parts if p.get("busy_before") is not None]
    out["busy_before"] = max(busy) if busy else None
    return out


def rps(targets: list[Target], engine: Target, plan: Plan) -> dict[str, dict]:
    spec = {"body": chat_body(), "concurrency": 32, "warmup": plan.warmup_seconds,
            "duration": plan.rps_seconds}
    return {t.name: measured(t, engine, spec, timeout=plan.rps_seconds + 120,
                             quiet_wait=plan.quiet_wait) for t in targets}


def stream(targets: list[Target], engine: Target, plan: Plan) -> dict[str, dict]:
    spec = {"body": chat_body("bench-stream", plan.stream_tokens, stream=True), "mode": "stream",
            "concurrency": 16, "warmup": plan.warmup_seconds, "duration": plan.stream_seconds,
            "expect_tokens": plan.stream_tokens}
    return {t.name: measured(t, engine, spec, timeout=plan.stream_seconds + 120,
                             quiet_wait=plan.quiet_wait) for t in targets}


def hold(target: Target, plan: Plan, *, slow_pace_ms: float) -> dict:
    """`hold_streams` slow streams at once through one gateway: errors, and its memory before,
    at the peak and after."""
    wait_quiet(plan.quiet_wait)
    baseline, _ = rss_mb(target.pids)
    stream_seconds = plan.hold_tokens * slow_pace_ms / 1000
    spec = {"port": target.port, "api_key": target.api_key, "mode": "hold",
            "body": chat_body("bench-slow", plan.hold_tokens, stream=True),
            "concurrency": plan.hold_streams, "ramp": plan.hold_ramp,
            "timeout": stream_seconds + plan.hold_ramp + 60, "expect_tokens": plan.hold_tokens}
    proc = subprocess.Popen([sys.executable, "-m", "bench.loadgen", json.dumps(spec)],
                            cwd=PROJECT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    peak = baseline
    deadline = time.monotonic() + stream_seconds + plan.hold_ramp + 120
    try:
        while proc.poll() is None and time.monotonic() < deadline:
            peak = max(peak, rss_mb(target.pids)[0])
            time.sleep(0.25)
    finally:
        if proc.poll() is None:
            proc.kill()
    out, err = proc.communicate()
    if proc.returncode:
        raise RuntimeError(f"the load generator failed:\n{err[-2000:]}")
    result = json.loads(out)
    SENT[target.name] = SENT.get(target.name, 0) + result["sent"]
    time.sleep(3.0)
    result.update(rss_baseline_mb=round(baseline, 1), rss_peak_mb=round(peak, 1),
                  rss_after_mb=round(rss_mb(target.pids)[0], 1),
                  rss_growth_mb=round(peak - baseline, 1))
    return result


def idle_rss(target: Target) -> dict:
    total, workers = rss_mb(target.pids)
    per_process = sum(workers) / len(workers) if workers else total
    return {"total_mb": round(total, 1), "per_process_mb": round(per_process, 1),
            "processes": len(workers) or 1}


def usage_rows(target: Target) -> int | None:
    """Usage records in Flock's SQLite ledger, once the background flush has run."""
    if target.data_dir is None:
        return None
    time.sleep(2.5)  # the usage buffer flushes every second
    with sqlite3.connect(target.data_dir / "flock.db") as conn:
        return conn.execute("SELECT COUNT(*) FROM accounts_usagerecord").fetchone()[0]
