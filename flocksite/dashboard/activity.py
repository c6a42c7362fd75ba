"""Usage and Audit: filterable, paginated tables of requests served and admin actions."""

from __future__ import annotations

from typing import Any

from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse, QueryDict

from accounts.models import Outcome
from accounts.usage_stats import audit_recent, usage_recent
from flocksite.dashboard.auth import staff_required
from flocksite.dashboard.layout import page

PAGE_SIZE = 50
BROWSABLE = 10_000  # rows reachable by paging; `manage.py usage --json` exports everything


def _filters(params: QueryDict, names: tuple[str, ...]) -> dict[str, str]:
    return {name: params.get(name, "").strip() for name in names}


def _query(filters: dict[str, str]) -> str:
    """The filters as a query string for the pager's links."""
    kept = QueryDict(mutable=True)
    for name, value in filters.items():
        if value:
            kept[name] = value
    return kept.urlencode()


def usage_context(params: QueryDict) -> dict[str, Any]:
    filters = _filters(params, ("user", "model", "key", "outcome"))
    key = filters["key"]
    key_id = int(key) if key.isdigit() else None
    outcome = filters["outcome"] if filters["outcome"] in Outcome.values else ""
    filters["outcome"] = outcome
    rows = usage_recent(limit=BROWSABLE, user=filters["user"] or None, key_id=key_id,
                        model=filters["model"] or None, outcome=outcome or None)
    found = Paginator(rows, PAGE_SIZE).get_page(params.get("page"))
    return {"rows": found, "filters": filters, "query": _query(filters),
            "bad_key": bool(key) and key_id is None, "outcomes": Outcome.values}


def audit_context(params: QueryDict) -> dict[str, Any]:
    filters = _filters(params, ("actor", "action"))
    rows = audit_recent(limit=BROWSABLE, actor=filters["actor"] or None,
                        action=filters["action"] or None)
    found = Paginator(rows, PAGE_SIZE).get_page(params.get("page"))
    return {"rows": found, "filters": filters, "query": _query(filters)}


@staff_required
def usage_page(request: HttpRequest) -> HttpResponse:
    return page(request, "dashboard/usage.html", "usage", **usage_context(request.GET))


@staff_required
def audit_page(request: HttpRequest) -> HttpResponse:
    return page(request, "dashboard/audit.html", "audit", **audit_context(request.GET))
