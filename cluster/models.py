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


class PlacementSource(models.TextChoices):
    """heartbeat: reconciled from the node's reports; shard: recorded by `shard create` for the
    coordinator of a sharded model, kept until `shard remove` whatever the heartbeats say."""

    HEARTBEAT = "heartbeat", "heartbeat"
    SHARD = "shard", "shard"


class Placement(models.Model):
    """A model on a node: observed in that node's heartbeats, or a sharded model's coordinator."""

    node = models.ForeignKey(Node, on_delete=models.CASCADE, related_name="placements")
    model = models.CharField(max_length=300)
    state = models.CharField(max_length=12, choices=PlacementState.choices,
                             default=PlacementState.LOADED)
    source = models.CharField(max_length=10, choices=PlacementSource.choices,
                              default=PlacementSource.HEARTBEAT)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["node__name", "model"]
        constraints = [models.UniqueConstraint(fields=["node", "model"],
                                               name="cluster_placement_once_per_node")]

    def __str__(self) -> str:
        return f"{self.model} on {self.node_id} ({self.state})"


class ShardRole(models.TextChoices):
    RPC = "rpc", "rpc-server"
    COORDINATOR = "coordinator", "coordinator"


class ShardState(models.TextChoices):
    """starting -> ready; ready -> restarting (it exited; restarted after 1, 2, 4, 8, 16 s)
    -> ready, or crashloop after the fifth failed restart (left for the admin); any -> stopped
    (`shard remove`, then the row is deleted)."""

    STARTING = "starting", "starting"
    READY = "ready", "ready"
    RESTARTING = "restarting", "restarting"
    CRASHLOOP = "crashloop", "crashloop"
    STOPPED = "stopped", "stopped"


class Shard(models.Model):
    """One process of a sharded model: an rpc-server on a worker, or the coordinator
    llama-server that serves the model. Written by the supervisor on the machine that runs it."""

    model = models.CharField(max_length=300, help_text="the sharded model's id")
    node = models.ForeignKey(Node, on_delete=models.CASCADE, related_name="shards")
    role = models.CharField(max_length=12, choices=ShardRole.choices)
    host = models.CharField(max_length=200)
    port = models.PositiveIntegerField()
    pid = models.PositiveIntegerField(null=True, blank=True)
    state = models.CharField(max_length=12, choices=ShardState.choices,
                             default=ShardState.STARTING)
    restarts = models.PositiveIntegerField(default=0)
    log_path = models.CharField(max_length=1000, blank=True)
    build = models.CharField(max_length=80, blank=True, help_text="llama.cpp build")
    argv = models.JSONField(default=list, blank=True)
    supervisor = models.CharField(max_length=120, blank=True,
                                  help_text="host:pid of the process supervising it")
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    ready_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["model", "-role", "node__name"]
        constraints = [models.UniqueConstraint(fields=["model", "node", "role"],
                                               name="cluster_shard_once_per_node_and_role")]

    def __str__(self) -> str:
        return f"{self.model} {self.role} on {self.node_id} ({self.state})"

    @property
    def endpoint(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"
