"""Work a dashboard action starts and does not wait for: a model pull, which in the embedded
setup (eager Celery) runs in the calling process for minutes. Its progress and outcome are
written to its row, which the Models page shows live."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from django.db import connections

log = logging.getLogger("flock.dashboard")


def background_start(fn: Callable[..., Any], /, **kwargs: Any) -> threading.Thread:
    def run() -> None:
        try:
            fn(**kwargs)
        except Exception:  # the service already recorded why on the row; keep the trace too
            log.exception("%s(%s) failed in the background", fn.__name__, kwargs.get("spec", ""))
        finally:
            connections.close_all()

    thread = threading.Thread(target=run, name=f"dashboard-{fn.__name__}", daemon=True)
    thread.start()
    return thread
