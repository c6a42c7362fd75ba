"""Reading request bodies and answering errors in the caller's dialect: the one place where a
GatewayError becomes an HTTP response."""

from __future__ import annotations

import json
from typing import Any

import orjson
from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, HttpResponse

from gateway.dialects import openai_errors
from gateway.errors import GatewayError, InvalidRequest, RequestTooLarge


def dialect_of(request: HttpRequest) -> str:
    path = request.path
    if path.startswith("/v1/messages"):
        return "anthropic"
    if path.startswith("/v1/models") and "anthropic-version" in request.headers:
        return "anthropic"
    return "openai"


def error_body(dialect: str, error: GatewayError) -> dict[str, Any]:
    if dialect == "anthropic":
        from gateway.dialects import anthropic_errors

        return anthropic_errors.error_body(error)
    return openai_errors.error_body(error)


def json_response(body: Any, status: int = 200) -> HttpResponse:
    """A JSON answer, encoded by orjson (a tenth of the json module's time for an answer); a
    value orjson refuses (an integer past 64 bits in an engine's usage) falls back to json."""
    try:
        content = orjson.dumps(body)
    except TypeError:
        content = json.dumps(body).encode()
    return HttpResponse(content, content_type="application/json", status=status)


def error_response(request: HttpRequest, error: GatewayError) -> HttpResponse:
    dialect = dialect_of(request)
    status = error.status
    if dialect == "openai" and status == 529:
        status = 503
    elif dialect == "anthropic" and status == 503:
        status = 529  # Anthropic's "overloaded": its clients back off and retry
    response = json_response(error_body(dialect, error), status=status)
    for name, value in error.headers.items():
        response[name] = value
    request_id = getattr(request, "flock_request_id", None)
    if request_id:
        response["x-request-id"] = request_id
    return response


def read_json(request: HttpRequest) -> Any:
    try:
        raw = request.body
    except RequestDataTooBig:
        from django.conf import settings

        raise RequestTooLarge(
            f"Request body is larger than the limit of {settings.DATA_UPLOAD_MAX_MEMORY_SIZE} "
            "bytes (FLOCK_MAX_BODY_MB).") from None
    if not raw.strip():
        raise InvalidRequest("The request body is empty; expected a JSON object.")
    try:
        return json.loads(raw)
    except ValueError as exc:
        raise InvalidRequest(f"The request body is not valid JSON ({exc}).") from None
