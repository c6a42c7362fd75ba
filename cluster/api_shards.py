"""Admin API for sharded models under /admin/v1/shards: list, create, remove, logs. Admin keys
only (the admin API's default auth)."""

from __future__ import annotations

from asgiref.sync import sync_to_async
from django.http import HttpRequest
from ninja import Router, Schema

from cluster import sharding
from cluster import sharding_selectors as selectors
from gateway.auth import request_actor
from gateway.errors import GatewayError, InvalidRequest, NotFound

router = Router(tags=["shards"])


class Conflict(InvalidRequest):
    status = 409
    code = "conflict"


class ShardStepFailed(GatewayError):
    status = 502
    code = "shard_step_failed"


class ShardIn(Schema):
    model: str
    count: int | None = None
    gguf: str | None = None
    bind_all: bool = False


def _raise_mapped(exc: sharding.ShardError) -> None:
    message = str(exc)
    if isinstance(exc, sharding.ShardNotFound):
        raise NotFound(message, code="shard_not_found") from None
    if isinstance(exc, sharding.ShardExists | sharding.BuildMismatch | sharding.NotEnoughWorkers):
        error = Conflict(message)
        if isinstance(exc, sharding.BuildMismatch):
            error.code = "build_mismatch"
        raise error from None
    if isinstance(exc, sharding.StepFailed):
        raise ShardStepFailed(message) from None
    raise InvalidRequest(message) from None


def _grouped() -> list[dict]:
    return [{"model": model, "shards": [selectors.shard_dict(s) for s in rows]}
            for model, rows in selectors.shards_grouped().items()]


@router.get("")
async def shard_list(request: HttpRequest) -> dict:
    """Every sharded model with its processes (node, address, pid, state, restarts)."""
    return {"data": await sync_to_async(_grouped)()}


@router.post("", response={201: dict})
@router.post("/create", response={201: dict})
async def shard_create(request: HttpRequest, payload: ShardIn) -> tuple[int, dict]:
    """Shards a model across `count` workers (the create form of the original's API)."""
    def create() -> dict:
        try:
            rows = sharding.shard_create(model=payload.model.strip(), count=payload.count,
                                         actor=request_actor(request), gguf=payload.gguf,
                                         bind_all=payload.bind_all)
        except sharding.ShardError as exc:
            _raise_mapped(exc)
            raise
        return {"model": payload.model.strip(), "shards": [selectors.shard_dict(s) for s in rows]}

    return 201, await sync_to_async(create)()


@router.get("/{model}/logs")
async def shard_logs(request: HttpRequest, model: str, node: str | None = None,
                     lines: int = 50) -> dict:
    def logs() -> list[dict]:
        try:
            return sharding.shard_logs(model=model, node=node, lines=max(1, min(lines, 2000)))
        except sharding.ShardError as exc:
            _raise_mapped(exc)
            raise

    return {"model": model, "data": await sync_to_async(logs)()}


@router.delete("/{model}")
async def shard_remove(request: HttpRequest, model: str) -> dict:
    def remove() -> list[dict]:
        try:
            return sharding.shard_remove(model=model, actor=request_actor(request))
        except sharding.ShardError as exc:
            _raise_mapped(exc)
            raise

    return {"removed": model, "stopped": await sync_to_async(remove)()}
