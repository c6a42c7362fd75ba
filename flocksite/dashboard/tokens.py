"""Tokens: API keys listed without their secrets, created (the key is shown once, in the
response to the creating request), revoked, and teammates invited with a share card."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.http import HttpRequest, HttpResponse, QueryDict
from django.shortcuts import get_object_or_404
from django.utils import timezone
from django.views.decorators.http import require_POST

from accounts import services, snippets
from accounts.models import ApiKey, Scope
from accounts.selectors import key_list
from accounts.serializers import key_dict
from accounts.snippets.render import invite_card
from accounts.snippets.resolve import PLACEHOLDER, model_resolve
from flocksite.dashboard.auth import actor_of, staff_required
from flocksite.dashboard.layout import base_url, page
from flocksite.dashboard.responses import action_done, form_int, no_store

TO = "dashboard:tokens"


def keys_context(params: QueryDict) -> dict[str, Any]:
    return {"keys": [key_dict(key) for key in key_list()]}


def _page(request: HttpRequest, *, status: int = 200, **context: Any) -> HttpResponse:
    response = page(request, "dashboard/tokens.html", "tokens", scopes=Scope.values,
                    **keys_context(request.GET), **context)
    response.status_code = status
    return no_store(response)


@staff_required
def tokens_page(request: HttpRequest) -> HttpResponse:
    return _page(request)


def _key_fields(data) -> dict[str, Any]:
    days = form_int(data, "expires_in_days")
    allowed = [m.strip() for m in (data.get("allowed_models") or "").split(",") if m.strip()]
    return {"name": (data.get("name") or "").strip(),
            "daily_token_quota": form_int(data, "daily_token_quota"),
            "rpm_limit": form_int(data, "rpm_limit"), "allowed_models": allowed,
            "expires_at": timezone.now() + timedelta(days=days) if days else None}


@require_POST
@staff_required
def token_create(request: HttpRequest) -> HttpResponse:
    try:
        issued = services.key_create(scope=request.POST.get("scope", Scope.USER),
                                     actor=actor_of(request), **_key_fields(request.POST))
    except ValueError as exc:
        messages.error(request, f"Key not created: {exc}.")
        return _page(request, status=400, form=request.POST)
    messages.success(request, f"Key {issued.key.name} created. Copy it now: it is shown only once.")
    return _page(request, status=201, issued={"key": key_dict(issued.key),
                                              "plaintext": issued.plaintext})


@require_POST
@staff_required
def token_revoke(request: HttpRequest, key_id: int) -> HttpResponse:
    key = get_object_or_404(ApiKey, pk=key_id)
    if key.revoked_at is not None:
        return action_done(request, f"{key.name} was already revoked.", to=TO)
    services.key_revoke(key=key, actor=actor_of(request))
    return action_done(request, f"Revoked {key.name}: gateways refuse it within a second.", to=TO)


@require_POST
@staff_required
def invite(request: HttpRequest) -> HttpResponse:
    name = (request.POST.get("name") or "").strip()
    try:
        quota = form_int(request.POST, "daily_token_quota")
        issued = services.key_create(name=name, scope=Scope.USER, daily_token_quota=quota,
                                     actor=actor_of(request))
    except ValueError as exc:
        messages.error(request, f"Invite not created: {exc}.")
        return _page(request, status=400)
    root = base_url(request)
    model = model_resolve(None, settings.FLOCK)
    cards = [snippets.snippet_for(name_, snippets.Target(root, PLACEHOLDER, model))
             for name_ in snippets.DEFAULT_INVITE_CLIENTS]
    card = invite_card(name=issued.key.name, token=issued.plaintext, root=root, model=model,
                       quota=quota, cards=cards)
    messages.success(request, f"Invite for {issued.key.name} created: send them the card.")
    return _page(request, status=201, invited={"name": issued.key.name, "card": card})
