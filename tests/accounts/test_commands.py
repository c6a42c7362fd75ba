"""The token, usage and audit commands, and the audit chain across API, CLI and admin."""

from __future__ import annotations

import json
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from accounts.audit import audit_verify
from accounts.models import ApiKey, AuditEntry


def run(*args: str) -> str:
    out = StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


@pytest.mark.django_db
def test_token_create_prints_the_key_once_and_ls_never_does():
    created = json.loads(run("token", "create", "dana", "--quota", "5000", "--rpm", "10",
                             "--models", "a,b", "--expires", "30d", "--json"))
    plaintext = created["token"]
    key = ApiKey.objects.get(pk=created["key"]["id"])
    assert (key.daily_token_quota, key.rpm_limit, key.allowed_models) == (5000, 10, ["a", "b"])
    assert key.expires_at is not None and key.secret_hash != plaintext
    listing = run("token", "ls") + run("token", "ls", "--json")
    assert "dana" in listing and plaintext not in listing and key.secret_hash not in listing


@pytest.mark.django_db
def test_token_revoke_and_its_errors():
    key_id = json.loads(run("token", "create", "erin", "--json"))["key"]["id"]
    assert "Revoked" in run("token", "revoke", str(key_id))
    assert ApiKey.objects.get(pk=key_id).revoked_at is not None
    with pytest.raises(CommandError, match="already revoked"):
        run("token", "revoke", str(key_id))
    with pytest.raises(CommandError, match="no key with id"):
        run("token", "revoke", "424242")
    with pytest.raises(CommandError, match="duration"):
        run("token", "create", "x", "--expires", "soon")


@pytest.mark.django_db
def test_usage_and_audit_read_commands_have_json():
    run("token", "create", "fred")
    assert json.loads(run("usage", "--json")) == []
    assert json.loads(run("usage", "--summary", "--json"))["requests"] == 0
    entries = json.loads(run("audit", "--json"))
    assert entries[0]["action"] == "token.create" and entries[0]["source"] == "cli"
    assert json.loads(run("audit", "--summary", "--json"))["entries"] == 1


@pytest.mark.django_db
def test_the_chain_verifies_after_mixed_changes_and_fails_after_tampering(admin_client):
    run("token", "create", "gina")
    admin_client.post("/admin/accounts/apikey/add/", {
        "name": "henry", "scope": "user", "daily_token_quota": 100, "rpm_limit": 0,
        "allowed_models": "[]"})
    henry = ApiKey.objects.get(name="henry")
    admin_client.post("/admin/accounts/apikey/", {"action": "revoke_selected",
                                                  "_selected_action": [henry.pk]})
    sources = list(AuditEntry.objects.order_by("id").values_list("source", "action"))
    assert sources == [("cli", "token.create"), ("admin", "token.create"),
                       ("admin", "token.revoke")]
    assert "3 entries verified" in run("audit", "--verify")
    AuditEntry.objects.filter(action="token.create", source="admin").update(target="key:999")
    report = audit_verify()
    assert not report.ok and report.checked == 1
    with pytest.raises(CommandError, match="audit chain broken"):
        run("audit", "--verify")


@pytest.mark.django_db
def test_audit_entries_cannot_be_edited_or_deleted_through_the_model():
    run("token", "create", "ivy")
    entry = AuditEntry.objects.get()
    entry.target = "changed"
    with pytest.raises(ValueError):
        entry.save()
    with pytest.raises(ValueError):
        entry.delete()


@pytest.mark.django_db
def test_the_admin_never_shows_a_hash_or_secret(admin_client):
    created = json.loads(run("token", "create", "jack", "--json"))
    key = ApiKey.objects.get(pk=created["key"]["id"])
    for page in ("/admin/accounts/apikey/", f"/admin/accounts/apikey/{key.pk}/change/"):
        html = admin_client.get(page).content.decode()
        assert key.secret_hash not in html and created["token"] not in html
        assert key.lookup not in html
