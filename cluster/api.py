"""Admin API for the cluster's state (mounted under /admin/v1 by flocksite/admin_api.py)."""

from __future__ import annotations

from asgiref.sync import sync_to_async
from django.conf import settings
from django.http import HttpRequest
from ninja import Router

from cluster.api_nodes import router as nodes_router
from cluster.selectors import cluster_counts
from gateway.router import router as model_router

router = Router(tags=["cluster"])
router.add_router("/nodes", nodes_router)


@router.get("/status")
async def status(request: HttpRequest) -> dict:
    """The compact view behind the dashboard's chips: role, engines, node and model counts."""
    engines = []
    for node, engine in await model_router.pool():
        engines.append({"node": node, "engine": engine.kind, "endpoint": engine.endpoint,
                        "reachable": await engine.health()})
    models = {model.id for _node, _engine, model in await model_router.available()}
    counts = await sync_to_async(cluster_counts)()
    return {"role": "leader", "engines": engines,
            "engine_reachable": any(e["reachable"] for e in engines),
            "nodes": counts["nodes"], "nodes_ready": counts["nodes_ready"],
            "models": len(models), "api_keys_active": counts["api_keys_active"]}


@router.get("/config")
async def config(request: HttpRequest) -> dict:
    """The effective configuration, secrets redacted."""
    return settings.FLOCK.redacted()
