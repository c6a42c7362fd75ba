"""The Celery app. On the embedded default (no REDIS_URL) tasks run in-process; with Redis each
node's worker consumes its own queue, named by `node_queue`."""

from __future__ import annotations

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "flocksite.settings")

app = Celery("flock")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


def node_queue(node_name: str) -> str:
    return f"node.{node_name}"
