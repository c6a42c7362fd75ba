"""Live panels: parts of pages that are re-rendered while the page is open.

A panel is a template plus a function from the page's query parameters to its context. The page
renders it inline the first time; then the websocket consumer (consumers.py) pushes it again
whenever its HTML changes, and `GET /live?panels=a,b&<page params>` serves the same HTML to
pages polling instead (no websocket, or one that keeps failing)."""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.http import HttpRequest, JsonResponse, QueryDict
from django.template.loader import render_to_string
from django.views.decorators.http import require_GET

from flocksite.dashboard.auth import staff_required

log = logging.getLogger("flock.dashboard")


@dataclass(frozen=True)
class Panel:
    template: str
    context: Callable[[QueryDict], dict[str, Any]]
    every: float  # seconds between renders while a page shows it


@functools.cache
def panels() -> dict[str, Panel]:
    from flocksite.dashboard import activity, home, layout, models_page, nodes, shards, tokens

    return {
        "chips": Panel("dashboard/panels/chips.html", layout.chips_context, 5.0),
        "home": Panel("dashboard/panels/home.html", home.home_context, 3.0),
        "nodes": Panel("dashboard/panels/nodes.html", nodes.nodes_context, 2.0),
        "installed": Panel("dashboard/panels/installed.html", models_page.installed_context, 1.0),
        "catalog": Panel("dashboard/panels/catalog.html", models_page.catalog_context, 5.0),
        "usage": Panel("dashboard/panels/usage.html", activity.usage_context, 3.0),
        "audit": Panel("dashboard/panels/audit.html", activity.audit_context, 3.0),
        "keys": Panel("dashboard/panels/keys.html", tokens.keys_context, 5.0),
        "shards": Panel("dashboard/panels/shards.html", shards.shards_context, 2.0),
    }


def panel_names(text: str) -> list[str]:
    known = panels()
    return [name for name in dict.fromkeys(text.split(",")) if name in known]


def panels_render(names: list[str], params: QueryDict) -> dict[str, str]:
    """The HTML of each panel; a panel that fails is logged and left out (the page keeps what
    it shows)."""
    found = {}
    for name in names:
        panel = panels()[name]
        try:
            found[name] = render_to_string(panel.template, panel.context(params))
        except Exception:
            log.exception("rendering the %s panel failed", name)
    return found


@require_GET
@staff_required
def live(request: HttpRequest) -> JsonResponse:
    params = request.GET.copy()
    names = panel_names(params.pop("panels", [""])[0])
    response = JsonResponse({"panels": panels_render(names, params)})
    response["cache-control"] = "no-store"
    return response
