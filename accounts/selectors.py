"""Reads for keys."""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import Q, QuerySet
from django.utils import timezone

from accounts import keys
from accounts.models import ApiKey


@dataclass(frozen=True)
class KeyInfo:
    """What the request path needs to know about a key (a cacheable snapshot)."""

    id: int
    name: str
    scope: str
    daily_token_quota: int = 0
    rpm_limit: int = 0
    allowed_models: tuple[str, ...] = ()
    owner: str = ""


def key_authenticate(plaintext: str) -> KeyInfo | None:
    """The active, unexpired key matching `plaintext`, compared in constant time."""
    lookup = keys.lookup_of(plaintext)
    if lookup is None:
        return None
    row = (ApiKey.objects.filter(lookup=lookup, revoked_at__isnull=True)
           .filter(Q(expires_at__isnull=True) | Q(expires_at__gt=timezone.now()))
           .select_related("owner").first())
    if row is None or not keys.matches(plaintext, row.secret_hash):
        return None
    return KeyInfo(id=row.id, name=row.name, scope=row.scope,
                   daily_token_quota=row.daily_token_quota, rpm_limit=row.rpm_limit,
                   allowed_models=tuple(row.allowed_models or ()),
                   owner=row.owner.get_username() if row.owner else "")


def key_list(*, include_revoked: bool = True) -> QuerySet[ApiKey]:
    keys_ = ApiKey.objects.select_related("owner").order_by("-created_at")
    return keys_ if include_revoked else keys_.filter(revoked_at__isnull=True)


def key_get(key_id: int) -> ApiKey:
    return ApiKey.objects.select_related("owner").get(pk=key_id)
