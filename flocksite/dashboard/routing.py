"""The websocket side of the ASGI app (flocksite/asgi.py routes "websocket" here)."""

from __future__ import annotations

from channels.auth import AuthMiddlewareStack
from channels.routing import URLRouter
from django.urls import path

from flocksite.dashboard.consumers import LiveConsumer

websocket_application = AuthMiddlewareStack(URLRouter([
    path("ws/live", LiveConsumer.as_asgi()),
]))
