"""Admin API for keys, usage and audit (mounted under /admin/v1 by flocksite/admin_api.py)."""

from __future__ import annotations

from datetime import datetime, timedelta

from asgiref.sync import sync_to_async
from django.http import HttpRequest
from django.utils import timezone
from ninja import Router, Schema

from accounts import serializers, services, usage_stats
from accounts.models import ApiKey, Scope
from gateway.auth import request_actor
from gateway.errors import InvalidRequest, NotFound

router = Router(tags=["accounts"])


class KeyIn(Schema):
    name: str
    scope: str = Scope.USER
    daily_token_quota: int = 0
    rpm_limit: int = 0
    allowed_models: list[str] = []
    expires_in_days: int | None = None
    expires_at: datetime | None = None


@router.get("/tokens")
async def token_list(request: HttpRequest) -> dict:
    rows = await sync_to_async(lambda: [serializers.key_dict(k)
                                        for k in ApiKey.objects.select_related("owner")])()
    return {"data": rows}


@router.post("/tokens", response={201: dict})
async def token_create(request: HttpRequest, payload: KeyIn) -> tuple[int, dict]:
    expires = payload.expires_at
    if payload.expires_in_days is not None:
        if payload.expires_in_days <= 0:
            raise InvalidRequest("expires_in_days must be positive", param="expires_in_days")
        expires = timezone.now() + timedelta(days=payload.expires_in_days)
    try:
        issued = await sync_to_async(services.key_create)(
            name=payload.name, scope=payload.scope, daily_token_quota=payload.daily_token_quota,
            rpm_limit=payload.rpm_limit, allowed_models=payload.allowed_models,
            expires_at=expires, actor=request_actor(request))
    except ValueError as exc:
        raise InvalidRequest(str(exc)) from None
    return 201, {"token": issued.plaintext, "key": serializers.key_dict(issued.key),
                 "note": "The token is shown only now; store it safely."}


@router.delete("/tokens/{key_id}")
async def token_revoke(request: HttpRequest, key_id: int) -> dict:
    def revoke() -> dict:
        try:
            key = ApiKey.objects.get(pk=key_id)
        except ApiKey.DoesNotExist:
            raise NotFound(f"No key with id {key_id}.") from None
        return serializers.key_dict(services.key_revoke(key=key, actor=request_actor(request)))

    return {"key": await sync_to_async(revoke)()}


@router.get("/usage/recent")
async def usage_recent(request: HttpRequest, limit: int = 50, user: str | None = None,
                       model: str | None = None, outcome: str | None = None) -> dict:
    """Newest first; `outcome` is ok, error or aborted."""
    limit = max(1, min(limit, 1000))
    rows = await sync_to_async(lambda: [serializers.usage_dict(r) for r in
                                        usage_stats.usage_recent(limit=limit, user=user,
                                                                 model=model, outcome=outcome)])()
    return {"data": rows}


@router.get("/usage/summary")
async def usage_summary(request: HttpRequest, hours: int = 24, user: str | None = None) -> dict:
    since = timezone.now() - timedelta(hours=max(1, hours))
    return await sync_to_async(usage_stats.usage_summary)(since=since, user=user)


@router.get("/audit/recent")
async def audit_recent(request: HttpRequest, limit: int = 50, actor: str | None = None) -> dict:
    limit = max(1, min(limit, 1000))
    rows = await sync_to_async(lambda: [serializers.audit_dict(e) for e in
                                        usage_stats.audit_recent(limit=limit, actor=actor)])()
    return {"data": rows}


@router.get("/audit/summary")
async def audit_summary(request: HttpRequest) -> dict:
    return await sync_to_async(usage_stats.audit_summary)()
