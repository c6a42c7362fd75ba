from __future__ import annotations

from django.db import models


class NodeRole(models.TextChoices):
    LEADER = "leader", "leader"
    WORKER = "worker", "worker"


class NodeState(models.TextChoices):
    READY = "ready", "ready"
    DRAINING = "draining", "draining"
    OFFLINE = "offline", "offline"


class EngineKind(models.TextChoices):
    OLLAMA = "ollama", "Ollama"
    VLLM = "vllm", "vLLM"
    MLX = "mlx", "MLX-LM"
    LLAMACPP = "llamacpp", "llama.cpp"
    ANTHROPIC = "anthropic", "Anthropic API"


class Node(models.Model):
    """A machine in the cluster and the engine it serves."""

    name = models.CharField(max_length=100, unique=True)
    role = models.CharField(max_length=10, choices=NodeRole.choices, default=NodeRole.WORKER)
    address = models.CharField(max_length=200, blank=True)
    state = models.CharField(max_length=10, choices=NodeState.choices, default=NodeState.READY)
    engine = models.CharField(max_length=10, choices=EngineKind.choices, blank=True)
    engine_endpoint = models.CharField(max_length=300, blank=True)
    engine_embedded = models.BooleanField(default=False)
    hardware = models.JSONField(default=dict, blank=True)
    llama_cpp_build = models.CharField(max_length=80, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    last_heartbeat_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return f"{self.name} ({self.role})"

    @property
    def routable(self) -> bool:
        return self.state == NodeState.READY and bool(self.engine_endpoint)
