"""The audit log: who changed what, from where. Every admin mutation, whether it came through
the admin API, a management command or Django admin, writes exactly one entry through
`audit_record`. Entries are chained by SHA-256 so that `audit_verify` detects tampering."""

from __future__ import annotations

import getpass
import hashlib
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import connection, transaction
from django.utils import timezone

from accounts.models import AuditEntry

GENESIS = "0" * 64
_LOCK_ID = 0x466C6F636B  # "Flock": serialises chain appends on PostgreSQL


@dataclass(frozen=True)
class Actor:
    """Who performs an admin action, and through which door."""

    name: str
    source: str  # api | cli | admin | system
    ip: str | None = None
    key_id: int | None = None

    @classmethod
    def cli(cls) -> Actor:
        try:
            user = getpass.getuser()
        except Exception:
            user = "unknown"
        return cls(name=f"cli:{user}", source="cli")

    @classmethod
    def system(cls, what: str = "flock") -> Actor:
        return cls(name=f"system:{what}", source="system")


def _digest(prev_hash: str, created_at: datetime, actor: str, source: str, ip: str | None,
            action: str, target: str, details: dict[str, Any]) -> str:
    payload = json.dumps([prev_hash, created_at.isoformat(), actor, source, ip, action, target,
                          details], sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(payload.encode()).hexdigest()


def audit_record(*, actor: Actor, action: str, target: str = "",
                 details: dict[str, Any] | None = None) -> AuditEntry:
    """Appends one entry to the chain. Call it inside the mutation's transaction."""
    details = json.loads(json.dumps(details or {}, default=str))
    with transaction.atomic():
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_LOCK_ID])
        last = AuditEntry.objects.order_by("-id").values_list("hash", flat=True).first()
        prev = last or GENESIS
        now = timezone.now()
        entry = AuditEntry(created_at=now, actor=actor.name, source=actor.source,
                           source_ip=actor.ip, action=action, target=target, details=details,
                           prev_hash=prev)
        entry.hash = _digest(prev, now, actor.name, actor.source, actor.ip, action, target, details)
        entry.save()
    return entry


@dataclass(frozen=True)
class ChainReport:
    ok: bool
    checked: int
    broken_at: int | None = None
    reason: str = ""


def audit_verify() -> ChainReport:
    """Walks the chain from the first entry; reports the first entry whose content, hash or
    link does not match."""
    prev = GENESIS
    checked = 0
    for entry in AuditEntry.objects.order_by("id").iterator():
        if entry.prev_hash != prev:
            return ChainReport(False, checked, entry.id, "an entry before it was removed or changed")
        expected = _digest(prev, entry.created_at, entry.actor, entry.source, entry.source_ip,
                           entry.action, entry.target, entry.details)
        if entry.hash != expected:
            return ChainReport(False, checked, entry.id, "its content does not match its hash")
        prev = entry.hash
        checked += 1
    return ChainReport(True, checked)
