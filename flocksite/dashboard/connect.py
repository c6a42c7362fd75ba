"""Connect: pick a client, get its setup snippet for this gateway, and test the connection with
a real request through the gateway, exactly as the client would make it."""

from __future__ import annotations

import time
from typing import Any

import httpx
from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.http import require_POST

from accounts import services, snippets
from accounts.models import Scope
from accounts.serializers import key_dict
from accounts.snippets.render import DIALECT_LABELS
from accounts.snippets.resolve import PLACEHOLDER, model_resolve
from flocksite.dashboard.auth import actor_of, staff_required
from flocksite.dashboard.layout import base_url, page, served_models

TEST_TIMEOUT = 30.0
TEST_PROMPT = "Reply with the single word: ready"


def _snippet(client: str, root: str, token: str, model: str) -> dict[str, Any]:
    snippet = snippets.snippet_for(client, snippets.Target(root, token or PLACEHOLDER, model))
    return {**snippet.as_dict(), "dialect_label": DIALECT_LABELS[snippet.dialect]}


@staff_required
def connect_page(request: HttpRequest) -> HttpResponse:
    try:
        chosen = snippets.client_get(request.GET.get("client") or "claude-code").name
    except snippets.UnknownClient:
        chosen = "claude-code"
    model = model_resolve(request.GET.get("model"), settings.FLOCK)
    clients = [{"name": c.name, "title": c.title, "kind": c.kind,
                "dialect": DIALECT_LABELS[c.dialect]} for c in snippets.CLIENTS]
    return page(request, "dashboard/connect.html", "connect", clients=clients, chosen=chosen,
                model=model, models=served_models(), placeholder=PLACEHOLDER,
                snippet=_snippet(chosen, base_url(request), "", model))


@require_POST
@staff_required
def connect_snippet(request: HttpRequest) -> JsonResponse:
    """The snippet with the key filled in; the key comes in the body and is not kept."""
    try:
        found = _snippet(request.POST.get("client", ""), base_url(request),
                         request.POST.get("token", "").strip(),
                         model_resolve(request.POST.get("model"), settings.FLOCK))
    except (snippets.UnknownClient, ValueError) as exc:
        return JsonResponse({"ok": False, "message": str(exc)}, status=400)
    response = JsonResponse({"ok": True, "snippet": found})
    response["cache-control"] = "no-store"
    return response


@require_POST
@staff_required
def connect_key(request: HttpRequest) -> JsonResponse:
    """A user key for this client, returned once to fill into the snippet."""
    try:
        client = snippets.client_get(request.POST.get("client", ""))
        name = (request.POST.get("name") or "").strip() or \
            f"{client.name} ({request.user.get_username()})"
        issued = services.key_create(name=name, scope=Scope.USER, actor=actor_of(request))
    except ValueError as exc:
        return JsonResponse({"ok": False, "message": str(exc)}, status=400)
    response = JsonResponse({"ok": True, "message": f"Key {issued.key.name} created; it is "
                                                    "shown only now.",
                             "token": issued.plaintext, "key": key_dict(issued.key)})
    response["cache-control"] = "no-store"
    return response


def _error_of(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:200] or f"HTTP {response.status_code}"
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict):
        return str(error.get("message") or error)
    return str(body)[:200]


@require_POST
@staff_required
async def connect_test(request: HttpRequest) -> JsonResponse:
    """GET /v1/models, then one small chat completion, at the base URL with the given key."""
    root = base_url(request)
    token = request.POST.get("token", "").strip()
    model = model_resolve(request.POST.get("model"), settings.FLOCK)
    headers = {"authorization": f"Bearer {token}"} if token else {}
    started = time.monotonic()
    try:
        async with httpx.AsyncClient(timeout=TEST_TIMEOUT, trust_env=False) as client:
            listed = await client.get(f"{root}/v1/models", headers=headers)
            if listed.status_code != 200:
                hint = "" if token else " Paste a key or create one above first."
                return _test_result(False, f"GET {root}/v1/models answered {listed.status_code}: "
                                           f"{_error_of(listed)}.{hint}", started)
            chat = await client.post(f"{root}/v1/chat/completions", headers=headers, json={
                "model": model, "max_tokens": 16,
                "messages": [{"role": "user", "content": TEST_PROMPT}]})
    except httpx.HTTPError as exc:
        return _test_result(False, f"Could not reach {root}: {exc.__class__.__name__} {exc}. "
                                   "Is FLOCK_EXTERNAL_URL right?", started)
    if chat.status_code != 200:
        return _test_result(False, f"POST {root}/v1/chat/completions answered "
                                   f"{chat.status_code}: {_error_of(chat)}", started)
    body = chat.json()
    reply = ((body.get("choices") or [{}])[0].get("message") or {}).get("content") or ""
    return _test_result(True, f"Connected: {body.get('model', model)} answered.", started,
                        reply=reply[:300], model=body.get("model", model),
                        models=[m.get("id") for m in listed.json().get("data", [])])


def _test_result(ok: bool, message: str, started: float, **data: Any) -> JsonResponse:
    return JsonResponse({"ok": ok, "message": message,
                         "latency_ms": int((time.monotonic() - started) * 1000), **data})
