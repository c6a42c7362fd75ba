"""Who may call what, and where secrets never go. Each credential against each kind of route:
a user key never reaches /admin/v1, a node key neither inference nor the admin routes, a revoked
or expired key nothing at all. Then a session of ordinary and failing traffic, with every log
line, error body, metrics label, the config view and the audit trail searched for any secret.

Also covered elsewhere: failed-auth limits per address (test_auth_abuse.py), join tokens used
once and expiring (tests/cluster/test_membership.py, test_nodes_api.py), dashboard forms
needing the CSRF token and pages never showing a key (tests/dashboard/test_pages.py)."""

from __future__ import annotations

import dataclasses
import json
import logging
from datetime import timedelta

import httpx
import pytest
from django.utils import timezone

from tests.reliability.stack import wait_for

CHAT = {"model": "fake-model", "messages": [{"role": "user", "content": "hi"}]}
MESSAGES = {"model": "fake-model", "max_tokens": 8, "messages": [{"role": "user", "content": "hi"}]}
INFERENCE = [("POST", "/v1/chat/completions", CHAT), ("POST", "/v1/messages", MESSAGES),
             ("GET", "/v1/models", None), ("POST", "/v1/embeddings",
                                           {"model": "fake-embed", "input": "hi"})]
ADMIN = [("GET", "/admin/v1/tokens", None), ("GET", "/admin/v1/config", None),
         ("GET", "/admin/v1/usage/recent", None), ("POST", "/admin/v1/nodes/tokens", None),
         ("GET", "/admin/v1/audit/recent", None)]  # /metrics: open to loopback by design
VENDOR = {"anthropic_api_key": "sk-ant-api03-vendor-secret-AAAA",
          "openai_api_key": "sk-proj-vendor-secret-BBBB", "vllm_api_key": "vllm-secret-CCCC"}


def call(gateway, method: str, path: str, body, key: str) -> httpx.Response:
    return httpx.request(method, gateway.url + path, json=body, timeout=30,
                         headers={"authorization": f"Bearer {key}",
                                  "anthropic-version": "2023-06-01"})


def statuses(gateway, routes, key: str) -> set[int]:
    return {call(gateway, method, path, body, key).status_code for method, path, body in routes}


def test_keys_are_compared_in_constant_time(transactional_db, monkeypatch):
    from accounts import keys
    from accounts.selectors import key_authenticate
    from accounts.services import key_create

    compared = []
    real = keys.hmac.compare_digest
    monkeypatch.setattr(keys.hmac, "compare_digest", lambda a, b: compared.append(1) or real(a, b))
    plaintext = key_create(name="alice").plaintext
    forged = plaintext[:-1] + ("A" if plaintext[-1] != "A" else "B")  # same lookup, wrong secret
    assert key_authenticate(plaintext) is not None
    assert key_authenticate(forged) is None
    assert len(compared) == 2  # the secret is never compared with ==


def test_each_credential_reaches_only_its_routes(gateway):
    from accounts.models import ApiKey
    from accounts.services import key_create

    node = key_create(name="node:w1", scope="node").plaintext
    expired = key_create(name="old-admin", scope="admin").plaintext
    ApiKey.objects.filter(name="old-admin").update(expires_at=timezone.now() - timedelta(minutes=1))
    revoked = key_create(name="gone", scope="admin").plaintext
    ApiKey.objects.filter(name="gone").update(revoked_at=timezone.now())

    assert statuses(gateway, INFERENCE, gateway.user_key) == {200}
    assert statuses(gateway, ADMIN, gateway.user_key) == {403}
    assert statuses(gateway, INFERENCE + ADMIN, node) == {403}
    assert statuses(gateway, INFERENCE + ADMIN, expired) == {401}
    assert statuses(gateway, INFERENCE + ADMIN, revoked) == {401}
    assert statuses(gateway, INFERENCE, gateway.admin_key) == {200}
    assert {s for s in statuses(gateway, ADMIN, gateway.admin_key)} <= {200, 201}


def test_a_key_revoked_while_in_use_is_refused_everywhere_at_once(gateway):
    assert call(gateway, "POST", "/v1/chat/completions", CHAT, gateway.user_key).status_code == 200
    key_id = next(k["id"] for k in call(gateway, "GET", "/admin/v1/tokens", None,
                                         gateway.admin_key).json()["data"] if k["name"] == "alice")
    assert call(gateway, "DELETE", f"/admin/v1/tokens/{key_id}", None,
                gateway.admin_key).status_code == 200
    wait_for(lambda: statuses(gateway, INFERENCE, gateway.user_key) == {401}, 5,
             "the revoked key refused on every inference route")


def test_the_django_admin_login_needs_the_csrf_token(transactional_db):
    from django.test import Client

    client = Client(enforce_csrf_checks=True)
    r = client.post("/admin/login/", {"username": "a", "password": "b"})
    assert r.status_code == 403


@pytest.fixture
def vendor_keys(settings):
    settings.FLOCK = dataclasses.replace(settings.FLOCK, **VENDOR)


def test_no_secret_reaches_logs_bodies_metrics_config_or_audit(gateway, vendor_keys, caplog):
    from accounts.models import AuditEntry

    caplog.set_level(logging.DEBUG)
    admin = gateway.admin_key
    created = call(gateway, "POST", "/admin/v1/tokens", {"name": "carol"}, admin).json()["token"]
    join = call(gateway, "POST", "/admin/v1/nodes/tokens", None, admin).json()["token"]
    registered = httpx.post(gateway.url + "/admin/v1/nodes/register", timeout=30,
                            headers={"authorization": f"Bearer {join}"},
                            json={"name": "w1", "agent_url": "http://10.0.0.7:8090",
                                  "engine": "vllm", "engine_endpoint": "http://127.0.0.1:8000"})
    node_key = registered.json()["key"]
    guessed = "sk-flock-" + "x" * 44
    secrets = [admin, gateway.user_key, created, join, node_key, guessed, *VENDOR.values()]

    bodies = []
    for key in (gateway.user_key, created, guessed, node_key):
        for method, path, body in INFERENCE:
            bodies.append(call(gateway, method, path, body, key).text)
    bodies.append(call(gateway, "POST", "/v1/chat/completions", {**CHAT, "model": "nope"},
                       gateway.user_key).text)
    gateway.engine.script.fail_status = 500  # an engine failure, relayed as an error
    bodies.append(call(gateway, "POST", "/v1/messages", MESSAGES, gateway.user_key).text)
    bodies.append(call(gateway, "POST", "/admin/v1/nodes/register", {"name": "w2"}, join).text)
    for method, path, body in ADMIN:
        if path != "/admin/v1/nodes/tokens":  # that one hands out a new token by design
            bodies.append(call(gateway, method, path, body, admin).text)
    bodies.append(call(gateway, "GET", "/metrics", None, admin).text)
    gateway.usage_records()
    audit = json.dumps([[e.actor, e.action, e.target, e.details] for e in AuditEntry.objects.all()])

    searched = {"logs": caplog.text, "bodies": "\n".join(bodies), "audit": audit}
    for where, text in searched.items():
        leaked = [s[:12] for s in secrets if s in text]
        assert not leaked, f"secrets in {where}: {leaked}"
    assert "***" in call(gateway, "GET", "/admin/v1/config", None, admin).text
