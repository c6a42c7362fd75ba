"""The gateway's own Prometheus metrics (flock_*), updated in-process on the request path.

Every update is an in-memory (or, in multi-process mode, memory-mapped) float add: no I/O, no
lock held across an await. Label values are bounded: protocol, outcome and reason come from fixed
sets, nodes from the cluster's own table, and model names are capped per process (MODEL_LABELS_MAX)
with the rest counted as "other", so a client inventing model names cannot grow the series."""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING, Any

from prometheus_client import Counter, Gauge, Histogram

if TYPE_CHECKING:
    from gateway.canonical import Usage
    from gateway.pipeline import Accounting

MODEL_LABELS_MAX = 50
OTHER = "other"
NONE = "none"
REJECTION_REASONS = {"quota_exceeded": "quota", "rate_limit_exceeded": "rate",
                     "model_not_allowed": "model_not_allowed"}
SAMPLE_SECONDS = 2.0

DURATION_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 30, 60, 120, 300, 600)
TTFT_BUCKETS = (0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 4, 8, 15, 30, 60)

REQUESTS = Counter("flock_requests_total", "Inference requests, by how they ended.",
                   ["model", "protocol", "node", "outcome"])
DURATION = Histogram("flock_request_duration_seconds",
                     "Time from the request's arrival to its last byte (the whole stream).",
                     ["model", "node"], buckets=DURATION_BUCKETS)
TTFT = Histogram("flock_time_to_first_token_seconds",
                 "Time from a streamed request's arrival to its first generated token.",
                 ["model", "node"], buckets=TTFT_BUCKETS)
PROMPT_TOKENS = Counter("flock_prompt_tokens_total", "Prompt tokens processed.", ["model", "node"])
COMPLETION_TOKENS = Counter("flock_completion_tokens_total", "Completion tokens generated.",
                            ["model", "node"])
INFLIGHT = Gauge("flock_inflight_requests", "Requests an engine is serving right now.",
                 ["node", "engine"], multiprocess_mode="livesum")
REJECTIONS = Counter("flock_rejections_total",
                     "Requests refused at admission, by reason (quota, rate, model_not_allowed).",
                     ["reason"])
FALLBACKS = Counter("flock_fallback_attempts_total",
                    "Attempts moved to the next candidate because this node's engine failed "
                    "before its first byte.", ["node"])
FALLBACK_SERVED = Counter("flock_fallback_served_total",
                          "Requests answered by a model of the requested one's fallback chain "
                          "(after failures, or first when the primary was slow).",
                          ["requested", "served"])
ATTEMPTS = Histogram("flock_request_attempts", "Engines tried per request (1: no fallback).",
                     buckets=(1, 2, 3, 4, 6, 10))
BUFFER_DEPTH = Gauge("flock_usage_buffer_depth", "Usage records waiting to be written.",
                     multiprocess_mode="livesum")
DROPPED = Counter("flock_usage_records_dropped_total",
                  "Usage records dropped because the buffer was full (should stay 0).")

for _reason in sorted(set(REJECTION_REASONS.values())):
    REJECTIONS.labels(_reason)  # present at 0, so rate() and alerts work from the start

_models: set[str] = set()
_inflight_children: dict[tuple[str, str], Gauge] = {}
_series: dict[tuple, Any] = {}


def series(metric, *values: str):
    """`metric.labels(*values)`, looked up once per process: labels() validates and locks on
    every call, and a request makes several."""
    key = (id(metric), values)
    child = _series.get(key)
    if child is None:
        child = metric.labels(*values)
        if len(_series) < 8192:  # models are capped, nodes and outcomes few
            _series[key] = child
    return child


def model_label(model: str, *, served: bool) -> str:
    """`model` itself once an engine served it (up to MODEL_LABELS_MAX names per process);
    names no engine served, and any beyond the cap, are "other"."""
    if model in _models:
        return model
    if served and model and len(_models) < MODEL_LABELS_MAX:
        _models.add(model)
        return model
    return OTHER


def inflight(node: str, engine: str) -> Gauge:
    child = _inflight_children.get((node, engine))
    if child is None:
        child = _inflight_children[(node, engine)] = INFLIGHT.labels(node or NONE, engine or NONE)
    return child


def fallback(node: str) -> None:
    FALLBACKS.labels(node or NONE).inc()


def request_recorded(acct: Accounting, usage: Usage, latency: float, ttft: float | None) -> None:
    """One finished request: its outcome, duration, first token and tokens."""
    _sampler_start()
    served = bool(acct.node)
    model = model_label(acct.model, served=served)
    node = acct.node or NONE
    series(REQUESTS, model, acct.protocol, node, acct.outcome).inc()
    series(DURATION, model, node).observe(latency)
    if ttft is not None and acct.stream:
        series(TTFT, model, node).observe(ttft)
    if usage.prompt_tokens:
        series(PROMPT_TOKENS, model, node).inc(usage.prompt_tokens)
    if usage.completion_tokens:
        series(COMPLETION_TOKENS, model, node).inc(usage.completion_tokens)
    if acct.attempts:
        ATTEMPTS.observe(acct.attempts)
    if acct.rank and acct.outcome == "ok":
        FALLBACK_SERVED.labels(model_label(acct.requested, served=True), model).inc()
    reason = REJECTION_REASONS.get(acct.error_type)
    if reason is not None:
        REJECTIONS.labels(reason).inc()


# The usage buffer lives in each process; a thread samples its depth (and its dropped count,
# as a counter) every SAMPLE_SECONDS, so the summed gauge is never staler than that.
class _Sampler:
    thread: threading.Thread | None = None
    dropped_seen = 0
    lock = threading.Lock()


def usage_buffer_sample() -> None:
    from accounts.usage_buffer import buffer

    BUFFER_DEPTH.set(len(buffer))
    with _Sampler.lock:
        dropped = buffer.dropped
        if dropped > _Sampler.dropped_seen:
            DROPPED.inc(dropped - _Sampler.dropped_seen)
            _Sampler.dropped_seen = dropped


def _sampler_run() -> None:
    while True:
        time.sleep(SAMPLE_SECONDS)
        try:
            usage_buffer_sample()
        except Exception:  # a metrics sample must never take the process down
            pass


def _sampler_start() -> None:
    if _Sampler.thread is not None:
        return
    with _Sampler.lock:
        if _Sampler.thread is None:
            _Sampler.thread = threading.Thread(target=_sampler_run, name="flock-metrics-sample",
                                               daemon=True)
            _Sampler.thread.start()
