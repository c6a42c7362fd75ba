"""The worker agent's HTTP side: `manage.py join` serves these (flocksite.settings_agent) on the
worker's cluster address, so the leader reaches the engine bound to 127.0.0.1 on this box.

  ANY /node/v1/engine/<path>  relayed to the local engine's <path>, streams included
  GET /node/v1/status         this agent's load, for the heartbeat
  GET /healthz                liveness, unauthenticated

The leader presents the node's agent secret as `Authorization: Bearer` (or `x-api-key`); the
agent knows only its SHA-256 (FLOCK_AGENT_SECRET_SHA256). The engine's own key, if it needs one
(vLLM's VLLM_API_KEY), is added here and never crosses the network."""

from __future__ import annotations

import logging
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass
from functools import lru_cache

import httpx
from django.http import HttpRequest, HttpResponse, JsonResponse, StreamingHttpResponse
from django.views.decorators.csrf import csrf_exempt

from cluster.agent import secret_matches
from gateway import http

log = logging.getLogger("cluster.agent")

STREAMING_TYPES = ("text/event-stream", "application/x-ndjson", "application/jsonl")
FORWARDED_HEADERS = ("content-type", "accept", "anthropic-version", "anthropic-beta")
RELAYED_HEADERS = ("content-type", "cache-control", "retry-after")


@dataclass(frozen=True)
class AgentConfig:
    node: str
    secret_sha256: str
    engine: str
    engine_endpoint: str
    engine_key: str


@lru_cache(maxsize=1)
def agent_config() -> AgentConfig:
    env = os.environ
    return AgentConfig(node=env.get("FLOCK_AGENT_NODE", ""),
                       secret_sha256=env.get("FLOCK_AGENT_SECRET_SHA256", ""),
                       engine=env.get("FLOCK_AGENT_ENGINE", ""),
                       engine_endpoint=env.get("FLOCK_AGENT_ENGINE_ENDPOINT", "").rstrip("/"),
                       engine_key=env.get("FLOCK_AGENT_ENGINE_KEY", ""))


_load = {"in_flight": 0, "served": 0, "failed": 0}


def _error(status: int, message: str, kind: str) -> JsonResponse:
    return JsonResponse({"error": {"message": message, "type": kind}}, status=status)


def _authorized(request: HttpRequest, cfg: AgentConfig) -> bool:
    header = request.headers.get("authorization", "")
    presented = header[7:].strip() if header[:7].lower() == "bearer " else \
        request.headers.get("x-api-key", "").strip()
    return secret_matches(presented, cfg.secret_sha256)


def _upstream_headers(request: HttpRequest, cfg: AgentConfig) -> dict[str, str]:
    headers = {name: request.headers[name] for name in FORWARDED_HEADERS if name in request.headers}
    if cfg.engine_key:
        if cfg.engine == "anthropic":
            headers["x-api-key"] = cfg.engine_key
        else:
            headers["authorization"] = f"Bearer {cfg.engine_key}"
    return headers


async def _relay(upstream: httpx.Response) -> AsyncIterator[bytes]:
    # Closing this generator (the leader hung up) closes the engine request, so it stops.
    try:
        async for chunk in upstream.aiter_raw():
            yield chunk
    finally:
        await upstream.aclose()
        _load["in_flight"] -= 1


@csrf_exempt
async def engine(request: HttpRequest, path: str) -> HttpResponse:
    cfg = agent_config()
    if not _authorized(request, cfg):
        return _error(401, "This agent answers only its leader (wrong or missing agent secret).",
                      "authentication_error")
    if not cfg.engine_endpoint:
        return _error(503, f"Node {cfg.node} has no engine configured.", "engine_unreachable")
    url = f"{cfg.engine_endpoint}/{path}"
    if request.META.get("QUERY_STRING"):
        url += "?" + request.META["QUERY_STRING"]
    client = http.client()
    outgoing = client.build_request(request.method or "GET", url, content=request.body,
                                    headers=_upstream_headers(request, cfg),
                                    timeout=httpx.Timeout(None, connect=5.0))
    _load["in_flight"] += 1
    try:
        upstream = await client.send(outgoing, stream=True)
    except httpx.HTTPError as exc:
        _load["in_flight"] -= 1
        _load["failed"] += 1
        return _error(502, f"The {cfg.engine or 'local'} engine on node {cfg.node} at "
                           f"{cfg.engine_endpoint} is unreachable ({type(exc).__name__}).",
                      "engine_unreachable")
    _load["served"] += 1
    content_type = upstream.headers.get("content-type", "application/octet-stream")
    if content_type.split(";")[0].strip() in STREAMING_TYPES:
        response: HttpResponse = StreamingHttpResponse(_relay(upstream), status=upstream.status_code,
                                                       content_type=content_type)
        response["x-accel-buffering"] = "no"
    else:
        try:
            body = await upstream.aread()
        except httpx.HTTPError as exc:
            return _error(502, f"The engine on node {cfg.node} broke the connection "
                               f"({type(exc).__name__}).", "upstream")
        finally:
            await upstream.aclose()
            _load["in_flight"] -= 1
        response = HttpResponse(body, status=upstream.status_code, content_type=content_type)
    for name in RELAYED_HEADERS[1:]:
        if name in upstream.headers:
            response[name] = upstream.headers[name]
    return response


async def status(request: HttpRequest) -> HttpResponse:
    cfg = agent_config()
    if not _authorized(request, cfg):
        return _error(401, "wrong or missing agent secret", "authentication_error")
    return JsonResponse({"node": cfg.node, "engine": cfg.engine,
                         "engine_endpoint": cfg.engine_endpoint, **_load})


async def healthz(request: HttpRequest) -> HttpResponse:
    return JsonResponse({"status": "ok", "role": "worker-agent"})
