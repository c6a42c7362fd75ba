from __future__ import annotations

from django.contrib import admin
from django.urls import include, path, re_path

from flocksite.admin_api import admin_api
from flocksite.dashboard.root import root
from gateway import health
from gateway.api import api
from gateway.metrics_view import metrics_view

urlpatterns = [
    path("", root),  # the dashboard for browsers, the JSON probe for API clients
    path("healthz", health.healthz),
    path("readyz", health.readyz),
    path("metrics", metrics_view),
    path("admin/v1/", admin_api.urls),
    path("admin/", admin.site.urls),
    path("v1/", api.urls),
    re_path(r"^v1/(?P<rest>.*)$", health.not_found),
    path("", include("flocksite.dashboard.urls")),
]
