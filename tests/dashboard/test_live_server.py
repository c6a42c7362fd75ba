"""Against the real ASGI server: the websocket behind live panels, the playground's streaming
proxy and Connect's test request."""

from __future__ import annotations

import json
import time

import httpx
import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import connect

from accounts.models import ApiKey
from accounts.services import key_create
from cluster.models import Node, NodeRole


def _ws(gateway, *, cookies: dict[str, str] | None = None, origin: str | None = None):
    headers = {}
    if cookies:
        headers["cookie"] = "; ".join(f"{k}={v}" for k, v in cookies.items())
    return connect(gateway.url.replace("http://", "ws://") + "/ws/live",
                   additional_headers=headers, origin=origin, open_timeout=10)


def _refused(gateway, **kwargs) -> bool:
    try:
        with _ws(gateway, **kwargs) as socket:
            socket.recv(timeout=5)
    except (ConnectionClosed, InvalidStatus):
        return True
    return False


def test_the_websocket_pushes_panels_to_a_signed_in_admin_and_then_changes(gateway, live_admin):
    with _ws(gateway, cookies=dict(live_admin.http.cookies), origin=gateway.url) as socket:
        socket.send(json.dumps({"panels": ["nodes", "chips", "nope"], "params": ""}))
        seen: dict[str, str] = {}
        deadline = time.monotonic() + 15
        while set(seen) != {"nodes", "chips"} and time.monotonic() < deadline:
            seen.update(json.loads(socket.recv(timeout=10))["panels"])
        assert "leader" in seen["nodes"] and "engine reachable" in seen["chips"]
        Node.objects.create(name="late-worker", role=NodeRole.WORKER, engine="ollama",
                            engine_endpoint="http://127.0.0.1:9")
        update = json.loads(socket.recv(timeout=10))["panels"]
        assert "late-worker" in update["nodes"]


def test_the_websocket_refuses_strangers_and_other_sites(gateway, live_admin):
    assert _refused(gateway, origin=gateway.url)  # no session
    assert _refused(gateway, cookies=dict(live_admin.http.cookies), origin="http://evil.example")
    assert _refused(gateway, cookies=dict(live_admin.http.cookies))  # no Origin at all


def test_the_playground_streams_an_answer_through_the_gateway(gateway, live_admin):
    gateway.engine.script.text = "one two three four"
    gateway.engine.script.token_delay = 0.05
    chunks = []
    with live_admin.http.stream("POST", "/playground/chat", headers={
            "x-csrftoken": live_admin.csrf, "content-type": "application/json",
            "accept": "text/event-stream"}, json={
            "model": "fake-model", "stream": True,
            "messages": [{"role": "user", "content": "count"}]}) as answer:
        assert answer.headers["content-type"].startswith("text/event-stream")
        for line in answer.iter_lines():
            if line.startswith("data: {"):
                delta = json.loads(line[6:])["choices"][0]["delta"]
                if delta.get("content"):
                    chunks.append((time.monotonic(), delta["content"]))
    assert "".join(text for _, text in chunks) == "one two three four"
    assert chunks[-1][0] - chunks[0][0] > 0.1  # arrived one by one, not all at the end
    record = gateway.usage_records()[-1]
    assert (record.key_name, record.model, record.stream) == ("dashboard:ada", "fake-model", True)


def test_the_playground_answers_errors_in_the_openai_shape_and_needs_the_csrf_token(gateway,
                                                                                   live_admin):
    missing = live_admin.post("/playground/chat", json={
        "model": "no-such-model", "messages": [{"role": "user", "content": "hi"}]})
    assert missing.status_code == 404 and "no-such-model" in missing.json()["error"]["message"]
    forged = live_admin.http.post("/playground/chat", json={"model": "fake-model", "messages": []})
    assert forged.status_code == 403
    stranger = httpx.post(gateway.url + "/playground/chat", json={"model": "fake-model"})
    assert stranger.status_code == 403  # refused before it reaches the view


def test_connect_tests_a_key_with_a_real_request_through_the_gateway(gateway, live_admin):
    token = key_create(name="dave", scope="user").plaintext
    good = live_admin.post("/connect/test", data={"token": token, "model": "fake-model"}).json()
    assert good["ok"] and good["reply"] == "Hello from the fake engine"
    assert "fake-model" in good["models"]
    bad = live_admin.post("/connect/test", data={"token": "sk-flock-nope", "model": "fake-model"})
    assert not bad.json()["ok"] and "401" in bad.json()["message"]
    none = live_admin.post("/connect/test", data={"model": "fake-model"}).json()
    assert not none["ok"] and "create one" in none["message"]
    used = ApiKey.objects.get(name="dave")
    assert [r.key_id for r in gateway.usage_records()] == [used.pk]


@pytest.mark.parametrize("path", ["/", "/healthz"])
def test_head_and_get_on_the_probes_stay_fast_for_api_clients(gateway, path):
    with httpx.Client(base_url=gateway.url) as http:
        http.get(path)
        started = time.monotonic()
        for _ in range(20):
            assert http.head(path).status_code == 200
            assert http.get(path).headers["content-type"] == "application/json"
        assert (time.monotonic() - started) / 40 < 0.05


def test_the_websocket_closes_when_the_session_ends(gateway, live_admin, monkeypatch):
    from django.contrib.sessions.models import Session as StoredSession

    from flocksite.dashboard import consumers

    monkeypatch.setattr(consumers, "SESSION_CHECK_SECONDS", 0.2)
    with _ws(gateway, cookies=dict(live_admin.http.cookies), origin=gateway.url) as socket:
        socket.send(json.dumps({"panels": ["keys"], "params": ""}))
        assert "keys" in json.loads(socket.recv(timeout=10))["panels"]
        StoredSession.objects.all().delete()  # signed out elsewhere, or expired
        with pytest.raises(ConnectionClosed) as closed:
            while True:
                socket.recv(timeout=10)
        assert closed.value.rcvd.code == consumers.CLOSE_SIGNED_OUT
