"""The websocket behind live panels (`/ws/live`).

The page says which panels it shows and with which query parameters:
    {"panels": ["chips", "nodes"], "params": "?q=qwen"}
and the consumer sends {"panels": {"nodes": "<html>"}} whenever a panel's HTML changed, checking
each panel at its own pace. Only signed-in staff from this site's own pages may connect, and the
session is checked again every minute, so an expired or ended session stops the updates."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import time
from importlib import import_module
from typing import Any
from urllib.parse import urlsplit

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.conf import settings
from django.http import QueryDict

from flocksite.dashboard.auth import is_admin
from flocksite.dashboard.live import panel_names, panels, panels_render

log = logging.getLogger("flock.dashboard")
TICK = 0.5
SESSION_CHECK_SECONDS = 60.0
CLOSE_FORBIDDEN = 4403
CLOSE_SIGNED_OUT = 4401


def _header(scope: dict[str, Any], name: bytes) -> str:
    for key, value in scope.get("headers", []):
        if key == name:
            return value.decode("latin-1")
    return ""


def same_origin(scope: dict[str, Any]) -> bool:
    """Browsers send Origin on every websocket handshake: refuse pages of other sites, which
    would otherwise ride on the admin's session cookie."""
    origin = urlsplit(_header(scope, b"origin")).netloc
    if not origin:
        return False
    allowed = {_header(scope, b"host")}
    if settings.FLOCK.external_url:
        allowed.add(urlsplit(settings.FLOCK.external_url).netloc)
    return origin in allowed


def _signed_in(session_key: str | None) -> bool:
    from django.contrib.auth import SESSION_KEY, get_user_model

    if not session_key:
        return False
    store = import_module(settings.SESSION_ENGINE).SessionStore(session_key)
    user_id = store.get(SESSION_KEY)  # an expired session loads as empty
    if user_id is None:
        return False
    user = get_user_model()._default_manager.filter(pk=user_id).first()
    return is_admin(user)


class LiveConsumer(AsyncJsonWebsocketConsumer):
    async def connect(self) -> None:
        if not is_admin(self.scope.get("user")) or not same_origin(self.scope):
            await self.close(code=CLOSE_FORBIDDEN)
            return
        self.names: list[str] = []
        self.params = QueryDict("")
        self.sent: dict[str, str] = {}
        self.due: dict[str, float] = {}
        self.wake = asyncio.Event()
        self.session_checked = time.monotonic()
        await self.accept()
        self.ticker = asyncio.create_task(self._run())

    async def disconnect(self, code: int) -> None:
        ticker = getattr(self, "ticker", None)
        if ticker is not None:
            ticker.cancel()

    async def receive_json(self, content: Any, **kwargs: Any) -> None:
        if not isinstance(content, dict):
            return
        self.names = panel_names(",".join(str(n) for n in content.get("panels") or []))
        self.params = QueryDict(str(content.get("params") or "").lstrip("?"))
        self.sent, self.due = {}, {}  # a new subscription gets everything at once
        self.wake.set()

    async def _run(self) -> None:
        try:
            await self._loop()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            if "Disconnected" in type(exc).__name__:
                return  # the page went away while a panel was on its way: nothing to do
            log.exception("live updates stopped")  # the page reconnects, or polls
            with contextlib.suppress(Exception):
                await self.close()

    async def _loop(self) -> None:
        while True:
            try:
                await asyncio.wait_for(self.wake.wait(), TICK)
            except TimeoutError:
                pass
            self.wake.clear()
            if time.monotonic() - self.session_checked > SESSION_CHECK_SECONDS:
                self.session_checked = time.monotonic()
                key = self.scope["session"].session_key
                if not await database_sync_to_async(_signed_in)(key):
                    await self.close(code=CLOSE_SIGNED_OUT)
                    return
            await self._push_due()

    async def _push_due(self) -> None:
        now = time.monotonic()
        due = [name for name in self.names if self.due.get(name, 0.0) <= now]
        if not due:
            return
        for name in due:
            self.due[name] = now + panels()[name].every
        html = await database_sync_to_async(panels_render)(due, self.params)
        changed = {}
        for name, text in html.items():
            digest = hashlib.sha1(text.encode()).hexdigest()
            if self.sent.get(name) != digest:
                self.sent[name] = digest
                changed[name] = text
        if changed:
            await self.send_json({"panels": changed})
