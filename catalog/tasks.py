"""Celery tasks for models. Thin: each takes an id and calls one service. They run on the
node's own queue (flocksite.celery.node_queue), or in-process via .apply() (see services)."""

from __future__ import annotations

from celery import shared_task

from catalog import services

# A 400 GB pull on a slow line takes hours; past this the pull is stuck, not slow.
PULL_SOFT_LIMIT = 12 * 3600


@shared_task(name="catalog.model_pull", soft_time_limit=PULL_SOFT_LIMIT,
             time_limit=PULL_SOFT_LIMIT + 120, acks_late=True)
def model_pull(installed_id: int) -> dict:
    installed = services.model_pull(installed_id=installed_id)
    return {"model": installed.model_id, "state": installed.state,
            "bytes": installed.bytes_total, "endpoint": installed.serve_endpoint}


@shared_task(name="catalog.model_unload", soft_time_limit=60, time_limit=90)
def model_unload(installed_id: int) -> dict:
    return services.model_unload(installed_id=installed_id)
