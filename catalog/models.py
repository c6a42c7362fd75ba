from __future__ import annotations

from django.db import models


class InstallState(models.TextChoices):
    PENDING = "pending", "pending"
    PULLING = "pulling", "pulling"
    READY = "ready", "ready"
    FAILED = "failed", "failed"
    REMOVING = "removing", "removing"


class InstalledModel(models.Model):
    """A model added to one node: what was asked for, where its weights come from, how far the
    pull got and, for llama.cpp, the llama-server started to serve it.

    States: pending -> pulling -> ready | failed; any -> removing (then the row is deleted).
    A failed row can be pulled again."""

    model_id = models.CharField(max_length=200, help_text="the name clients ask for")
    spec = models.CharField(max_length=500, help_text="what the admin asked to add")
    catalog_id = models.CharField(max_length=100, blank=True)
    node = models.ForeignKey("cluster.Node", on_delete=models.CASCADE,
                             related_name="installed_models")
    engine = models.CharField(max_length=10)
    engine_model = models.CharField(max_length=300, help_text="the engine's own id for it")
    source = models.CharField(max_length=1000, help_text="tag, repo/file or path pulled from")
    gguf = models.JSONField(default=dict, blank=True,
                            help_text="for llama.cpp: repo+file, path or package of the weights")
    context_length = models.PositiveIntegerField(null=True, blank=True)
    embeddings = models.BooleanField(default=False, help_text="serve /v1/embeddings")
    state = models.CharField(max_length=10, choices=InstallState.choices,
                             default=InstallState.PENDING)
    status_text = models.CharField(max_length=200, blank=True)
    bytes_total = models.PositiveBigIntegerField(default=0)
    bytes_done = models.PositiveBigIntegerField(default=0)
    error = models.TextField(blank=True)
    local_path = models.CharField(max_length=1000, blank=True)
    owns_file = models.BooleanField(default=False, help_text="Flock downloaded or copied the file")
    serve_endpoint = models.CharField(max_length=300, blank=True)
    serve_pid = models.PositiveIntegerField(null=True, blank=True)
    task_id = models.CharField(max_length=64, blank=True)
    added_by = models.CharField(max_length=150, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    pull_started_at = models.DateTimeField(null=True, blank=True)
    ready_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["model_id", "node__name"]
        constraints = [models.UniqueConstraint(fields=["model_id", "node"],
                                               name="catalog_installed_once_per_node")]

    def __str__(self) -> str:
        return f"{self.model_id} on {self.node_id} ({self.state})"

    @property
    def fraction(self) -> float | None:
        if not self.bytes_total:
            return None
        return min(1.0, self.bytes_done / self.bytes_total)

    @property
    def finished(self) -> bool:
        return self.state in (InstallState.READY, InstallState.FAILED)
