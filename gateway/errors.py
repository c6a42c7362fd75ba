"""The gateway's typed errors. Views and drivers raise these; each dialect maps them to its own
error shape and status code in one place (gateway/dialects/*_errors.py)."""

from __future__ import annotations


class GatewayError(Exception):
    status = 500
    kind = "api_error"  # dialect-neutral; each dialect maps it to its own `type`
    code: str | None = None

    def __init__(self, message: str, *, param: str | None = None, code: str | None = None,
                 headers: dict[str, str] | None = None, extra: dict | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        if code:
            self.code = code
        self.headers = headers or {}
        self.extra = extra or {}


class InvalidRequest(GatewayError):
    status = 400
    kind = "invalid_request"


class AuthenticationFailed(GatewayError):
    status = 401
    kind = "authentication"
    code = "invalid_api_key"


class PermissionDenied(GatewayError):
    status = 403
    kind = "permission"


class NotFound(GatewayError):
    status = 404
    kind = "not_found"


class ModelNotFound(NotFound):
    code = "model_not_found"


class RequestTooLarge(GatewayError):
    status = 413
    kind = "request_too_large"


class RateLimited(GatewayError):
    status = 429
    kind = "rate_limit"
    code = "rate_limit_exceeded"


class EngineError(GatewayError):
    """Base for failures of an engine (never of the caller's request)."""

    status = 502
    kind = "upstream"
    retryable = True  # another candidate may succeed


class EngineUnreachable(EngineError):
    status = 503
    kind = "engine_unreachable"
    code = "engine_unreachable"

    def __init__(self, *, engine: str, endpoint: str, hint: str = "", detail: str = "") -> None:
        message = f"{engine} engine at {endpoint} is unreachable"
        if detail:
            message += f" ({detail})"
        if hint:
            message += f". Start it with: {hint}"
        super().__init__(message, extra={"engine": engine, "endpoint": endpoint, "hint": hint})
        self.engine = engine
        self.endpoint = endpoint
        self.hint = hint


class EngineFailed(EngineError):
    """The engine answered with a server error or broke the stream."""

    status = 502
    kind = "upstream"
    code = "engine_error"


class EngineTimeout(EngineError):
    status = 504
    kind = "timeout"
    code = "engine_timeout"


class EngineRejected(GatewayError):
    """The engine refused the request itself (a 4xx caused by the request): returned to the
    caller as-is, never retried on another candidate, and not a sign of an unhealthy engine."""

    kind = "invalid_request"

    def __init__(self, message: str, *, status: int = 400) -> None:
        super().__init__(message)
        self.status = status if 400 <= status < 500 else 400
        if self.status == 404:
            self.kind = "not_found"
        elif self.status == 413:
            self.kind = "request_too_large"
        elif self.status == 429:
            self.kind = "rate_limit"
