"""Accounting for one request: what it asked, who served it, what it cost and how it ended,
recorded once as a usage record however the request ends."""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Awaitable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar

from accounts.selectors import KeyInfo
from accounts.usage_buffer import UsageEvent, usage_record
from gateway import observe
from gateway.canonical import Event, ReasoningDelta, TextDelta, ToolCallDelta, Usage
from gateway.errors import GatewayError
from gateway.fallback import latencies
from gateway.middleware import request_id_new
from gateway.router import Candidate

T = TypeVar("T")
log = logging.getLogger("flock.gateway")


def new_id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:24]}"


@dataclass
class Accounting:
    """Everything we learn about one request while serving it, recorded once at the end."""

    protocol: str
    endpoint: str
    key: KeyInfo | None
    model: str
    stream: bool = False
    request_id: str = ""  # the response's x-request-id; made here when the request had none
    started: float = field(default_factory=time.monotonic)
    created: int = field(default_factory=lambda: int(time.time()))
    requested: str = ""  # the model the caller named; `model` becomes the one that served it
    node: str = ""
    engine: str = ""
    rank: int = 0  # the serving candidate's place in the fallback chain (0: the model asked for)
    attempt_started: float | None = None
    first_token_at: float | None = None
    usage: Usage | None = None
    generated_pieces: int = 0
    prompt_estimate: int = 0
    reservation: Any = None  # accounts.quota.Reservation, settled in finish()
    outcome: str = "ok"
    status_code: int = 200
    error_type: str = ""
    recorded: bool = False
    observed: Any = field(default=None, repr=False)  # gateway.observe.Observation

    def __post_init__(self) -> None:
        self.requested = self.requested or self.model
        if not self.request_id:
            self.request_id = request_id_new()

    @classmethod
    def of(cls, request, **fields) -> Accounting:
        """Accounting for `request`, under the id the response carries."""
        acct = cls(key=getattr(request, "auth", None),
                   request_id=getattr(request, "flock_request_id", None) or "", **fields)
        acct.observed = observe.request_started(acct, request)  # metrics and traces
        return acct

    async def watch(self, work: Awaitable[T]) -> T:
        """Awaits `work`; when it fails, records the request as failed before the error goes on
        to become the response."""
        try:
            return await work
        except GatewayError as exc:
            self.failed(exc)
            await self.finish()
            raise

    def served_by(self, candidate: Candidate) -> None:
        self.node, self.engine, self.model = candidate.node, candidate.engine.kind, candidate.model
        self.rank = candidate.rank
        self.attempt_started = time.monotonic()

    @property
    def attempts(self) -> int:
        """Engines tried for this request (more than one when some failed first)."""
        return self.observed.attempts if self.observed is not None else 0

    def saw(self, event: Event) -> None:
        if isinstance(event, (TextDelta, ReasoningDelta, ToolCallDelta)):
            if self.first_token_at is None:
                self.first_token_at = time.monotonic()
            self.generated_pieces += 1
        elif isinstance(event, Usage):
            self.usage = event

    def answered(self, usage: Usage) -> None:
        """A whole (non-streamed) answer arrived: its first token came with it."""
        self.first_token_at = time.monotonic()
        self.usage = usage

    def failed(self, error: Exception, *, aborted: bool = False) -> None:
        if aborted:
            self.outcome, self.status_code, self.error_type = "aborted", 499, "client_disconnected"
            return
        self.outcome = "error"
        if isinstance(error, GatewayError):
            self.status_code, self.error_type = error.status, error.code or error.kind
        else:
            self.status_code, self.error_type = 500, type(error).__name__

    def final_usage(self) -> Usage:
        """What the engine reported, or, for a request cut short, what we saw of it."""
        if self.usage is not None:
            return self.usage
        if self.first_token_at is None and self.outcome != "ok":
            return Usage()  # nothing reached the engine's output
        return Usage(prompt_tokens=self.prompt_estimate, completion_tokens=self.generated_pieces)

    async def finish(self) -> None:
        """Settles the quota reservation with the true count, then records the request."""
        if self.recorded:
            return
        if self.reservation is not None:
            from accounts.quota import quota_settle

            usage = self.final_usage()
            try:
                await quota_settle(self.reservation, usage.prompt_tokens + usage.completion_tokens)
            except Exception:  # a cache outage must not lose the usage record
                log.exception("could not settle the quota of request %s", self.request_id)
        self.record()

    def record(self) -> None:
        if self.recorded:
            return
        self.recorded = True
        now = time.monotonic()
        usage = self.final_usage()
        ttft = self.first_token_at - self.started if self.first_token_at else None
        if self.outcome == "ok" and self.first_token_at and self.attempt_started:
            latencies.note(self.model, self.first_token_at - self.attempt_started)
        observe.request_recorded(self, usage, now - self.started, ttft)  # metrics and traces
        usage_record(UsageEvent(
            created_at=datetime.now(UTC),
            request_id=self.request_id,
            model=self.model,
            protocol=self.protocol,
            endpoint=self.endpoint,
            outcome=self.outcome,
            key_id=self.key.id if self.key and self.key.id else None,
            key_name=self.key.name if self.key else "",
            node=self.node,
            engine=self.engine,
            stream=self.stream,
            prompt_tokens=usage.prompt_tokens,
            completion_tokens=usage.completion_tokens,
            latency_ms=int((now - self.started) * 1000),
            ttft_ms=int((self.first_token_at - self.started) * 1000) if self.first_token_at else None,
            status_code=self.status_code,
            error_type=self.error_type,
            attempts=self.attempts,
            requested_model=self.requested[:200],
        ))


def estimate_tokens(text: str) -> int:
    return max(1, len(text) // 4) if text else 0
