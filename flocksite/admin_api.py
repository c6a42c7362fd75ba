"""The admin API under /admin/v1: one NinjaAPI, one router per app, admin keys only."""

from __future__ import annotations

from django.db import DataError
from django.http import HttpRequest, HttpResponse
from ninja import NinjaAPI
from ninja.errors import AuthenticationError, ValidationError
from ninja.errors import HttpError as NinjaHttpError

from accounts.api import router as accounts_router
from cluster.api import router as cluster_router
from cluster.api_shards import router as shards_router
from gateway.auth import AdminKey
from gateway.errors import AuthenticationFailed, GatewayError, InvalidRequest
from gateway.responses import error_response

admin_api = NinjaAPI(title="Flock admin", version="1", urls_namespace="admin_v1", auth=AdminKey(),
                     docs_url=None)
admin_api.add_router("", accounts_router)
admin_api.add_router("", cluster_router)
admin_api.add_router("/shards", shards_router)


@admin_api.exception_handler(GatewayError)
def _gateway_error(request: HttpRequest, exc: GatewayError) -> HttpResponse:
    return error_response(request, exc)


@admin_api.exception_handler(AuthenticationError)
def _auth_error(request: HttpRequest, exc: AuthenticationError) -> HttpResponse:
    return error_response(request, AuthenticationFailed("Invalid API key."))


@admin_api.exception_handler(OverflowError)
@admin_api.exception_handler(DataError)
def _out_of_range(request: HttpRequest, exc: Exception) -> HttpResponse:
    # A number or a text the database (or a date) cannot hold: the caller's mistake, not ours.
    return error_response(request, InvalidRequest("A value in the request is out of range."))


@admin_api.exception_handler(ValidationError)
def _validation_error(request: HttpRequest, exc: ValidationError) -> HttpResponse:
    first = exc.errors[0] if exc.errors else {}
    where = ".".join(str(p) for p in first.get("loc", ()) if p not in ("body", "payload"))
    return error_response(request, InvalidRequest(
        f"{where or 'body'}: {first.get('msg', 'invalid value')}", param=where or None))


@admin_api.exception_handler(NinjaHttpError)
def _http_error(request: HttpRequest, exc: NinjaHttpError) -> HttpResponse:
    error = GatewayError(str(exc))
    error.status = exc.status_code
    return error_response(request, error)
