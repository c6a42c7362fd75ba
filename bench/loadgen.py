"""The load generator: raw HTTP/1.1 over asyncio streams, keep-alive connections, closed loop.

It runs in a process of its own and is checked against the direct path first: whatever it reaches
there is its floor, far above what a gateway reaches.

    python -m bench.loadgen '<json spec>'    # prints one JSON result on stdout

Modes: `chat` (non-streaming requests), `stream` (SSE; time to first token and tokens relayed)
and `hold` (open `concurrency` streams once, ramped over `ramp` seconds, and wait for all).
"""

from __future__ import annotations

import asyncio
import json
import re
import sys
import time
from dataclasses import dataclass, field

# What a broken connection or a garbled answer raises while reading it.
FAILURES = (OSError, TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError,
            ValueError, IndexError)
CONTENT = re.compile(rb'"content":\s*"[^"]')  # a delta with text in it: one token


@dataclass
class Spec:
    port: int
    body: dict
    mode: str = "chat"
    host: str = "127.0.0.1"
    path: str = "/v1/chat/completions"
    method: str = "POST"
    api_key: str = ""
    concurrency: int = 1
    warmup: float = 1.0  # seconds of traffic not measured
    duration: float = 10.0  # seconds measured, at most
    count: int = 0  # requests measured, at most (0: no limit)
    timeout: float = 60.0
    expect_tokens: int = 0  # a stream with fewer tokens counts as incomplete
    ramp: float = 0.0  # hold mode: seconds over which the streams open
    raw: bool = False  # also return every answered request's latency (to merge runs)


@dataclass
class Outcome:
    started: float
    ended: float = 0.0
    status: int = 0
    first_token: float | None = None
    last_token: float | None = None
    tokens: int = 0
    done: bool = False
    error: str = ""


@dataclass
class Meter:
    """Tokens received inside the measured window, whichever stream carried them."""

    start: float = 0.0
    end: float = float("inf")
    tokens: int = 0

    def count(self, now: float, n: int) -> None:
        if self.start <= now < self.end:
            self.tokens += n


@dataclass
class Totals:
    outcomes: list[Outcome] = field(default_factory=list)
    errors: dict[str, int] = field(default_factory=dict)
    in_flight: int = 0
    max_in_flight: int = 0
    measured: int = 0
    sent: int = 0  # every request sent, warm-up included (a gateway records each one)
    meter: Meter = field(default_factory=Meter)

    def error(self, kind: str) -> None:
        self.errors[kind] = self.errors.get(kind, 0) + 1


def request_bytes(spec: Spec) -> bytes:
    body = json.dumps(spec.body, separators=(",", ":")).encode() if spec.method == "POST" else b""
    head = [f"{spec.method} {spec.path} HTTP/1.1", f"host: {spec.host}:{spec.port}"]
    if spec.method == "POST":
        head += ["content-type: application/json", f"content-length: {len(body)}"]
    if spec.api_key:
        head.append(f"authorization: Bearer {spec.api_key}")
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


async def exchange(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes,
                   outcome: Outcome, totals: Totals, *, track: bool = False) -> bool:
    """Sends one request and reads its whole answer into `outcome`; returns whether the
    connection can be reused."""
    writer.write(request)
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    outcome.status = int(lines[0].split(b" ", 2)[1])
    length, chunked, keep, sse = -1, False, True, False
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        name, value = name.strip().lower(), value.strip().lower()
        if name == b"content-length":
            length = int(value)
        elif name == b"transfer-encoding" and b"chunked" in value:
            chunked = True
        elif name == b"connection" and b"close" in value:
            keep = False
        elif name == b"content-type" and value.startswith(b"text/event-stream"):
            sse = True
    if track:
        totals.in_flight += 1
        totals.max_in_flight = max(totals.max_in_flight, totals.in_flight)
    try:
        pending = bytearray()
        if length >= 0:
            pending += await reader.readexactly(length)
        elif chunked:
            while True:
                size = int((await reader.readline()).split(b";")[0], 16)
                if size == 0:
                    await reader.readline()
                    break
                pending += (await reader.readexactly(size + 2))[:-2]
                if sse:
                    _events(outcome, pending, totals.meter)
        else:
            pending += await reader.read()
            keep = False
    finally:
        if track:
            totals.in_flight -= 1
    if sse:
        _events(outcome, pending, totals.meter, whole=True)
    else:  # a whole JSON answer
        outcome.done = b'"choices"' in pending or b'"status"' in pending
        outcome.tokens = 1 if outcome.done else 0
    outcome.ended = time.perf_counter()
    return keep


def _events(outcome: Outcome, pending: bytearray, meter: Meter, whole: bool = False) -> None:
    """Consumes the complete SSE events in `pending` (everything, when `whole`)."""
    while True:
        cut = pending.find(b"\n\n")
        if cut < 0:
            if not whole or not pending:
                return
            cut = len(pending)
        event = bytes(pending[:cut])
        del pending[:cut + 2]
        if event.startswith(b"data: [DONE]") or event.startswith(b"data:[DONE]"):
            outcome.done = True
        else:
            found = len(CONTENT.findall(event))
            if found:
                now = time.perf_counter()
                if outcome.first_token is None:
                    outcome.first_token = now
                outcome.last_token = now
                outcome.tokens += found
                meter.count(now, found)


async def _connect(spec: Spec):
    return await asyncio.open_connection(spec.host, spec.port, limit=1 << 20)


async def closed_loop(spec: Spec) -> tuple[Totals, float, float]:
    request = request_bytes(spec)
    totals = Totals()
    begin = time.perf_counter()
    measure_from = begin + spec.warmup
    measure_until = measure_from + spec.duration
    totals.meter = Meter(measure_from, measure_until)

    async def worker() -> None:
        conn = None
        while True:
            now = time.perf_counter()
            if now >= measure_until or (spec.count and totals.measured >= spec.count):
                break
            outcome = Outcome(started=now)
            try:
                if conn is None:
                    conn = await _connect(spec)
                totals.sent += 1
                keep = await asyncio.wait_for(exchange(*conn, request, outcome, totals),
                                              spec.timeout)
            except FAILURES as exc:
                if outcome.started >= measure_from:
                    totals.error(type(exc).__name__)
                if conn is not None:
                    conn[1].close()
                conn = None
                await asyncio.sleep(0.01)
                continue
            if outcome.started >= measure_from:
                totals.outcomes.append(outcome)
                totals.measured += 1
            if not keep:
                conn[1].close()
                conn = None
        if conn is not None:
            conn[1].close()

    await asyncio.gather(*(worker() for _ in range(spec.concurrency)))
    return totals, measure_from, time.perf_counter()


async def hold(spec: Spec) -> tuple[Totals, float, float]:
    request = request_bytes(spec)
    totals = Totals()
    begin = time.perf_counter()
    totals.meter = Meter(begin)

    async def one(i: int) -> None:
        await asyncio.sleep(spec.ramp * i / max(1, spec.concurrency))
        outcome = Outcome(started=time.perf_counter())
        conn = None
        try:
            conn = await _connect(spec)
            totals.sent += 1
            await asyncio.wait_for(exchange(*conn, request, outcome, totals, track=True),
                                   spec.timeout)
        except FAILURES as exc:
            outcome.error = type(exc).__name__
        finally:
            if conn is not None:
                conn[1].close()
        totals.outcomes.append(outcome)

    await asyncio.gather(*(one(i) for i in range(spec.concurrency)))
    return totals, begin, time.perf_counter()


def percentiles(values: list[float]) -> dict[str, float]:
    if not values:
        return {}
    values = sorted(values)

    def at(fraction: float) -> float:
        return round(values[min(len(values) - 1, int(fraction * len(values)))], 3)

    return {"p50": at(0.5), "p90": at(0.9), "p99": at(0.99), "min": round(values[0], 3),
            "max": round(values[-1], 3), "mean": round(sum(values) / len(values), 3)}


def summarise(spec: Spec, totals: Totals, start: float, end: float) -> dict:
    good, bad = [], 0
    for o in totals.outcomes:
        complete = o.status == 200 and o.done and not o.error
        if complete and spec.expect_tokens and o.tokens < spec.expect_tokens:
            complete = False
        if complete:
            good.append(o)
        else:
            bad += 1
            totals.error(o.error or (f"http_{o.status}" if o.status != 200 else "incomplete"))
    last = max((o.ended for o in good), default=end)
    window = max(last - start, 1e-9)
    ttft = [(o.first_token - o.started) * 1000 for o in good if o.first_token is not None]
    per_stream = [(o.tokens - 1) / (o.last_token - o.first_token) for o in good
                  if o.tokens > 1 and o.last_token and o.first_token
                  and o.last_token > o.first_token]
    tokens = sum(o.tokens for o in good) if spec.mode != "chat" else 0
    meter = totals.meter
    metered = min(meter.end, end) - meter.start
    return {
        "mode": spec.mode, "concurrency": spec.concurrency, "requests": len(good),
        "errors": sum(totals.errors.values()), "error_kinds": totals.errors,
        "failed_requests": bad, "seconds": round(window, 3), "rps": round(len(good) / window, 1),
        "latency_ms": percentiles([(o.ended - o.started) * 1000 for o in good]),
        "ttft_ms": percentiles(ttft), "tokens": tokens,
        "tokens_per_s": round(meter.tokens / metered, 1) if spec.mode != "chat" else 0.0,
        "stream_tokens_per_s": percentiles(per_stream),
        "max_in_flight": totals.max_in_flight, "sent": totals.sent,
        **({"latencies_ms": [round((o.ended - o.started) * 1000, 4) for o in good]}
           if spec.raw else {}),
    }


def run(spec: Spec) -> dict:
    cpu0, wall0 = time.process_time(), time.perf_counter()
    runner = hold if spec.mode == "hold" else closed_loop
    totals, start, end = asyncio.run(runner(spec))
    result = summarise(spec, totals, start, end)
    wall = time.perf_counter() - wall0
    result["client_cpu"] = round((time.process_time() - cpu0) / wall, 3)
    result["client_wall"] = round(wall, 3)
    return result


def main() -> None:
    spec = Spec(**json.loads(sys.argv[1]))
    print(json.dumps(run(spec)), flush=True)


if __name__ == "__main__":
    main()
