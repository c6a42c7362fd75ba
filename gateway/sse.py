"""Server-sent event framing, exactly: `event: NAME\ndata: JSON\n\n`."""

from __future__ import annotations

import json
from typing import Any

import orjson

DONE = b"data: [DONE]\n\n"
PING_FRAME = b": ping\n\n"  # an SSE comment: keeps the connection alive, clients ignore it


def _dumps_bytes(data: Any) -> bytes:
    # orjson: compact UTF-8 like json.dumps(ensure_ascii=False), several times faster; what it
    # refuses (integers past 64 bits, odd types) goes through json.
    try:
        return orjson.dumps(data, option=orjson.OPT_NON_STR_KEYS)
    except TypeError:
        return json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode()


def dumps(data: Any) -> str:
    return _dumps_bytes(data).decode()


def frame(data: Any, event: str | None = None) -> bytes:
    payload = data.encode() if isinstance(data, str) else _dumps_bytes(data)
    head = f"event: {event}\n".encode() if event else b""
    return head + b"data: " + payload + b"\n\n"
