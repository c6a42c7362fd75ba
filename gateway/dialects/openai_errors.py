"""GatewayError -> OpenAI's error shape: {"error":{"message","type","param","code"}}."""

from __future__ import annotations

from typing import Any

from gateway.errors import GatewayError

_TYPES = {
    "invalid_request": "invalid_request_error",
    "authentication": "authentication_error",
    "permission": "permission_error",
    "not_found": "invalid_request_error",
    "request_too_large": "invalid_request_error",
    "rate_limit": "rate_limit_error",
    "engine_unreachable": "engine_unreachable",
    "upstream": "server_error",
    "timeout": "timeout_error",
    "api_error": "server_error",
}


def error_body(error: GatewayError) -> dict[str, Any]:
    body: dict[str, Any] = {
        "message": error.message,
        "type": _TYPES.get(error.kind, "server_error"),
        "param": error.param,
        "code": error.code,
    }
    for name, value in error.extra.items():
        if name in ("engine", "endpoint", "hint"):
            body[name] = value
    return {"error": body}
