"""ASGI entry point of the worker agent that `manage.py join` serves: the same project with the
agent's settings (flocksite.settings_agent: only the agent's routes, no middleware)."""

from __future__ import annotations

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "flocksite.settings_agent")
application = get_asgi_application()
