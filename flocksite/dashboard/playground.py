"""Playground: chat with a served model, the answer streaming in.

The page posts to `/playground/chat` with its session cookie and CSRF token, and that view runs
the gateway's own /v1/chat/completions handler for it: the same routing, admission, streaming
and usage record, as the signed-in admin ("dashboard:<username>" in Usage). No API key is made
for the browser, so none can leak from the page or outlive the session."""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.views.decorators.http import require_POST

from accounts.models import Scope
from accounts.selectors import KeyInfo
from flocksite.dashboard.auth import staff_required
from flocksite.dashboard.layout import page, served_models
from gateway.errors import GatewayError
from gateway.responses import error_response


@staff_required
def playground_page(request: HttpRequest) -> HttpResponse:
    models = served_models()
    default = settings.FLOCK.default_model
    chosen = default if default in models else (models[0] if models else "")
    return page(request, "dashboard/playground.html", "playground", models=models, chosen=chosen)


@require_POST
@staff_required
async def playground_chat(request: HttpRequest) -> HttpResponse:
    from gateway.api import chat_completions

    user = await request.auser()
    name = user.get_username()
    request.auth = KeyInfo(id=0, name=f"dashboard:{name}", scope=Scope.ADMIN, owner=name)  # type: ignore[attr-defined]
    request.flock_key = request.auth  # type: ignore[attr-defined]
    try:
        return await chat_completions(request)
    except GatewayError as exc:  # what ninja's handler does for /v1: the OpenAI error shape
        return error_response(request, exc)
