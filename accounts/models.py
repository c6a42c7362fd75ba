from __future__ import annotations

from django.conf import settings
from django.db import models


class Scope(models.TextChoices):
    ADMIN = "admin", "admin"
    USER = "user", "user"
    NODE = "node", "node"


class ApiKey(models.Model):
    """An API key. Only a SHA-256 hash of the secret is stored; `lookup` is the non-secret
    leading part of the key used to find the row before the constant-time hash compare."""

    name = models.CharField(max_length=100)
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    scope = models.CharField(max_length=10, choices=Scope.choices, default=Scope.USER)
    lookup = models.CharField(max_length=32, unique=True)
    secret_hash = models.CharField(max_length=64)
    daily_token_quota = models.PositiveBigIntegerField(default=0, help_text="0 means unlimited")
    rpm_limit = models.PositiveIntegerField(default=0, help_text="requests per minute; 0 means unlimited")
    allowed_models = models.JSONField(default=list, blank=True,
                                      help_text="model ids this key may call; empty means all")
    expires_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.name} ({self.scope})"

    @property
    def is_active(self) -> bool:
        from django.utils import timezone

        return self.revoked_at is None and (self.expires_at is None
                                            or self.expires_at > timezone.now())


class Outcome(models.TextChoices):
    OK = "ok", "ok"
    ERROR = "error", "error"
    ABORTED = "aborted", "aborted"


class UsageRecord(models.Model):
    """One inference request. Keeps ids and name snapshots instead of foreign keys so records
    survive deleted keys and nodes."""

    created_at = models.DateTimeField(db_index=True)
    request_id = models.CharField(max_length=40, unique=True)
    key_id = models.BigIntegerField(null=True, blank=True, db_index=True)
    key_name = models.CharField(max_length=100, blank=True)
    model = models.CharField(max_length=200, db_index=True)
    protocol = models.CharField(max_length=20)
    endpoint = models.CharField(max_length=40)
    node = models.CharField(max_length=100, blank=True)
    engine = models.CharField(max_length=20, blank=True)
    stream = models.BooleanField(default=False)
    prompt_tokens = models.PositiveIntegerField(default=0)
    completion_tokens = models.PositiveIntegerField(default=0)
    latency_ms = models.PositiveIntegerField(default=0)
    ttft_ms = models.PositiveIntegerField(null=True, blank=True)
    outcome = models.CharField(max_length=10, choices=Outcome.choices)
    status_code = models.PositiveSmallIntegerField(default=200)
    error_type = models.CharField(max_length=60, blank=True)
    attempts = models.PositiveSmallIntegerField(
        default=0, help_text="engines tried; above 1 when a fallback answered")
    requested_model = models.CharField(
        max_length=200, blank=True, help_text="the name the caller asked for ('auto', or the "
                                              "primary of a fallback chain); `model` served it")

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.request_id} {self.model} {self.outcome}"

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


class UsageHour(models.Model):
    """Usage records summed per UTC hour, key and model, so summaries over millions of records
    read a few thousand rows. Kept by database triggers on UsageRecord (accounts/rollup_sql.py),
    whatever writes the records; `key_id` 0 stands for no key."""

    hour = models.DateTimeField()
    key_id = models.BigIntegerField(default=0)
    key_name = models.CharField(max_length=100, blank=True)
    model = models.CharField(max_length=200)
    requests = models.BigIntegerField(default=0)
    errors = models.BigIntegerField(default=0)
    prompt_tokens = models.BigIntegerField(default=0)
    completion_tokens = models.BigIntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["hour", "key_id", "key_name", "model"],
                                               name="usagehour_unique")]


class LatencyHour(models.Model):
    """How many answered requests per UTC hour fell in each latency (kind 0) or time-to-first-
    token (kind 1) bucket: exact below 1 s, three significant digits above (accounts/rollup_sql.py).
    Kept by the same triggers as UsageHour."""

    hour = models.DateTimeField()
    kind = models.PositiveSmallIntegerField()
    bucket = models.BigIntegerField()
    count = models.BigIntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["hour", "kind", "bucket"],
                                               name="latencyhour_unique")]


class AuditEntry(models.Model):
    """One admin mutation. Append-only: rows are chained by hash (each row's hash covers its
    content and the previous row's hash), so `audit --verify` detects any edit or deletion."""

    created_at = models.DateTimeField(db_index=True)
    actor = models.CharField(max_length=150)
    source = models.CharField(max_length=10)  # api | cli | admin | system
    source_ip = models.GenericIPAddressField(null=True, blank=True)
    action = models.CharField(max_length=60, db_index=True)
    target = models.CharField(max_length=200, blank=True)
    details = models.JSONField(default=dict, blank=True)
    prev_hash = models.CharField(max_length=64)
    hash = models.CharField(max_length=64, unique=True)

    class Meta:
        ordering = ["-id"]
        verbose_name_plural = "audit entries"

    def __str__(self) -> str:
        return f"{self.created_at:%Y-%m-%d %H:%M:%S} {self.actor} {self.action} {self.target}"

    def save(self, *args, **kwargs) -> None:
        if self.pk is not None:
            raise ValueError("audit entries are append-only")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise ValueError("audit entries are append-only")
