from __future__ import annotations

from django.contrib import admin

from catalog.models import InstalledModel


@admin.register(InstalledModel)
class InstalledModelAdmin(admin.ModelAdmin):
    list_display = ("model_id", "node", "engine", "state", "bytes_total", "added_by", "ready_at")
    list_filter = ("state", "engine", "node")
    search_fields = ("model_id", "spec", "source")
    # Adding and removing go through `manage.py model` (services), which pull and unload.
    readonly_fields = [f.name for f in InstalledModel._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False
