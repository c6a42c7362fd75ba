"""Django admin for nodes, placements, join tokens and shards: read-mostly (state comes from
heartbeats, the services and the shard supervisors); drain, undrain, remove and tearing down a
sharded model go through the services so they are audited. No key, secret or token hash is ever
displayed."""

from __future__ import annotations

from django.contrib import admin

from accounts.admin import ReadOnlyAdmin, admin_actor
from cluster import membership, sharding
from cluster.models import JoinToken, Node, Placement, Shard


class PlacementInline(admin.TabularInline):
    model = Placement
    fields = ("model", "state", "updated_at")
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Node)
class NodeAdmin(ReadOnlyAdmin):
    list_display = ("name", "role", "state", "address", "engine", "engine_reachable", "in_flight",
                    "last_heartbeat_at", "llama_cpp_build")
    list_filter = ("role", "state", "engine")
    search_fields = ("name", "address")
    fields = ("name", "role", "state", "address", "engine", "engine_endpoint", "engine_embedded",
              "engine_reachable", "engine_error", "in_flight", "hardware", "llama_cpp_build",
              "created_at", "last_heartbeat_at", "drain_requested_at", "offline_since")
    readonly_fields = fields
    inlines = (PlacementInline,)
    actions = ("drain_selected", "undrain_selected", "remove_selected")

    def has_change_permission(self, request, obj=None) -> bool:
        return request.method == "GET" or obj is None  # the list with its actions; no edits

    @admin.action(description="Drain selected nodes (no new requests)")
    def drain_selected(self, request, queryset) -> None:
        for node in queryset:
            membership.node_drain(node=node, actor=admin_actor(request))
        self.message_user(request, f"Drained {queryset.count()} node(s).")

    @admin.action(description="Route to selected nodes again")
    def undrain_selected(self, request, queryset) -> None:
        for node in queryset:
            membership.node_undrain(node=node, actor=admin_actor(request))
        self.message_user(request, f"Undrained {queryset.count()} node(s).")

    @admin.action(description="Remove selected nodes (revokes their keys)")
    def remove_selected(self, request, queryset) -> None:
        count = 0
        for node in list(queryset):
            membership.node_remove(node=node, actor=admin_actor(request))
            count += 1
        self.message_user(request, f"Removed {count} node(s).")


@admin.register(Placement)
class PlacementAdmin(ReadOnlyAdmin):
    list_display = ("model", "node", "state", "source", "updated_at")
    list_filter = ("state", "source")
    search_fields = ("model", "node__name")


@admin.register(JoinToken)
class JoinTokenAdmin(ReadOnlyAdmin):
    list_display = ("id", "created_by", "created_at", "expires_at", "used_at", "used_by")
    exclude = ("token_hash",)


@admin.register(Shard)
class ShardAdmin(ReadOnlyAdmin):
    """The processes of sharded models, as their supervisors last wrote them. The one action
    tears down each selected process's whole model, like `manage.py shard remove`."""

    list_display = ("model", "role", "node", "endpoint", "pid", "state", "restarts", "build",
                    "updated_at")
    list_filter = ("state", "role", "model")
    search_fields = ("model", "node__name", "host")
    fields = ("model", "role", "node", "host", "port", "pid", "state", "restarts", "build",
              "log_path", "supervisor", "argv", "error", "created_at", "updated_at", "ready_at")
    readonly_fields = fields
    actions = ("remove_models",)

    def has_change_permission(self, request, obj=None) -> bool:
        return request.method == "GET" or obj is None  # the list with its action; no edits

    @admin.action(description="Tear down the sharded models of the selected processes")
    def remove_models(self, request, queryset) -> None:
        models = sorted(set(queryset.values_list("model", flat=True)))
        for model in models:
            sharding.shard_remove(model=model, actor=admin_actor(request))
        self.message_user(request, f"Removed {len(models)} sharded model(s): {', '.join(models)}.")
