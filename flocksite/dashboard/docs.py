"""The project's own docs (docs/*.md), readable from the dashboard on an offline cluster."""

from __future__ import annotations

import re

from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse

from flocksite.dashboard.auth import staff_required
from flocksite.dashboard.layout import page

_NAME = re.compile(r"^[a-z0-9][a-z0-9-]*$")


@staff_required
def doc_page(request: HttpRequest, name: str) -> HttpResponse:
    path = settings.BASE_DIR / "docs" / f"{name}.md"
    if not _NAME.match(name) or not path.is_file():
        raise Http404(f"no document {name}")
    return page(request, "dashboard/doc.html", "", name=name, text=path.read_text())
