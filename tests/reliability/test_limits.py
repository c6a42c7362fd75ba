"""What a caller may send, against daphne as `manage.py up` runs it: oversized bodies (413),
too many messages or tools (400), oversized headers (431) and bodies trickled to hold a
connection open (408), each answered in the caller's dialect, before any engine is asked."""

from __future__ import annotations

import json
import socket
import time

import httpx
import pytest

from gateway.dialects.openai_parse import MAX_MESSAGES, MAX_TOOLS
from tests.reliability.stack import seed

BODY_MB = 1
BODY_SECONDS = 2


@pytest.fixture
def daphne(stack, fake_engine):
    stack.env.update(FLOCK_MAX_BODY_MB=str(BODY_MB), FLOCK_BODY_TIMEOUT=str(BODY_SECONDS))
    keys = seed(stack.env, fake_engine.url)
    return stack.gateway(), keys, fake_engine


def post(gateway, path: str, key: str, body: bytes, **headers) -> httpx.Response:
    return httpx.post(gateway.url + path, content=body, timeout=30, headers={
        "authorization": f"Bearer {key}", "content-type": "application/json",
        "anthropic-version": "2023-06-01", **headers})


def assert_dialect(r: httpx.Response, path: str, status: int) -> None:
    assert r.status_code == status, r.text
    body = r.json()
    if path == "/v1/messages":
        assert body["type"] == "error" and body["error"]["type"] and body["error"]["message"]
    else:
        assert body["error"]["type"] and body["error"]["message"]
    assert "Traceback" not in r.text


def test_limits_are_answered_in_the_callers_dialect(daphne):
    gateway, keys, engine = daphne
    key = keys["alice"]
    huge = json.dumps({"model": "fake-model", "messages": [
        {"role": "user", "content": "x" * (BODY_MB * 1024 * 1024 + 1)}]}).encode()
    for path in ("/v1/chat/completions", "/v1/messages"):
        assert_dialect(post(gateway, path, key, huge), path, 413)
        assert_dialect(post(gateway, path, key, b"{}", **{"x-padding": "p" * 20_000}), path, 431)

    chunked = httpx.post(gateway.url + "/v1/chat/completions", timeout=30,
                         content=iter([huge[i:i + 65536] for i in range(0, len(huge), 65536)]),
                         headers={"authorization": f"Bearer {key}"})  # no length announced
    assert_dialect(chunked, "/v1/chat/completions", 413)

    many = [{"role": "user", "content": "x"}] * (MAX_MESSAGES + 1)
    r = post(gateway, "/v1/chat/completions", key,
             json.dumps({"model": "fake-model", "messages": many}).encode())
    assert_dialect(r, "/v1/chat/completions", 400)
    tools = [{"name": f"t{i}", "input_schema": {"type": "object"}} for i in range(MAX_TOOLS + 1)]
    r = post(gateway, "/v1/messages", key, json.dumps(
        {"model": "fake-model", "max_tokens": 5, "tools": tools,
         "messages": [{"role": "user", "content": "x"}]}).encode())
    assert_dialect(r, "/v1/messages", 400)
    assert engine.requests == []  # none of it reached the engine


def trickle(gateway, path: str, key: str, *, chunked: bool) -> tuple[int, dict]:
    """Sends the headers and then one byte a second; returns the status and body received."""
    port = int(gateway.url.rsplit(":", 1)[1])
    framing = "transfer-encoding: chunked" if chunked else "content-length: 1000"
    head = (f"POST {path} HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {key}\r\n"
            f"content-type: application/json\r\n{framing}\r\n\r\n")
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(head.encode())
        sock.settimeout(1.0)
        received = b""
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                sock.sendall(b"1\r\n{\r\n" if chunked else b"{")
            except OSError:
                pass
            try:
                data = sock.recv(65536)
            except TimeoutError:
                continue
            if not data:
                break
            received += data
        status = int(received.split(b" ", 2)[1])
        return status, json.loads(received.split(b"\r\n\r\n", 1)[1])


def test_a_client_trickling_its_body_gets_a_408_in_its_dialect(daphne):
    gateway, keys, engine = daphne
    status, body = trickle(gateway, "/v1/chat/completions", keys["alice"], chunked=False)
    assert status == 408 and body["error"]["type"] == "invalid_request_error"
    status, body = trickle(gateway, "/v1/messages", keys["alice"], chunked=True)
    assert status == 408 and body["type"] == "error"
    assert engine.requests == []


@pytest.fixture
def small_limits(settings):
    import dataclasses

    settings.FLOCK = dataclasses.replace(settings.FLOCK, max_body_bytes=1024, body_timeout_seconds=1)


def test_under_any_asgi_server_the_same_limits_hold(gateway, small_limits):
    """The in-process gateway runs under uvicorn, which streams the body to the application:
    the ASGI layer of gateway/request_limits.py answers there."""
    big = json.dumps({"model": "fake-model", "messages": [{"role": "user", "content": "x" * 2000}]})
    for path in ("/v1/chat/completions", "/v1/messages"):
        assert_dialect(post(gateway, path, gateway.user_key, big.encode()), path, 413)
    status, body = trickle(gateway, "/v1/messages", gateway.user_key, chunked=True)
    assert status == 408 and body["type"] == "error"
    assert gateway.engine.requests == []
