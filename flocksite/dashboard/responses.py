"""How dashboard actions answer: JSON for the page's fetch() calls (which show a toast), or a
redirect with a message for a plain form post (the layout shows it as a toast)."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect


def wants_json(request: HttpRequest) -> bool:
    return "application/json" in request.headers.get("accept", "")


def action_done(request: HttpRequest, message: str, *, to: str, **data: Any) -> HttpResponse:
    if wants_json(request):
        return JsonResponse({"ok": True, "message": message, **data})
    messages.success(request, message)
    return redirect(to)


def action_failed(request: HttpRequest, message: str, *, to: str, status: int = 400) -> HttpResponse:
    if wants_json(request):
        return JsonResponse({"ok": False, "message": message}, status=status)
    messages.error(request, message)
    return redirect(to)


def no_store(response: HttpResponse) -> HttpResponse:
    """For pages that show a secret once: not kept by the browser or a proxy."""
    response["cache-control"] = "no-store"
    return response


def form_int(data, name: str, *, default: int = 0, minimum: int = 0) -> int:
    """An integer form field; ValueError names the field."""
    text = (data.get(name) or "").strip()
    if not text:
        return default
    try:
        value = int(text)
    except ValueError:
        raise ValueError(f"{name.replace('_', ' ')} must be a whole number") from None
    if value < minimum:
        raise ValueError(f"{name.replace('_', ' ')} cannot be less than {minimum}")
    return value
