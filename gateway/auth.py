"""Async API-key authentication for both dialects, with an in-process cache so the request path
does not hit the database for every call."""

from __future__ import annotations

import hashlib
import time

from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import DatabaseError
from django.http import HttpRequest
from ninja.security.base import AuthBase

from accounts import revocation
from accounts.models import Scope
from accounts.selectors import KeyInfo, key_authenticate
from flocksite.database_outage import DatabaseUnavailable, database_read
from gateway.errors import AuthenticationFailed, PermissionDenied, RateLimited

CACHE_SECONDS = 30.0
ANONYMOUS = KeyInfo(id=0, name="anonymous", scope=Scope.USER)

_cache: dict[str, tuple[KeyInfo | None, float]] = {}
_generation = {"seen": None, "checked": 0.0}


async def _follow_revocations(now: float) -> None:
    """Drops cached keys when another process (or this one) revoked or changed a key."""
    if now - _generation["checked"] < revocation.CHECK_SECONDS:
        return
    _generation["checked"] = now
    current = await revocation.ageneration()
    if current != _generation["seen"]:
        _cache.clear()
        _generation["seen"] = current


AUTH_FAILURES_PER_MINUTE = 30
_blocked_until: dict[str, float] = {}


def _client_address(request: HttpRequest) -> str:
    return request.META.get("REMOTE_ADDR") or "unknown"


def _refuse_if_blocked(request: HttpRequest) -> None:
    until = _blocked_until.get(_client_address(request))
    if until is not None:
        wait = until - time.monotonic()
        if wait > 0:
            raise RateLimited("Too many failed authentication attempts from this address; "
                              f"retry in {int(wait) + 1} s.", headers={"retry-after": str(int(wait) + 1)},
                              code="too_many_auth_failures")
        _blocked_until.pop(_client_address(request), None)


async def _failed(request: HttpRequest, error: AuthenticationFailed) -> AuthenticationFailed:
    """Counts a failed attempt for the caller's address (shared through the cache); past the
    limit, the address is refused for the rest of the minute without a key lookup."""
    from django.core.cache import cache

    address = _client_address(request)
    name = f"authfail:{address}:{int(time.time() // 60)}"
    await cache.aadd(name, 0, 120)
    try:
        count = await cache.aincr(name)
    except ValueError:
        count = 1
    if count >= AUTH_FAILURES_PER_MINUTE:
        _blocked_until[address] = time.monotonic() + (60 - time.time() % 60)
    return error


def presented_key(request: HttpRequest) -> str:
    """The key from `Authorization: Bearer` or `x-api-key`, whichever the client sent."""
    meta = request.META  # not request.headers, which copies every header into a new mapping
    header = meta.get("HTTP_AUTHORIZATION", "")
    if header[:7].lower() == "bearer ":
        return header[7:].strip()
    return meta.get("HTTP_X_API_KEY", "").strip()


async def authenticate_key(plaintext: str) -> KeyInfo | None:
    digest = hashlib.sha256(plaintext.encode()).hexdigest()
    now = time.monotonic()
    await _follow_revocations(now)
    hit = _cache.get(digest)
    if hit is not None and hit[1] > now:
        return hit[0]
    try:
        info = await sync_to_async(database_read(key_authenticate), thread_sensitive=False)(plaintext)
    except DatabaseError:
        if hit is None:
            raise DatabaseUnavailable("a key not seen recently cannot be checked") from None
        return hit[0]  # the database is away for a moment: the last answer stands
    if len(_cache) > 10_000:
        _cache.clear()
    _cache[digest] = (info, now + CACHE_SECONDS)
    return info


def forget_cached_keys() -> None:
    _cache.clear()
    _blocked_until.clear()
    _generation["seen"] = None
    _generation["checked"] = 0.0


class InferenceKey(AuthBase):
    """ninja auth for inference routes: admin and user keys pass; node keys are refused."""

    openapi_type = "apiKey"

    async def __call__(self, request: HttpRequest) -> KeyInfo:
        _refuse_if_blocked(request)
        plaintext = presented_key(request)
        if not plaintext:
            if not settings.FLOCK.require_keys:
                return ANONYMOUS
            raise AuthenticationFailed(
                "No API key provided. Send it as 'Authorization: Bearer <key>' or 'x-api-key'.")
        info = await authenticate_key(plaintext)
        if info is None:
            raise await _failed(request, AuthenticationFailed("Invalid API key."))
        if info.scope not in (Scope.ADMIN, Scope.USER):
            raise PermissionDenied(f"A {info.scope}-scope key cannot call inference endpoints.",
                                   code="insufficient_scope")
        request.flock_key = info  # type: ignore[attr-defined]
        return info


class AdminKey(AuthBase):
    """ninja auth for /admin/v1: admin keys only (node keys also pass where `allow_node`)."""

    openapi_type = "apiKey"

    def __init__(self, *, allow_node: bool = False) -> None:
        super().__init__()
        self.allow_node = allow_node

    async def __call__(self, request: HttpRequest) -> KeyInfo:
        _refuse_if_blocked(request)
        plaintext = presented_key(request)
        if not plaintext:
            raise AuthenticationFailed("No API key provided. Admin endpoints need an admin key.")
        info = await authenticate_key(plaintext)
        if info is None:
            raise await _failed(request, AuthenticationFailed("Invalid API key."))
        allowed = (Scope.ADMIN, Scope.NODE) if self.allow_node else (Scope.ADMIN,)
        if info.scope not in allowed:
            raise PermissionDenied(f"A {info.scope}-scope key cannot use this admin endpoint.",
                                   code="insufficient_scope")
        request.flock_key = info  # type: ignore[attr-defined]
        return info


def request_actor(request: HttpRequest):
    """The audit Actor for an admin API call: the key that made it and the caller's address."""
    from accounts.audit import Actor

    info: KeyInfo = request.auth  # type: ignore[attr-defined]
    return Actor(name=f"key:{info.name}", source="api", key_id=info.id,
                 ip=request.META.get("REMOTE_ADDR") or None)
