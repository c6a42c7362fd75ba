"""500 clients open streams and vanish (the socket closed without a word): the gateway cancels
every upstream request, and still records each one as aborted."""

from __future__ import annotations

import json
import socket
from concurrent.futures import ThreadPoolExecutor
from http.server import ThreadingHTTPServer

import pytest

from tests.fakes.openai_server import FakeOpenAIEngine
from tests.reliability.stack import wait_for

CLIENTS = 500
TOKENS = 400  # streams that would run for 20 s: long past the test, so only a cancel ends them


@pytest.fixture
def slow_engine(monkeypatch):
    monkeypatch.setattr(ThreadingHTTPServer, "request_queue_size", 1024)
    engine = FakeOpenAIEngine().start()
    engine.script.text = " ".join(["tok"] * TOKENS)
    engine.script.token_delay = 0.05
    yield engine
    engine.stop()


def open_and_vanish(port: int, key: str, n: int) -> bool:
    """Sends a streamed request, waits for its first generated token, then closes the socket."""
    if n % 2:
        path, body, auth = "/v1/messages", {"model": "fake-model", "max_tokens": 1000, "stream": True,
                                            "messages": [{"role": "user", "content": "hi"}]}, "x-api-key"
    else:
        path, body, auth = "/v1/chat/completions", {"model": "fake-model", "stream": True,
                                                    "messages": [{"role": "user", "content": "hi"}]}, None
    data = json.dumps(body).encode()
    head = (f"POST {path} HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\n"
            f"content-length: {len(data)}\r\n"
            + (f"x-api-key: {key}\r\nanthropic-version: 2023-06-01\r\n" if auth
               else f"authorization: Bearer {key}\r\n") + "\r\n")
    with socket.create_connection(("127.0.0.1", port), timeout=60) as sock:
        sock.sendall(head.encode() + data)
        seen = b""
        while b"tok" not in seen:
            chunk = sock.recv(4096)
            if not chunk:
                return False
            seen += chunk
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    return True  # closed with a reset, as a killed client's kernel would


def test_five_hundred_clients_that_vanish_cancel_every_upstream_stream(gateway, slow_engine, _server):
    from cluster.models import Node

    Node.objects.filter(role="leader").update(engine_endpoint=slow_engine.url)
    with ThreadPoolExecutor(max_workers=50) as pool:
        opened = list(pool.map(lambda n: open_and_vanish(_server.port, gateway.user_key, n),
                               range(CLIENTS)))
    assert all(opened)

    wait_for(lambda: slow_engine.disconnects == CLIENTS, 60, "every upstream stream cancelled")
    assert slow_engine.streams_finished == 0
    assert len(slow_engine.requests) == CLIENTS
    wait_for(lambda: len(gateway.usage_records()) == CLIENTS, 30, "every stream recorded")
    records = gateway.usage_records()
    assert len(records) == CLIENTS
    assert {r.outcome for r in records} == {"aborted"}
