"""Writes for keys. Every mutation writes one audit entry in the same transaction."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.db import transaction
from django.utils import timezone

from accounts import keys
from accounts.audit import Actor, audit_record
from accounts.models import ApiKey, Scope
from accounts.revocation import keys_changed


@dataclass(frozen=True)
class IssuedKey:
    key: ApiKey
    plaintext: str  # shown once, never stored


def key_create(*, name: str, scope: str = Scope.USER, daily_token_quota: int = 0,
               rpm_limit: int = 0, allowed_models: list[str] | None = None,
               expires_at: datetime | None = None, owner=None,
               actor: Actor | None = None) -> IssuedKey:
    """Creates an API key and returns its plaintext, which is not kept anywhere."""
    if scope not in Scope.values:
        raise ValueError(f"unknown scope {scope!r}; expected one of {', '.join(Scope.values)}")
    if not name.strip():
        raise ValueError("a key needs a name")
    if daily_token_quota < 0 or rpm_limit < 0:
        raise ValueError("quota and rpm limits cannot be negative")
    plaintext = keys.generate()
    with transaction.atomic():
        key = ApiKey.objects.create(
            name=name.strip(), scope=scope, daily_token_quota=daily_token_quota,
            rpm_limit=rpm_limit, allowed_models=list(allowed_models or []),
            expires_at=expires_at, owner=owner,
            lookup=keys.lookup_of(plaintext), secret_hash=keys.hash_of(plaintext),
        )
        audit_record(actor=actor or Actor.system(), action="token.create",
                     target=f"key:{key.id}",
                     details={"name": key.name, "scope": scope, "daily_token_quota": daily_token_quota,
                              "rpm_limit": rpm_limit, "allowed_models": key.allowed_models,
                              "expires_at": expires_at.isoformat() if expires_at else None})
    return IssuedKey(key=key, plaintext=plaintext)


def key_revoke(*, key: ApiKey, actor: Actor | None = None) -> ApiKey:
    """Revokes the key; every gateway process refuses it within a second."""
    with transaction.atomic():
        changed = ApiKey.objects.filter(pk=key.pk, revoked_at__isnull=True).update(
            revoked_at=timezone.now())
        if changed:
            audit_record(actor=actor or Actor.system(), action="token.revoke",
                         target=f"key:{key.pk}", details={"name": key.name})
            transaction.on_commit(keys_changed)
    key.refresh_from_db()
    return key


KEY_EDITABLE = ("name", "daily_token_quota", "rpm_limit", "allowed_models", "expires_at", "owner")


def key_update(*, key: ApiKey, actor: Actor | None = None, **changes) -> ApiKey:
    """Changes a key's limits or label; gateways pick the change up within a second."""
    unknown = set(changes) - set(KEY_EDITABLE)
    if unknown:
        raise ValueError(f"cannot change {', '.join(sorted(unknown))} on a key")
    before = {name: getattr(key, name) for name in changes}
    with transaction.atomic():
        for name, value in changes.items():
            setattr(key, name, value)
        key.save(update_fields=list(changes))
        diff = {name: [str(before[name]), str(value)] for name, value in changes.items()
                if before[name] != value}
        audit_record(actor=actor or Actor.system(), action="token.update",
                     target=f"key:{key.pk}", details=diff)
        transaction.on_commit(keys_changed)
    return key
