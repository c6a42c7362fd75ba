"""Gives every request an id, returned as `x-request-id` and `request-id` (the header each SDK
reads into its errors) and used as the usage record's id."""

from __future__ import annotations

import uuid

from asgiref.sync import iscoroutinefunction, markcoroutinefunction


class RequestIdMiddleware:
    async_capable = True
    sync_capable = False

    def __init__(self, get_response) -> None:
        self.get_response = get_response
        if iscoroutinefunction(self.get_response):
            markcoroutinefunction(self)

    async def __call__(self, request):
        request_id = "req_" + uuid.uuid4().hex[:24]
        request.flock_request_id = request_id
        response = await self.get_response(request)
        if "x-request-id" not in response:
            response["x-request-id"] = request_id
        if "request-id" not in response:
            response["request-id"] = request_id
        return response
