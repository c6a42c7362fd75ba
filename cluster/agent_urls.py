"""URLs of the worker agent (the ROOT_URLCONF of flocksite.settings_agent)."""

from __future__ import annotations

from django.urls import path

from cluster import agent_views

urlpatterns = [
    path("healthz", agent_views.healthz),
    path("node/v1/status", agent_views.status),
    path("node/v1/engine/<path:path>", agent_views.engine),
]
