"""Every response carries a Date header (RFC 9110 section 6.6.1 asks it of servers with a clock).
daphne adds none, and a worker's `manage.py doctor` compares its clock with the leader's through
it."""

from __future__ import annotations

import time
from email.utils import formatdate

from asgiref.sync import iscoroutinefunction, markcoroutinefunction

_cached: list = [0, ""]  # [second, its HTTP date]


def http_date() -> str:
    now = int(time.time())
    if _cached[0] != now:
        _cached[0], _cached[1] = now, formatdate(now, usegmt=True)
    return _cached[1]


class DateHeaderMiddleware:
    async_capable = True
    sync_capable = False

    def __init__(self, get_response) -> None:
        self.get_response = get_response
        if iscoroutinefunction(self.get_response):
            markcoroutinefunction(self)

    async def __call__(self, request):
        response = await self.get_response(request)
        if "date" not in response:
            response["Date"] = http_date()
        return response
