"""Every dashboard page: signed-in admins only, real data, no secret or hash on any page."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.contrib.sessions.models import Session as StoredSession
from django.test import Client
from django.utils import timezone

from accounts.models import UsageRecord
from accounts.services import key_create
from cluster.models import Node, NodeRole
from tests.dashboard.conftest import PAGES, PASSWORD


def _usage(n: int, **fields) -> None:
    now = timezone.now()
    UsageRecord.objects.bulk_create([UsageRecord(
        created_at=now - timedelta(seconds=i * 7), request_id=f"req_{fields.get('model', 'm')}_{i}",
        key_name=fields.get("key_name", "alice"), key_id=fields.get("key_id"),
        model=fields.get("model", "qwen3-8b"), protocol="openai", endpoint="chat.completions",
        prompt_tokens=10, completion_tokens=5, latency_ms=100 + i, ttft_ms=20,
        outcome=fields.get("outcome", "ok"), status_code=200 if fields.get("outcome", "ok") == "ok"
        else 503) for i in range(n)])


@pytest.mark.parametrize("path", PAGES)
def test_every_page_sends_a_stranger_to_the_login_page(transactional_db, path):
    answer = Client(HTTP_ACCEPT="text/html").get(path)
    assert answer.status_code == 302
    assert answer["location"].startswith("/login?next=")


def test_a_signed_in_user_who_is_not_staff_is_sent_to_the_login_page(transactional_db):
    from django.contrib.auth import get_user_model

    user = get_user_model().objects.create_user("bob", password=PASSWORD)
    client = Client(HTTP_ACCEPT="text/html")
    client.force_login(user)
    assert client.get("/nodes")["location"].startswith("/login")
    refused = Client().post("/login", {"username": "bob", "password": PASSWORD})
    assert refused.status_code == 200 and "not a Flock admin" in refused.content.decode()


def test_an_admin_signs_in_with_a_password_and_out_again(admin_user):
    client = Client(HTTP_ACCEPT="text/html")
    answer = client.post("/login", {"username": "ada", "password": PASSWORD, "next": "/nodes"})
    assert answer.status_code == 302 and answer["location"] == "/nodes"
    assert client.get("/nodes").status_code == 200
    assert client.post("/logout").status_code == 302
    assert client.get("/nodes").status_code == 302


def test_failed_sign_ins_are_limited_per_address(admin_user):
    from flocksite.dashboard.auth import LOGIN_FAILURES_ALLOWED

    guesser = Client(HTTP_ACCEPT="text/html", REMOTE_ADDR="203.0.113.9")
    for _ in range(LOGIN_FAILURES_ALLOWED):
        wrong = guesser.post("/login", {"username": "ada", "password": "guess"})
        assert "correct username and password" in wrong.content.decode()
    locked = guesser.post("/login", {"username": "ada", "password": PASSWORD})
    assert locked.status_code == 200 and "Too many failed sign-ins" in locked.content.decode()
    assert guesser.get("/nodes").status_code == 302  # the right password did not sign in
    other = Client(HTTP_ACCEPT="text/html", REMOTE_ADDR="198.51.100.4")
    assert other.post("/login", {"username": "ada", "password": PASSWORD}).status_code == 302


@pytest.mark.parametrize("path", PAGES)
def test_every_page_renders_for_an_admin(admin, path):
    answer = admin.get(path)
    assert answer.status_code == 200, answer.content[:2000]
    text = answer.content.decode()
    assert 'name="csrf-token"' in text and "Sign out" in text


def test_the_root_answers_api_clients_with_json_and_browsers_with_the_dashboard(admin):
    api = Client()
    assert api.head("/").status_code == 200
    probe = api.get("/", HTTP_ACCEPT="application/json")
    assert probe.json() == {"name": "flock", "api": "/v1", "health": "/healthz"}
    assert api.get("/").json()["name"] == "flock"  # curl sends Accept: */*
    assert "Requests per minute" in admin.get("/").content.decode()


def test_the_api_routes_keep_working_beside_the_dashboard(transactional_db):
    api = Client()
    assert api.get("/healthz").json() == {"status": "ok"}
    assert api.get("/v1/models").status_code == 401
    nope = api.get("/v1/nope")
    assert nope.status_code == 404 and "Unknown endpoint" in nope.json()["error"]["message"]
    assert api.get("/admin/v1/status").status_code == 401
    assert api.get("/admin/").status_code == 302  # Django admin's own login
    assert api.get("/readyz").status_code in (200, 503)


def test_an_expired_session_is_refused(admin):
    assert admin.get("/tokens").status_code == 200
    StoredSession.objects.update(expire_date=timezone.now() - timedelta(seconds=1))
    assert admin.get("/tokens")["location"].startswith("/login")


def test_sessions_end_with_the_browser_and_within_a_day():
    from django.conf import settings

    assert settings.SESSION_EXPIRE_AT_BROWSER_CLOSE
    assert settings.SESSION_COOKIE_AGE <= 24 * 3600


POSTS = ("/tokens/create", "/tokens/invite", "/tokens/1/revoke", "/nodes/join-token",
         "/nodes/1/drain", "/models/install", "/models/remove", "/connect/snippet",
         "/connect/key", "/connect/test", "/playground/chat", "/logout")


@pytest.mark.parametrize("path", POSTS)
def test_every_form_needs_the_csrf_token(admin_user, path):
    client = Client(enforce_csrf_checks=True)
    client.force_login(admin_user)
    assert client.post(path, {"name": "x"}).status_code == 403


def test_the_home_page_shows_traffic_latency_errors_and_the_top_model(admin):
    Node.objects.create(name="leader", role=NodeRole.LEADER, engine="vllm",
                        engine_endpoint="http://127.0.0.1:9")
    _usage(30, model="qwen3-8b")
    _usage(3, model="gemma-3-4b", outcome="error")
    text = admin.get("/").content.decode()
    assert 'data-kpi="requests">33<' in text
    assert 'data-kpi="top-model">qwen3-8b<' in text
    assert 'data-tier="bad"' in text  # 3 of 33 failed: 9%
    assert "<polyline" in text and "badge error" in text
    assert "http://testserver/v1/chat/completions" in text  # the curl example's real base URL


def test_the_error_rate_colour_follows_its_tier():
    from flocksite.dashboard.home import error_tier

    assert [error_tier(r, 100) for r in (0.0, 0.02, 0.2)] == ["good", "warn", "bad"]
    assert error_tier(0.0, 0) == "idle"


def test_the_requests_per_minute_chart_scales_to_its_peak():
    from flocksite.dashboard.home import sparkline

    chart = sparkline([0] * 58 + [2, 4], width=590, height=90)
    assert chart["max"] == 4 and chart["total"] == 6
    assert chart["line"].startswith("0.0,86") and chart["line"].endswith("590.0,4.0")


def test_no_page_shows_a_key_or_its_hash(admin):
    issued = key_create(name="carol", scope="user")
    _usage(2, key_name="carol", key_id=issued.key.id)
    for path in PAGES:
        text = admin.get(path).content.decode()
        assert issued.plaintext not in text, path
        assert issued.key.secret_hash not in text, path
        assert issued.key.lookup not in text, path


def test_a_new_key_is_shown_once_then_only_its_prefix(admin):
    answer = admin.post("/tokens/create", {"name": "ci-bot", "scope": "user",
                                           "daily_token_quota": "5000", "rpm_limit": "10",
                                           "allowed_models": "qwen3-8b, gemma-3-4b",
                                           "expires_in_days": "30"})
    assert answer.status_code == 201 and answer["cache-control"] == "no-store"
    text = answer.content.decode()
    plaintext = text.split('id="issued-key">')[1].split("<")[0]
    assert plaintext.startswith("sk-flock-")
    from accounts.models import ApiKey

    key = ApiKey.objects.get(name="ci-bot")
    assert key.daily_token_quota == 5000 and key.allowed_models == ["qwen3-8b", "gemma-3-4b"]
    assert key.expires_at is not None
    again = admin.get("/tokens").content.decode()
    assert plaintext not in again and "ci-bot" in again and plaintext[:13] + "…" in again


def test_a_bad_key_form_says_which_field(admin):
    answer = admin.post("/tokens/create", {"name": "x", "daily_token_quota": "lots"})
    assert answer.status_code == 400
    assert "daily token quota must be a whole number" in answer.content.decode()


def test_revoking_a_key_is_audited_as_the_admin(admin):
    from accounts.models import AuditEntry

    issued = key_create(name="old", scope="user")
    answer = admin.post(f"/tokens/{issued.key.id}/revoke", HTTP_ACCEPT="application/json")
    assert answer.json()["ok"] and "Revoked old" in answer.json()["message"]
    issued.key.refresh_from_db()
    assert issued.key.revoked_at is not None
    entry = AuditEntry.objects.filter(action="token.revoke").get()
    assert (entry.actor, entry.source) == ("admin:ada", "admin")
    assert "already revoked" in admin.post(f"/tokens/{issued.key.id}/revoke",
                                           HTTP_ACCEPT="application/json").json()["message"]


def test_an_invite_creates_a_user_key_and_a_share_card(admin):
    answer = admin.post("/tokens/invite", {"name": "bob", "daily_token_quota": "100000"})
    assert answer.status_code == 201
    text = answer.content.decode()
    assert "## Flock access for bob" in text and "http://testserver/v1" in text
    assert "100,000 tokens a day" in text and "Claude Code" in text
    from accounts.models import ApiKey

    assert ApiKey.objects.get(name="bob").scope == "user"


def test_usage_is_filtered_and_paginated(admin):
    _usage(120, model="qwen3-8b")
    _usage(5, model="gemma-3-4b", key_name="bob")
    first = admin.get("/usage").content.decode()
    assert first.count("<tr>") == 51 and "page 1 of 3" in first  # 50 rows and the header
    last = admin.get("/usage?page=3").content.decode()
    assert last.count("<tr>") == 26
    only = admin.get("/usage?model=gemma-3-4b").content.decode()
    assert only.count("<tr>") == 6 and "qwen3-8b" not in only.split("<tbody>")[1]
    assert admin.get("/usage?user=bob").content.decode().count("<tr>") == 6
    assert "Key ID must be a number" in admin.get("/usage?key=abc").content.decode()


def test_usage_is_filtered_by_outcome(admin):
    _usage(3, model="qwen3-8b")
    _usage(2, model="gemma-3-4b", outcome="error")
    failed = admin.get("/usage?outcome=error").content.decode()
    assert failed.count("<tr>") == 3 and "qwen3-8b" not in failed.split("<tbody>")[1]
    assert '<option value="error" selected>' in failed
    assert admin.get("/usage?outcome=bogus").content.decode().count("<tr>") == 6  # ignored


def test_audit_is_filtered_by_actor_and_action(admin):
    key_create(name="one", scope="user")
    issued = key_create(name="two", scope="user")
    admin.post(f"/tokens/{issued.key.id}/revoke")
    assert admin.get("/audit?action=token.revoke").content.decode().count("<tr>") == 2
    assert admin.get("/audit?actor=admin:ada").content.decode().count("<tr>") == 2
    assert admin.get("/audit?action=token.").content.decode().count("<tr>") == 4


def test_settings_show_the_configuration_with_secrets_redacted(admin, settings):
    from dataclasses import replace

    settings.FLOCK = replace(settings.FLOCK, anthropic_api_key="sk-ant-very-secret",
                             database_url="postgres://flock:hunter2@db:5432/flock")
    text = admin.get("/settings").content.decode()
    assert "sk-ant-very-secret" not in text and "hunter2" not in text
    assert "***" in text and "postgres://***@db:5432/flock" in text
    assert "ANTHROPIC_API_KEY" in text and "config.yaml" in text


def test_the_shards_page_with_nothing_sharded_says_what_it_needs(admin):
    text = admin.get("/shards").content.decode()
    assert "No sharded models" in text and "add them from" in text  # no workers yet
    assert "deepseek-r1-671b-sharded" in text  # catalog models that must be sharded


def test_a_docs_page_shows_only_files_from_docs(admin):
    assert "leader" in admin.get("/docs/cluster").content.decode()
    assert admin.get("/docs/..%2Fmanage").status_code == 404
    assert admin.get("/docs/nope").status_code == 404


def test_the_live_endpoint_renders_the_panels_asked_for(admin):
    Node.objects.create(name="box-1", role=NodeRole.WORKER, engine="ollama",
                        engine_endpoint="http://127.0.0.1:9")
    answer = admin.get("/live?panels=nodes,keys,bogus")
    assert answer["cache-control"] == "no-store"
    panels = answer.json()["panels"]
    assert set(panels) == {"nodes", "keys"} and "box-1" in panels["nodes"]
    catalog = admin.get("/live?panels=catalog&q=embedding&sort=size").json()["panels"]["catalog"]
    assert "nomic-embed-text" in catalog and "qwen3-8b" not in catalog


def test_static_files_are_served_without_a_build_step(transactional_db):
    answer = Client().get("/static/dashboard/dashboard.js")
    assert answer.status_code == 200 and b"WebSocket" in answer.content
    assert answer["content-type"].startswith("text/javascript")
    assert Client().get("/static/admin/css/base.css").status_code == 200  # Django admin's too
    assert Client().get("/static/../manage.py").status_code == 404
    assert Client().get("/static/dashboard/nope.css").status_code == 404


def test_the_connect_snippet_carries_the_key_it_was_given_and_keeps_nothing(admin):
    from accounts.models import AuditEntry

    before = AuditEntry.objects.count()
    answer = admin.post("/connect/snippet", {"client": "claude-code", "model": "qwen3-8b",
                                             "token": "sk-flock-example"})
    snippet = answer.json()["snippet"]
    assert answer["cache-control"] == "no-store"
    assert "sk-flock-example" in json.dumps(snippet["blocks"])
    assert "ANTHROPIC_BASE_URL=http://testserver" in json.dumps(snippet["blocks"])
    assert AuditEntry.objects.count() == before
    assert admin.post("/connect/snippet", {"client": "notepad"}).status_code == 400


def test_connect_creates_a_user_key_for_the_client(admin):
    answer = admin.post("/connect/key", {"client": "cursor"}).json()
    assert answer["ok"] and answer["token"].startswith("sk-flock-")
    assert answer["key"]["name"] == "cursor (ada)" and answer["key"]["scope"] == "user"
