"""Reads for keys and usage."""

from __future__ import annotations

from dataclasses import dataclass

from accounts import keys
from accounts.models import ApiKey


@dataclass(frozen=True)
class KeyInfo:
    """What the request path needs to know about a key (a cacheable snapshot)."""

    id: int
    name: str
    scope: str
    daily_token_quota: int


def key_authenticate(plaintext: str) -> KeyInfo | None:
    """The active key matching `plaintext`, compared in constant time; None otherwise."""
    lookup = keys.lookup_of(plaintext)
    if lookup is None:
        return None
    row = ApiKey.objects.filter(lookup=lookup, revoked_at__isnull=True).only(
        "id", "name", "scope", "daily_token_quota", "secret_hash").first()
    if row is None or not keys.matches(plaintext, row.secret_hash):
        return None
    return KeyInfo(id=row.id, name=row.name, scope=row.scope,
                   daily_token_quota=row.daily_token_quota)
