"""GET /metrics: Prometheus text with django-prometheus's request metrics, the gateway's flock_*
metrics summed over every gateway process sharing the data dir, and the cluster's state.

Open to loopback callers; from elsewhere, to addresses in FLOCK_METRICS_ALLOW
(observability.metrics_allow) and to callers presenting an admin key."""

from __future__ import annotations

import ipaddress

from asgiref.sync import sync_to_async
from django.conf import settings
from django.http import HttpRequest, HttpResponse
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

from accounts.models import Scope
from flocksite import prometheus_dir
from gateway import metrics
from gateway.auth import authenticate_key, presented_key
from gateway.errors import AuthenticationFailed, GatewayError, PermissionDenied
from gateway.metrics_cluster import cluster_collector
from gateway.responses import error_response

HINT = ("/metrics is open to 127.0.0.1; from elsewhere send an admin key "
        "(Authorization: Bearer ...) or list the scraper's address in FLOCK_METRICS_ALLOW.")


def address_allowed(address: str, allow: tuple[str, ...]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    if ip.is_loopback or (ip.version == 6 and ip.ipv4_mapped and ip.ipv4_mapped.is_loopback):
        return True
    return any(ip in ipaddress.ip_network(network) for network in allow)


async def metrics_access(request: HttpRequest) -> None:
    """Raises the error to answer with when the caller may not read the metrics."""
    if address_allowed(request.META.get("REMOTE_ADDR") or "", settings.FLOCK.metrics_allow):
        return
    plaintext = presented_key(request)
    if not plaintext:
        raise AuthenticationFailed(f"No API key provided. {HINT}")
    info = await authenticate_key(plaintext)
    if info is None:
        raise AuthenticationFailed(f"Invalid API key. {HINT}")
    if info.scope != Scope.ADMIN:
        raise PermissionDenied(f"A {info.scope}-scope key cannot read metrics. {HINT}",
                               code="insufficient_scope")


def exposition(extra: Collector) -> bytes:
    directory = prometheus_dir.multiprocess_dir()
    if directory is not None:
        prometheus_dir.dead_processes_forget(directory)
        registry = CollectorRegistry(auto_describe=False)
        MultiProcessCollector(registry, path=str(directory))
        base = generate_latest(registry)
    else:
        base = generate_latest(REGISTRY)
    own = CollectorRegistry(auto_describe=False)
    own.register(extra)
    return base + generate_latest(own)


async def metrics_view(request: HttpRequest) -> HttpResponse:
    try:
        await metrics_access(request)
    except GatewayError as exc:
        return error_response(request, exc)
    metrics.usage_buffer_sample()
    extra = await cluster_collector()
    body = await sync_to_async(exposition, thread_sensitive=False)(extra)
    return HttpResponse(body, content_type=CONTENT_TYPE_LATEST)
