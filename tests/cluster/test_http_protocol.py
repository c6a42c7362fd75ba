"""The server's protocol sends an answer of known length in one write, and streams at once."""

from __future__ import annotations

import asyncio
import logging

from uvicorn.protocols.http.flow_control import FlowControl

from cluster.http_protocol import OneWriteCycle

BODY = b'{"ok": true}'


class Transport:
    def __init__(self) -> None:
        self.writes: list[bytes] = []
        self.closed = False

    def write(self, data: bytes) -> None:
        self.writes.append(data)

    def close(self) -> None:
        self.closed = True

    def is_closing(self) -> bool:
        return self.closed


def cycle(transport: Transport, *, keep_alive: bool = True) -> OneWriteCycle:
    log = logging.getLogger("test")
    return OneWriteCycle(scope={"method": "POST", "http_version": "1.1"}, transport=transport,
                         flow=FlowControl(transport), logger=log, access_logger=log,
                         access_log=False, default_headers=[], message_event=asyncio.Event(),
                         expect_100_continue=False, keep_alive=keep_alive,
                         on_response=lambda: None)


def start(*headers: tuple[bytes, bytes]) -> dict:
    return {"type": "http.response.start", "status": 200,
            "headers": [(b"content-type", b"application/json"), *headers]}


def run(*messages: dict, keep_alive: bool = True) -> tuple[Transport, list[int]]:
    """Sends `messages`; returns the transport and how many writes it had after each one."""
    transport = Transport()

    async def go() -> list[int]:
        c = cycle(transport, keep_alive=keep_alive)
        counts = []
        for message in messages:
            await c.send(message)
            counts.append(len(transport.writes))
        return counts

    return transport, asyncio.run(go())


def test_an_answer_of_known_length_leaves_in_one_write():
    transport, counts = run(start((b"content-length", str(len(BODY)).encode())),
                            {"type": "http.response.body", "body": BODY})
    assert counts == [0, 1]
    (sent,) = transport.writes
    assert sent.startswith(b"HTTP/1.1 200 OK\r\n") and b"content-length: 12\r\n" in sent
    assert sent.endswith(b"\r\n\r\n" + BODY) and b"transfer-encoding" not in sent
    assert not transport.closed


def test_a_stream_sends_its_headers_at_once_and_each_chunk_as_it_comes():
    transport, counts = run(start((b"content-type", b"text/event-stream")),
                            {"type": "http.response.body", "body": b"data: 1\n\n",
                             "more_body": True},
                            {"type": "http.response.body", "body": b"", "more_body": False})
    assert counts == [1, 2, 3]
    assert b"transfer-encoding: chunked" in transport.writes[0]
    assert transport.writes[1] == b"9\r\ndata: 1\n\n\r\n" and transport.writes[2] == b"0\r\n\r\n"


def test_a_known_length_sent_in_parts_arrives_whole():
    transport, counts = run(start((b"content-length", b"12")),
                            {"type": "http.response.body", "body": BODY[:5], "more_body": True},
                            {"type": "http.response.body", "body": BODY[5:]})
    sent = b"".join(transport.writes)
    assert counts[0] == 0 and sent.endswith(b"\r\n\r\n" + BODY)


def test_a_connection_that_ends_is_closed_after_the_write():
    transport, counts = run(start((b"content-length", str(len(BODY)).encode())),
                            {"type": "http.response.body", "body": BODY}, keep_alive=False)
    assert counts == [0, 1] and transport.closed
    assert b"connection: close\r\n" in transport.writes[0]
