"""The admin API under /admin/v1: keys, usage, audit, config and status."""

from __future__ import annotations

import httpx

from accounts.audit import audit_verify
from accounts.models import AuditEntry


def _admin(gateway) -> dict[str, str]:
    return {"authorization": f"Bearer {gateway.admin_key}"}


def test_only_admin_keys_reach_the_admin_api(gateway):
    assert httpx.get(gateway.url + "/admin/v1/tokens").status_code == 401
    user = httpx.get(gateway.url + "/admin/v1/tokens", headers=gateway.headers())
    assert user.status_code == 403 and user.json()["error"]["type"] == "permission_error"
    assert httpx.get(gateway.url + "/admin/v1/tokens", headers=_admin(gateway)).status_code == 200


def test_a_key_is_created_shown_once_listed_without_secrets_and_revoked(gateway):
    r = httpx.post(gateway.url + "/admin/v1/tokens", headers=_admin(gateway),
                   json={"name": "bob", "daily_token_quota": 5000, "rpm_limit": 30,
                         "allowed_models": ["fake-model"], "expires_in_days": 30})
    assert r.status_code == 201, r.text
    token, key = r.json()["token"], r.json()["key"]
    assert token.startswith("sk-flock-") and key["daily_token_quota"] == 5000
    chat = httpx.post(gateway.v1 + "/chat/completions", headers={"authorization": f"Bearer {token}"},
                      json={"model": "fake-model", "messages": [{"role": "user", "content": "hi"}]})
    assert chat.status_code == 200
    listing = httpx.get(gateway.url + "/admin/v1/tokens", headers=_admin(gateway)).text
    assert token not in listing and "secret_hash" not in listing and token[9:20] not in listing
    gone = httpx.delete(gateway.url + f"/admin/v1/tokens/{key['id']}", headers=_admin(gateway))
    assert gone.json()["key"]["status"] == "revoked"
    actions = list(AuditEntry.objects.order_by("id").values_list("action", "actor", "source"))
    assert ("token.create", "key:admin", "api") in actions
    assert ("token.revoke", "key:admin", "api") in actions
    assert audit_verify().ok


def test_a_bad_key_request_names_the_field(gateway):
    r = httpx.post(gateway.url + "/admin/v1/tokens", headers=_admin(gateway),
                   json={"name": "x", "scope": "superuser"})
    assert r.status_code == 400 and "scope" in r.json()["error"]["message"]
    r = httpx.post(gateway.url + "/admin/v1/tokens", headers=_admin(gateway), json={"scope": "user"})
    assert r.status_code == 400 and r.json()["error"]["param"] == "name"
    assert httpx.delete(gateway.url + "/admin/v1/tokens/9999",
                        headers=_admin(gateway)).status_code == 404


def test_usage_recent_and_summary(gateway):
    for _ in range(3):
        httpx.post(gateway.v1 + "/chat/completions", headers=gateway.headers(),
                   json={"model": "fake-model", "messages": [{"role": "user", "content": "hi"}]})
    httpx.post(gateway.v1 + "/chat/completions", headers=gateway.headers(),
               json={"model": "missing", "messages": [{"role": "user", "content": "hi"}]})
    gateway.usage_records()  # flush
    recent = httpx.get(gateway.url + "/admin/v1/usage/recent?limit=2", headers=_admin(gateway))
    assert len(recent.json()["data"]) == 2
    failed = httpx.get(gateway.url + "/admin/v1/usage/recent?outcome=error", headers=_admin(gateway))
    assert [r["model"] for r in failed.json()["data"]] == ["missing"]
    summary = httpx.get(gateway.url + "/admin/v1/usage/summary", headers=_admin(gateway)).json()
    assert summary["requests"] == 4 and summary["errors"] == 1 and summary["error_rate"] == 0.25
    assert summary["top_models"][0] == {"model": "fake-model", "requests": 3, "tokens": 36}
    assert summary["latency_ms"]["p50"] <= summary["latency_ms"]["p99"]
    assert len(summary["rpm_last_60"]) == 60 and summary["rpm_last_60"][-1] == 4


def test_audit_views_and_config_and_status(gateway):
    httpx.post(gateway.url + "/admin/v1/tokens", headers=_admin(gateway), json={"name": "carol"})
    recent = httpx.get(gateway.url + "/admin/v1/audit/recent", headers=_admin(gateway)).json()
    assert recent["data"][0]["action"] == "token.create"
    summary = httpx.get(gateway.url + "/admin/v1/audit/summary", headers=_admin(gateway)).json()
    assert {"actor": "key:admin", "entries": 1} in summary["top_actors"]
    config = httpx.get(gateway.url + "/admin/v1/config", headers=_admin(gateway)).json()
    assert config["listen"] and "data_dir" in config
    status = httpx.get(gateway.url + "/admin/v1/status", headers=_admin(gateway)).json()
    assert status["engine_reachable"] is True and status["models"] == 2 and status["nodes"] == 1
