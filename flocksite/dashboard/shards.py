"""Shards: models split across several nodes with llama.cpp RPC, grouped by model with the state
of each process; creating a shard set (in the background: the coordinator may take minutes to
load) and tearing one down, and each process's log."""

from __future__ import annotations

import logging
from typing import Any

from django.http import HttpRequest, HttpResponse, QueryDict
from django.views.decorators.http import require_GET, require_POST

from catalog.selectors import catalog_search
from cluster import sharding
from cluster import sharding_selectors as selectors
from cluster.models import ShardState
from flocksite.dashboard.auth import actor_of, staff_required
from flocksite.dashboard.background import background_start
from flocksite.dashboard.layout import page
from flocksite.dashboard.responses import action_done, action_failed, form_int

log = logging.getLogger("flock.dashboard")
TO = "dashboard:shards"
# Why the last background `shard create` of a model failed, shown until the next attempt.
_failures: dict[str, str] = {}


def _health(rows: list[dict]) -> str:
    states = {row["state"] for row in rows}
    if states == {ShardState.READY}:
        return "ready"
    if ShardState.CRASHLOOP in states:
        return "crashloop"
    if states & {ShardState.RESTARTING, ShardState.STARTING}:
        return "starting" if ShardState.STARTING in states else "restarting"
    return "stopped"


def shards_context(params: QueryDict) -> dict[str, Any]:
    groups = []
    for model, rows in selectors.shards_grouped().items():
        shards = [selectors.shard_dict(s) for s in rows]
        groups.append({"model": model, "shards": shards, "health": _health(shards),
                       "workers": sum(1 for s in shards if s["role"] == "rpc")})
    sharded = {g["model"] for g in groups}
    return {"groups": groups, "failures": {m: why for m, why in _failures.items() if m not in sharded},
            "workers_ready": len(selectors.workers_by_free_memory()),
            "needing": [e for e in catalog_search("", sort="size") if e.sharding_required]}


@staff_required
def shards_page(request: HttpRequest) -> HttpResponse:
    context = shards_context(request.GET)
    choices = [e for e in catalog_search("", sort="size") if e.sources.llamacpp is not None]
    return page(request, "dashboard/shards.html", "shards", choices=choices, **context)


def _create(*, model: str, count: int, actor) -> None:
    try:
        sharding.shard_create(model=model, count=count, actor=actor)
    except sharding.ShardError as exc:
        _failures[model] = str(exc)
        log.warning("sharding %s from the dashboard failed: %s", model, exc)


@require_POST
@staff_required
def shard_create(request: HttpRequest) -> HttpResponse:
    """Checks what can be checked at once (model, workers, builds), then starts the processes in
    the background; the live panel shows them come up, or why they did not."""
    model = (request.POST.get("model") or "").strip()
    if not model:
        return action_failed(request, "Pick a model to shard.", to=TO)
    try:
        count = form_int(request.POST, "workers", default=0, minimum=0) or None
        target = sharding.target_resolve(model, count)
        coordinator = sharding.coordinator_node()
        workers = sharding.workers_pick(target.count, exclude=coordinator)
        sharding.builds_check([*workers, coordinator])
        if selectors.shards_for(model):
            raise sharding.ShardExists(f"{model} is already sharded; tear it down first.")
    except (ValueError, sharding.ShardError) as exc:
        return action_failed(request, str(exc), to=TO, status=409)
    _failures.pop(model, None)
    background_start(_create, model=model, count=target.count, actor=actor_of(request))
    names = ", ".join(n.name for n in workers)
    return action_done(request, f"Sharding {model} across {names}, coordinated by {coordinator.name}: "
                                "the processes appear below as they start.", to=TO)


@require_POST
@staff_required
def shard_remove(request: HttpRequest) -> HttpResponse:
    model = (request.POST.get("model") or "").strip()
    try:
        stopped = sharding.shard_remove(model=model, actor=actor_of(request))
    except sharding.ShardError as exc:
        return action_failed(request, str(exc), to=TO, status=404)
    _failures.pop(model, None)
    return action_done(request, f"{model} was torn down: {len(stopped)} processes stopped.", to=TO)


@require_GET
@staff_required
def shard_logs(request: HttpRequest, model: str) -> HttpResponse:
    try:
        logs = sharding.shard_logs(model=model, node=request.GET.get("node") or None, lines=200)
    except sharding.ShardError as exc:
        return action_failed(request, str(exc), to=TO, status=404)
    return page(request, "dashboard/shard_logs.html", "shards", model=model, logs=logs)
