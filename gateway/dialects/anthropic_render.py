"""Canonical answers -> Anthropic response bodies. Pure functions."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any


def model_list(ids: list[str], *, created: float) -> dict[str, Any]:
    stamp = datetime.fromtimestamp(created, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    data = [{"type": "model", "id": i, "display_name": i, "created_at": stamp} for i in ids]
    return {"data": data, "has_more": False,
            "first_id": ids[0] if ids else None, "last_id": ids[-1] if ids else None}
