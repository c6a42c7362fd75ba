"""A closed-loop load generator for the reliability tests: `concurrency` workers, each on its own
keep-alive HTTP/1.1 connection (raw asyncio streams: a client library would cost more CPU than
the gateway it measures on two cores), share a list of requests (OpenAI and Anthropic, streamed
or not) spread over several gateway URLs. Every answer is checked for what a client would
notice: the status, and a stream that ends properly."""

from __future__ import annotations

import asyncio
import itertools
import json
from collections import Counter
from dataclasses import dataclass, field

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


def _request(kind: str, key: str) -> bytes:
    stream = kind.endswith("-stream")
    if kind.startswith("anthropic"):
        path, body = "/v1/messages", {**ANTHROPIC, "stream": stream}
        auth = f"x-api-key: {key}\r\nanthropic-version: 2023-06-01\r\n"
    else:
        path, body = "/v1/chat/completions", {**OPENAI, "stream": stream}
        auth = f"authorization: Bearer {key}\r\n"
    data = json.dumps(body).encode()
    return (f"POST {path} HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\n"
            f"content-length: {len(data)}\r\n{auth}\r\n").encode() + data


async def _response(reader: asyncio.StreamReader) -> tuple[int, dict[str, str], bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    headers = {k.strip().lower(): v.strip() for k, _, v in
               (line.partition(":") for line in lines[1:] if line)}
    if "content-length" in headers:
        return status, headers, await reader.readexactly(int(headers["content-length"]))
    body = bytearray()
    if headers.get("transfer-encoding", "").lower() == "chunked":
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
            body += await reader.readexactly(size + 2)
            if size == 0:
                return status, headers, bytes(body)
    return status, headers, await reader.read()  # until the server closes


async def _worker(plan, tally: Tally, host: str = "127.0.0.1") -> None:
    connections: dict[int, tuple[asyncio.StreamReader, asyncio.StreamWriter]] = {}
    try:
        for port, kind, key in plan:
            try:
                if port not in connections:
                    connections[port] = await asyncio.open_connection(host, port)
                reader, writer = connections[port]
                writer.write(_request(kind, key))
                status, headers, body = await asyncio.wait_for(_response(reader), 60)
            except (OSError, asyncio.IncompleteReadError, TimeoutError, ValueError) as exc:
                tally.transport_errors[type(exc).__name__] += 1
                connections.pop(port, None)
                continue
            tally.statuses[status] += 1
            if "x-request-id" in headers:
                tally.request_ids.append(headers["x-request-id"])
            if kind.endswith("-stream") and status == 200 and not (
                    b"data: [DONE]" in body or b"event: message_stop" in body):
                tally.broken_streams += 1
            if headers.get("connection", "").lower() == "close":
                connections.pop(port)[1].close()
    finally:
        for _reader, writer in connections.values():
            writer.close()


async def _run(ports: list[int], keys: list[str], total: int, concurrency: int) -> Tally:
    tally = Tally()
    plan = iter(itertools.islice(zip(itertools.cycle(ports), itertools.cycle(KINDS),
                                     itertools.cycle(keys)), total))
    await asyncio.gather(*(_worker(plan, tally) for _ in range(concurrency)))
    return tally


def run(urls: list[str], keys: list[str], *, total: int, concurrency: int) -> Tally:
    ports = [int(url.rsplit(":", 1)[1]) for url in urls]
    return asyncio.run(_run(ports, keys, total, concurrency))
