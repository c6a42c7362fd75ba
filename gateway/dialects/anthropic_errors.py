"""GatewayError -> Anthropic's error shape: {"type":"error","error":{"type","message"}}."""

from __future__ import annotations

from typing import Any

from gateway.errors import GatewayError

_BY_STATUS = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    408: "invalid_request_error",  # the body took too long to arrive (gateway.request_limits)
    413: "request_too_large",
    429: "rate_limit_error",
    431: "invalid_request_error",  # headers too large
    500: "api_error",
    502: "api_error",
    503: "overloaded_error",
    504: "timeout_error",
    529: "overloaded_error",
}


def error_type(error: GatewayError) -> str:
    return _BY_STATUS.get(error.status, "api_error")


def error_body(error: GatewayError) -> dict[str, Any]:
    return {"type": "error", "error": {"type": error_type(error), "message": error.message}}
