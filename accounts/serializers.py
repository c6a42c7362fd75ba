"""Plain-dict forms of keys, usage rows and audit entries for the admin API and `--json`.
Never includes a key's hash or secret."""

from __future__ import annotations

from typing import Any

from accounts import keys as key_format
from accounts.models import ApiKey, AuditEntry, UsageRecord


def _iso(value) -> str | None:
    return value.isoformat() if value else None


def key_dict(key: ApiKey) -> dict[str, Any]:
    return {
        "id": key.id, "name": key.name, "scope": key.scope,
        "prefix": f"{key_format.PREFIX}{key.lookup[:4]}…",
        "owner": key.owner.get_username() if key.owner_id else None,
        "daily_token_quota": key.daily_token_quota, "rpm_limit": key.rpm_limit,
        "allowed_models": key.allowed_models, "expires_at": _iso(key.expires_at),
        "created_at": _iso(key.created_at), "revoked_at": _iso(key.revoked_at),
        "last_used_at": _iso(key.last_used_at),
        "status": "revoked" if key.revoked_at else ("active" if key.is_active else "expired"),
    }


def usage_dict(row: UsageRecord) -> dict[str, Any]:
    return {
        "request_id": row.request_id, "time": _iso(row.created_at), "key_id": row.key_id,
        "user": row.key_name, "model": row.model, "protocol": row.protocol,
        "endpoint": row.endpoint, "node": row.node, "engine": row.engine, "stream": row.stream,
        "prompt_tokens": row.prompt_tokens, "completion_tokens": row.completion_tokens,
        "latency_ms": row.latency_ms, "ttft_ms": row.ttft_ms, "outcome": row.outcome,
        "status": row.status_code, "error": row.error_type,
    }


def audit_dict(entry: AuditEntry) -> dict[str, Any]:
    return {
        "id": entry.id, "time": _iso(entry.created_at), "actor": entry.actor,
        "source": entry.source, "source_ip": entry.source_ip, "action": entry.action,
        "target": entry.target, "details": entry.details,
    }
