"""A closed-loop load generator for the reliability tests: `concurrency` workers share a list of
requests (OpenAI and Anthropic, streamed or not) spread over several gateway URLs, and every
answer is checked for what a client would notice: the status, and a stream that ends properly."""

from __future__ import annotations

import asyncio
import itertools
from collections import Counter
from dataclasses import dataclass, field

import httpx

OPENAI = {"model": "fake-model", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 16}
ANTHROPIC = {"model": "fake-model", "max_tokens": 16,
             "messages": [{"role": "user", "content": "hi"}]}
KINDS = ("openai", "openai-stream", "anthropic", "anthropic-stream")


@dataclass
class Tally:
    statuses: Counter = field(default_factory=Counter)
    broken_streams: int = 0
    transport_errors: Counter = field(default_factory=Counter)
    request_ids: list[str] = field(default_factory=list)

    @property
    def sent(self) -> int:
        return sum(self.statuses.values()) + sum(self.transport_errors.values())

    @property
    def server_errors(self) -> int:
        return sum(n for status, n in self.statuses.items() if status >= 500)


def _request(kind: str, key: str) -> tuple[str, dict, dict]:
    stream = kind.endswith("-stream")
    if kind.startswith("anthropic"):
        return ("/v1/messages", {**ANTHROPIC, "stream": stream},
                {"x-api-key": key, "anthropic-version": "2023-06-01"})
    return "/v1/chat/completions", {**OPENAI, "stream": stream}, {"authorization": f"Bearer {key}"}


async def _one(client: httpx.AsyncClient, base: str, kind: str, key: str, tally: Tally) -> None:
    path, body, headers = _request(kind, key)
    try:
        if not body["stream"]:
            r = await client.post(base + path, json=body, headers=headers)
            tally.statuses[r.status_code] += 1
        else:
            async with client.stream("POST", base + path, json=body, headers=headers) as r:
                text = (await r.aread()).decode()
                tally.statuses[r.status_code] += 1
                ended = "data: [DONE]" in text or "event: message_stop" in text
                if r.status_code == 200 and not ended:
                    tally.broken_streams += 1
        if "x-request-id" in r.headers:
            tally.request_ids.append(r.headers["x-request-id"])
    except httpx.HTTPError as exc:
        tally.transport_errors[type(exc).__name__] += 1


async def _run(bases: list[str], keys: list[str], total: int, concurrency: int) -> Tally:
    tally = Tally()
    plan = iter(itertools.islice(zip(itertools.cycle(bases), itertools.cycle(KINDS),
                                     itertools.cycle(keys)), total))
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(limits=limits, timeout=60) as client:
        async def worker() -> None:
            for base, kind, key in plan:
                await _one(client, base, kind, key, tally)

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return tally


def run(bases: list[str], keys: list[str], *, total: int, concurrency: int) -> Tally:
    return asyncio.run(_run(bases, keys, total, concurrency))
