"""Writes for keys and usage."""

from __future__ import annotations

from dataclasses import dataclass

from django.utils import timezone

from accounts import keys
from accounts.models import ApiKey, Scope


@dataclass(frozen=True)
class IssuedKey:
    key: ApiKey
    plaintext: str  # shown once, never stored


def key_create(*, name: str, scope: str = Scope.USER, daily_token_quota: int = 0,
               owner=None) -> IssuedKey:
    """Creates an API key and returns its plaintext, which is not kept anywhere."""
    if scope not in Scope.values:
        raise ValueError(f"unknown scope {scope!r}; expected one of {', '.join(Scope.values)}")
    plaintext = keys.generate()
    key = ApiKey.objects.create(
        name=name, scope=scope, daily_token_quota=daily_token_quota, owner=owner,
        lookup=keys.lookup_of(plaintext), secret_hash=keys.hash_of(plaintext),
    )
    return IssuedKey(key=key, plaintext=plaintext)


def key_revoke(*, key: ApiKey) -> ApiKey:
    ApiKey.objects.filter(pk=key.pk, revoked_at__isnull=True).update(revoked_at=timezone.now())
    key.refresh_from_db()
    return key
