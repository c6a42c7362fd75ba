"""Writes and machine-facing actions for the cluster: registering nodes, finding the local
engine, bootstrapping the first admin key, ticking the engine watchdog."""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from django.db import transaction
from django.utils import timezone

from cluster import watchdog
from cluster.models import Node, NodeRole, NodeState
from flocksite.config import ENGINES, FlockConfig

PROBE_TIMEOUT = 1.0
ADMIN_KEY_FILE = "admin.key"


def local_node_name() -> str:
    return socket.gethostname() or "localhost"


def hardware_detect() -> dict:
    """What this machine offers, as reported for its node: CPU, RAM, platform and GPUs (NVIDIA
    through NVML or nvidia-smi, Apple unified memory)."""
    from catalog.hardware import detect

    return detect()


@transaction.atomic
def node_register_leader(*, name: str, address: str, engine: str, endpoint: str, embedded: bool,
                         hardware: dict, llama_cpp_build: str = "") -> Node:
    """Creates or updates this machine's node as the ready leader (idempotent by name). Any other
    node still marked leader is an earlier identity of this one and goes offline."""
    Node.objects.filter(role=NodeRole.LEADER).exclude(name=name).update(state=NodeState.OFFLINE)
    node, _ = Node.objects.update_or_create(
        name=name,
        defaults={
            "role": NodeRole.LEADER,
            "address": address,
            "state": NodeState.READY,
            "engine": engine,
            "engine_endpoint": endpoint,
            "engine_embedded": embedded,
            "hardware": hardware,
            "llama_cpp_build": llama_cpp_build,
            "last_heartbeat_at": timezone.now(),
        },
    )
    return node


@dataclass(frozen=True)
class EngineProbe:
    kind: str
    endpoint: str
    reachable: bool
    models: list[str] = field(default_factory=list)
    error: str = ""


def engine_probe(kind: str, endpoint: str, *, timeout: float = PROBE_TIMEOUT,
                 api_key: str = "") -> EngineProbe:
    """Asks an engine whether it is up (Ollama: /api/version; the OpenAI-compatible ones:
    /v1/models) and which models it serves."""
    headers = {"authorization": f"Bearer {api_key}"} if api_key else {}
    try:
        with httpx.Client(timeout=timeout, trust_env=False, headers=headers) as client:
            if kind == "ollama":
                client.get(endpoint + "/api/version").raise_for_status()
                tags = client.get(endpoint + "/api/tags")
                models = [m.get("name", "") for m in (tags.json().get("models") or [])
                          if tags.status_code == 200]
            else:
                response = client.get(endpoint + "/v1/models")
                response.raise_for_status()
                models = [m.get("id", "") for m in (response.json().get("data") or [])]
    except httpx.HTTPStatusError as exc:
        return EngineProbe(kind, endpoint, False, error=f"HTTP {exc.response.status_code}")
    except (httpx.HTTPError, ValueError, AttributeError) as exc:
        return EngineProbe(kind, endpoint, False, error=type(exc).__name__)
    return EngineProbe(kind, endpoint, True, [m for m in models if m])


def engine_detect(config: FlockConfig, *, timeout: float = PROBE_TIMEOUT) -> tuple[str, str] | None:
    """The engine this machine should use: the configured one (FLOCK_ENGINE), else the first
    engine answering on its default port; None when there is none."""
    if config.engine:
        return config.engine, config.endpoints[config.engine]
    for kind in ENGINES:
        endpoint = config.endpoints[kind]
        api_key = config.vllm_api_key if kind == "vllm" else ""
        if engine_probe(kind, endpoint, timeout=timeout, api_key=api_key).reachable:
            return kind, endpoint
    return None


def engine_start_hint(kind: str) -> str:
    from gateway.engines.base import START_HINTS

    if kind == "llamacpp":
        return f"{START_HINTS[kind]}  (or leave FLOCK_ENGINE unset: `manage.py up` starts the " \
               "embedded llama.cpp engine)"
    return START_HINTS.get(kind, "")


def loopback_port(endpoint: str) -> int | None:
    """The port of an http URL on this machine's loopback interface, else None."""
    url = httpx.URL(endpoint)
    if url.host in ("127.0.0.1", "localhost", "::1"):
        return url.port or (443 if url.scheme == "https" else 80)
    return None


def gateway_running(base_url: str, *, timeout: float = 2.0) -> bool:
    """True when a Flock gateway answers at `base_url` (its root names itself)."""
    try:
        response = httpx.get(base_url + "/", timeout=timeout, trust_env=False)
        return response.status_code == 200 and response.json().get("name") == "flock"
    except (httpx.HTTPError, ValueError, AttributeError):
        return False


def gateway_env(config: FlockConfig) -> dict[str, str]:
    """The environment for a gateway process serving `config`: ours, plus the address it listens
    on, so its idea of the public URL matches. (It finds engines in the Node table.)"""
    env = dict(os.environ)
    host = f"[{config.listen_host}]" if ":" in config.listen_host else config.listen_host
    env["FLOCK_LISTEN"] = f"{host}:{config.listen_port}"
    env.setdefault("DJANGO_SETTINGS_MODULE", "flocksite.settings")
    return env


@dataclass(frozen=True)
class AdminKey:
    path: Path
    plaintext: str | None  # set only on the run that created it


def admin_key_bootstrap(*, data_dir: Path) -> AdminKey:
    """Creates the first admin key when no active one exists and saves it to
    `<data_dir>/admin.key` (mode 0600); later calls create nothing."""
    from accounts.models import ApiKey, Scope
    from accounts.services import key_create

    path = Path(data_dir) / ADMIN_KEY_FILE
    with transaction.atomic():
        if ApiKey.objects.filter(scope=Scope.ADMIN, revoked_at__isnull=True).exists():
            return AdminKey(path=path, plaintext=None)
        issued = key_create(name="admin", scope="admin")
    _write_secret(path, issued.plaintext + "\n")
    return AdminKey(path=path, plaintext=issued.plaintext)


def _write_secret(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.{os.getpid()}")
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(fd, 0o600)
        os.write(fd, text.encode())
    finally:
        os.close(fd)
    os.replace(partial, path)


def engine_watchdog_tick(*, name: str) -> dict:
    """One health check of the engine supervised under `name` in this process; the third
    consecutive failure restarts it."""
    found = watchdog.registered(name)
    if found is None:
        return {"name": name, "registered": False}
    return {"registered": True, **found.tick().as_dict()}
