from __future__ import annotations

from datetime import timedelta

from django.db import models

HEARTBEAT_SECONDS = 5
MISSED_HEARTBEATS = 3
# A worker that has not been heard from for this long is offline and out of routing.
OFFLINE_AFTER = timedelta(seconds=HEARTBEAT_SECONDS * MISSED_HEARTBEATS)
JOIN_TOKEN_TTL = timedelta(minutes=5)


class NodeRole(models.TextChoices):
    LEADER = "leader", "leader"
    WORKER = "worker", "worker"


class NodeState(models.TextChoices):
    """ready -> draining (admin) -> ready (undrain); ready|draining -> offline (3 missed
    heartbeats) -> ready, or draining when a drain was asked for (heartbeats return)."""

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
    """A machine in the cluster and the engine it serves.

    `engine_endpoint` is where the leader reaches the engine: on the leader, the engine itself;
    on a worker, the worker agent's engine route (`<agent_url>/node/v1/engine`), which needs the
    node's agent secret (cluster.agent). `engine_local_endpoint` is the engine's address on its
    own machine, as the worker reported it."""

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
    # Joined workers only.
    api_key = models.OneToOneField("accounts.ApiKey", null=True, blank=True,
                                   on_delete=models.SET_NULL, related_name="node")
    agent_url = models.CharField(max_length=300, blank=True)
    agent_salt = models.CharField(max_length=32, blank=True,
                                  help_text="not secret: mixed into the derived agent secret")
    engine_local_endpoint = models.CharField(max_length=300, blank=True)
    engine_reachable = models.BooleanField(default=True)
    engine_error = models.CharField(max_length=300, blank=True)
    in_flight = models.PositiveIntegerField(default=0, help_text="as of the last heartbeat")
    drain_requested_at = models.DateTimeField(null=True, blank=True)
    offline_since = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return f"{self.name} ({self.role})"

    @property
    def routable(self) -> bool:
        return self.state == NodeState.READY and bool(self.engine_endpoint)

    @property
    def joined(self) -> bool:
        """A worker that joined with `manage.py join` (and so heartbeats)."""
        return bool(self.agent_url)


class JoinToken(models.Model):
    """A single-use token that lets one machine join as a worker. Only its SHA-256 is kept."""

    token_hash = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.CharField(max_length=150, blank=True)
    expires_at = models.DateTimeField()
    used_at = models.DateTimeField(null=True, blank=True)
    used_by = models.ForeignKey(Node, null=True, blank=True, on_delete=models.SET_NULL,
                                related_name="+")

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"join token {self.pk}"


class PlacementState(models.TextChoices):
    """loaded: the node's engine reported the model in its last heartbeat; unavailable: the node
    went offline with it (kept so `node ls` shows what comes back with it)."""

    LOADED = "loaded", "loaded"
    UNAVAILABLE = "unavailable", "unavailable"


class Placement(models.Model):
    """A model observed on a node, reconciled from that node's heartbeats."""

    node = models.ForeignKey(Node, on_delete=models.CASCADE, related_name="placements")
    model = models.CharField(max_length=300)
    state = models.CharField(max_length=12, choices=PlacementState.choices,
                             default=PlacementState.LOADED)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["node__name", "model"]
        constraints = [models.UniqueConstraint(fields=["node", "model"],
                                               name="cluster_placement_once_per_node")]

    def __str__(self) -> str:
        return f"{self.model} on {self.node_id} ({self.state})"
