"""Server-sent event framing, exactly: `event: NAME\ndata: JSON\n\n`."""

from __future__ import annotations

import json
from typing import Any

DONE = b"data: [DONE]\n\n"
PING_FRAME = b": ping\n\n"  # an SSE comment: keeps the connection alive, clients ignore it


def dumps(data: Any) -> str:
    return json.dumps(data, ensure_ascii=False, separators=(",", ":"))


def frame(data: Any, event: str | None = None) -> bytes:
    payload = data if isinstance(data, str) else dumps(data)
    head = f"event: {event}\n" if event else ""
    return f"{head}data: {payload}\n\n".encode()
