"""Shards: splitting one model across several nodes. Not built yet, so the page says so and
lists the catalog models that will need it; it shows nothing made up."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse

from catalog.selectors import catalog_search
from flocksite.dashboard.auth import staff_required
from flocksite.dashboard.layout import page


@staff_required
def shards_page(request: HttpRequest) -> HttpResponse:
    needing = [e for e in catalog_search("", sort="size") if e.sharding_required]
    return page(request, "dashboard/shards.html", "shards", needing=needing)
