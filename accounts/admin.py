"""Django admin for keys, usage and the audit log: read-mostly; changes go through the services
so each one is audited, and no secret or hash is ever displayed."""

from __future__ import annotations

from django.contrib import admin, messages
from django.http import HttpRequest

from accounts import services
from accounts.audit import Actor
from accounts.models import ApiKey, AuditEntry, UsageRecord


def admin_actor(request: HttpRequest) -> Actor:
    return Actor(name=f"admin:{request.user.get_username()}", source="admin",
                 ip=request.META.get("REMOTE_ADDR") or None)


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    list_display = ("id", "name", "scope", "owner", "shown_prefix", "daily_token_quota",
                    "rpm_limit", "status", "last_used_at", "created_at")
    list_filter = ("scope",)
    search_fields = ("name", "owner__username")
    fields = ("name", "scope", "owner", "daily_token_quota", "rpm_limit", "allowed_models",
              "expires_at", "shown_prefix", "created_at", "revoked_at", "last_used_at")
    readonly_fields = ("shown_prefix", "created_at", "revoked_at", "last_used_at")
    actions = ("revoke_selected",)

    @admin.display(description="key")
    def shown_prefix(self, key: ApiKey) -> str:
        return f"sk-flock-{key.lookup[:4]}…" if key.lookup else "(shown once when created)"

    @admin.display(description="status")
    def status(self, key: ApiKey) -> str:
        return "revoked" if key.revoked_at else ("active" if key.is_active else "expired")

    def get_readonly_fields(self, request, obj=None):
        return self.readonly_fields + (("scope",) if obj else ())

    def save_model(self, request, obj: ApiKey, form, change: bool) -> None:
        actor = admin_actor(request)
        if not change:
            issued = services.key_create(
                name=obj.name, scope=obj.scope, daily_token_quota=obj.daily_token_quota,
                rpm_limit=obj.rpm_limit, allowed_models=obj.allowed_models or [],
                expires_at=obj.expires_at, owner=obj.owner, actor=actor)
            obj.pk = issued.key.pk
            messages.warning(request, f"New key (shown only now, copy it): {issued.plaintext}")
            return
        changes = {name: form.cleaned_data[name] for name in form.changed_data
                   if name in services.KEY_EDITABLE}
        if changes:
            services.key_update(key=ApiKey.objects.get(pk=obj.pk), actor=actor, **changes)

    def has_delete_permission(self, request, obj=None) -> bool:
        return False  # revoke instead: usage and audit keep referring to the key

    @admin.action(description="Revoke selected keys")
    def revoke_selected(self, request, queryset) -> None:
        actor = admin_actor(request)
        revoked = 0
        for key in queryset.filter(revoked_at__isnull=True):
            services.key_revoke(key=key, actor=actor)
            revoked += 1
        self.message_user(request, f"Revoked {revoked} key(s).")


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.register(UsageRecord)
class UsageRecordAdmin(ReadOnlyAdmin):
    list_display = ("created_at", "key_name", "model", "protocol", "node", "prompt_tokens",
                    "completion_tokens", "latency_ms", "ttft_ms", "outcome")
    list_filter = ("outcome", "protocol", "model")
    search_fields = ("key_name", "model", "request_id")
    date_hierarchy = "created_at"


@admin.register(AuditEntry)
class AuditEntryAdmin(ReadOnlyAdmin):
    list_display = ("id", "created_at", "actor", "source", "action", "target", "source_ip")
    list_filter = ("source", "action")
    search_fields = ("actor", "action", "target")
