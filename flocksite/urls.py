from __future__ import annotations

from django.contrib import admin
from django.urls import path, re_path

from flocksite.admin_api import admin_api
from gateway import health
from gateway.api import api

urlpatterns = [
    path("", health.root),
    path("healthz", health.healthz),
    path("readyz", health.readyz),
    path("admin/v1/", admin_api.urls),
    path("admin/", admin.site.urls),
    path("v1/", api.urls),
    re_path(r"^v1/(?P<rest>.*)$", health.not_found),
]
