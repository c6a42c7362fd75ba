"""What every page shares: the navigation, the status chips (role, engine reachability, node
and model counts), the gateway's base URL as clients reach it, and the models it serves."""

from __future__ import annotations

import threading
import time
from typing import Any

from asgiref.sync import async_to_sync
from django.conf import settings
from django.http import HttpRequest, HttpResponse, QueryDict
from django.shortcuts import render

from accounts.snippets import normalize_base_url

NAV = (
    ("home", "Home"), ("nodes", "Nodes"), ("models", "Models"), ("shards", "Shards"),
    ("tokens", "Tokens"), ("usage", "Usage"), ("audit", "Audit"), ("settings", "Settings"),
    ("connect", "Connect"), ("playground", "Playground"),
)
CHIPS_SECONDS = 4.0  # engines are probed at most this often, however many pages are open

_chips: dict[str, Any] = {"value": None, "at": 0.0}
_chips_lock = threading.Lock()


def base_url(request: HttpRequest) -> str:
    """FLOCK_EXTERNAL_URL when set, else the address this browser reached us at."""
    if settings.FLOCK.external_url:
        return normalize_base_url(settings.FLOCK.external_url)
    return normalize_base_url(f"{request.scheme}://{request.get_host()}")


def _status() -> dict[str, Any]:
    from cluster.api import status  # the admin API's /status: one place probes the engines

    return async_to_sync(status)(None)


def chips_context(params: QueryDict | None = None) -> dict[str, Any]:
    with _chips_lock:
        fresh = _chips["value"] is not None and time.monotonic() - _chips["at"] < CHIPS_SECONDS
        if fresh:
            return {"chips": _chips["value"]}
    found = _status()
    engines = found["engines"]
    chips = {
        "role": found["role"],
        "engines": len(engines),
        "engines_up": sum(1 for e in engines if e["reachable"]),
        "engine_reachable": found["engine_reachable"],
        "nodes": found["nodes"], "nodes_ready": found["nodes_ready"],
        "models": found["models"],
    }
    with _chips_lock:
        _chips.update(value=chips, at=time.monotonic())
    return {"chips": chips}


def chips_cached() -> dict[str, Any] | None:
    """The last chips without probing anything: pages render at once and the live connection
    fills the chips in when nothing is cached yet."""
    with _chips_lock:
        return _chips["value"]


def served_models() -> list[str]:
    """Model ids the engines serve right now, as /v1/models lists them."""
    from gateway.router import router

    async def ids() -> list[str]:
        return sorted({model.id for _node, _engine, model in await router.available()})

    return async_to_sync(ids)()


def page(request: HttpRequest, template: str, active: str, **context: Any) -> HttpResponse:
    return render(request, template, {"nav": NAV, "active": active, "chips": chips_cached(),
                                      "base_url": base_url(request), **context})
