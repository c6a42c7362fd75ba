"""`/`: the dashboard for a browser, the JSON probe for everything else. `HEAD /` (Claude Code
sends it) and API clients' `GET /` never touch the database."""

from __future__ import annotations

from asgiref.sync import sync_to_async
from django.http import HttpRequest, HttpResponse

from gateway import health


def is_browser(request: HttpRequest) -> bool:
    return "text/html" in request.headers.get("accept", "")


async def root(request: HttpRequest) -> HttpResponse:
    if request.method == "GET" and is_browser(request):
        from flocksite.dashboard.home import home

        return await sync_to_async(home)(request)
    return await health.root(request)
