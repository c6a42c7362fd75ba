"""Static files (the dashboard's CSS and JS, and Django admin's) served by the gateway itself:
daphne serves none, and an offline cluster has no CDN to fall back on."""

from __future__ import annotations

import mimetypes
from pathlib import Path

from django.contrib.staticfiles import finders
from django.core.exceptions import SuspiciousFileOperation
from django.http import Http404, HttpRequest, HttpResponse
from django.utils.http import http_date

MAX_AGE = 300  # short: a restarted gateway with new assets is picked up within minutes


def static_file(request: HttpRequest, path: str) -> HttpResponse:
    try:
        found = finders.find(path)  # only inside the static directories
    except SuspiciousFileOperation:  # "..": outside them
        found = None
    if not found or not Path(found).is_file():
        raise Http404(f"no static file {path}")
    file = Path(found)
    content_type, encoding = mimetypes.guess_type(file.name)
    response = HttpResponse(file.read_bytes(), content_type=content_type or "application/octet-stream")
    if encoding:
        response["content-encoding"] = encoding
    response["last-modified"] = http_date(file.stat().st_mtime)
    response["cache-control"] = f"public, max-age={MAX_AGE}"
    return response
