"""ASGI entry point (`manage.py up` serves it with uvicorn: cluster/gateway_server.py)."""

from __future__ import annotations

import gc
import os
import sys

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "flocksite.settings")


def _tracing() -> None:
    from django.conf import settings

    from gateway.tracing import tracing_configure

    tracing_configure(settings.FLOCK)  # before the handler loads MIDDLEWARE; no-op when unset


_tracing()
django_asgi = get_asgi_application()

from channels.routing import ProtocolTypeRouter  # noqa: E402

from flocksite.api_handler import APIHandler, split_by_path  # noqa: E402
from flocksite.dashboard.routing import websocket_application  # noqa: E402  (dashboard: /ws/live)

http_application = split_by_path(APIHandler(), django_asgi)
# "websocket": the dashboard's live updates (flocksite/dashboard/consumers.py)
application = ProtocolTypeRouter({"http": http_application, "websocket": websocket_application})


def _tail_latency() -> None:
    """Two settings for the request path's slowest requests. The heap start-up built (Django,
    the apps, settings, URL maps) lives as long as the process, so the collector stops walking it
    (gc.freeze); and a background thread (the usage flush, the router's refresh) that holds the
    GIL hands it back to the event loop after 1 ms instead of Python's default 5 ms."""
    gc.collect()
    gc.freeze()
    sys.setswitchinterval(0.001)


_tail_latency()
