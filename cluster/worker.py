"""The worker's side of membership: its identity in the data dir, the calls it makes to the
leader, and the heartbeat loop that `manage.py join` runs.

Heartbeats go every HEARTBEAT_SECONDS and carry the worker's whole state. The loop reacts to the
leader's answers the way the Go original's agent did: 401/403 stops the worker with a message
(its key was revoked or the node removed), 404 registers again (the leader forgot the node), and
anything transient (leader down, 5xx, timeouts) backs off exponentially and keeps trying."""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import httpx

from cluster.models import HEARTBEAT_SECONDS

log = logging.getLogger("cluster.worker")

IDENTITY_FILE = "node.json"
BACKOFF_START = 1.0
BACKOFF_MAX = 10.0  # below the offline window, so a leader back from a restart sees us at once
REQUEST_TIMEOUT = 10.0


class LeaderError(Exception):
    """The leader could not be reached or refused a call; the message says why."""


class LeaderRefused(LeaderError):
    """401/403: the key or join token is not (or no longer) accepted."""


class NodeGone(LeaderError):
    """404: the leader does not know this node."""


class LeaderRejected(LeaderError):
    """400/409/422: the leader will not accept what we sent; retrying will not help."""


class LeaderUnavailable(LeaderError):
    """Transient: the leader is down, overloaded or slow."""


@dataclass
class Identity:
    """What a worker keeps in its data dir (mode 0600) to be the same node after a restart."""

    leader: str
    node_id: int
    name: str
    key: str
    agent_secret: str

    @classmethod
    def load(cls, data_dir: Path) -> Identity | None:
        path = Path(data_dir) / IDENTITY_FILE
        try:
            data = json.loads(path.read_text())
            return cls(**{k: data[k] for k in ("leader", "node_id", "name", "key",
                                                "agent_secret")})
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def save(self, data_dir: Path) -> Path:
        from cluster.services import _write_secret

        path = Path(data_dir) / IDENTITY_FILE
        _write_secret(path, json.dumps(asdict(self), indent=2) + "\n")
        return path


def _message(response: httpx.Response) -> str:
    try:
        error = response.json().get("error")
    except ValueError:
        return response.text[:300]
    if isinstance(error, dict):
        return str(error.get("message") or error)
    return str(error or response.text[:300])


class LeaderClient:
    def __init__(self, base_url: str, *, timeout: float = REQUEST_TIMEOUT) -> None:
        self.base_url = base_url.rstrip("/")
        self.http = httpx.Client(timeout=timeout, trust_env=False)

    def close(self) -> None:
        self.http.close()

    def _post(self, path: str, credential: str, body: dict[str, Any]) -> dict[str, Any]:
        url = f"{self.base_url}/admin/v1/nodes/{path}"
        try:
            response = self.http.post(url, json=body,
                                      headers={"authorization": f"Bearer {credential}"})
        except httpx.HTTPError as exc:
            raise LeaderUnavailable(f"cannot reach the leader at {self.base_url} "
                                    f"({type(exc).__name__})") from exc
        status = response.status_code
        if status < 300:
            return response.json()
        message = f"the leader answered {status}: {_message(response)}"
        if status in (401, 403):
            raise LeaderRefused(message)
        if status == 404:
            raise NodeGone(message)
        if status in (400, 409, 422):
            raise LeaderRejected(message)
        raise LeaderUnavailable(message)

    def register(self, credential: str, report: dict[str, Any]) -> dict[str, Any]:
        return self._post("register", credential, report)

    def heartbeat(self, key: str, beat: dict[str, Any]) -> dict[str, Any]:
        return self._post("heartbeat", key, beat)


def register(client: LeaderClient, report: dict[str, Any], *, identity: Identity | None,
             token: str) -> Identity:
    """Registers with the node key we kept (the same node again), falling back to the join
    token when the leader no longer accepts that key."""
    answer = None
    used = ""
    if identity is not None and identity.leader == client.base_url:
        try:
            used, answer = identity.key, client.register(identity.key, report)
        except LeaderRefused:
            if not token:
                raise
            log.warning("the leader refused this node's saved key; joining with the token")
    if answer is None:
        if not token:
            raise LeaderRefused("no join token and no saved node key: run "
                                "`manage.py join 'http://LEADER:8080?token=T'` with a token "
                                "from `manage.py token create --node` on the leader")
        used, answer = token, client.register(token, report)
    key = answer.get("key") or used  # none issued: the key we registered with stays ours
    return Identity(leader=client.base_url, node_id=int(answer["node_id"]), name=answer["name"],
                    key=key, agent_secret=answer["agent_secret"])


class HeartbeatLoop:
    """Sends a heartbeat every `interval` seconds until stopped or refused."""

    def __init__(self, client: LeaderClient, identity: Identity, *,
                 beat: Callable[[], dict[str, Any]],
                 reregister: Callable[[], Identity],
                 interval: float = HEARTBEAT_SECONDS) -> None:
        self.client = client
        self.identity = identity
        self.beat = beat
        self.reregister = reregister
        self.interval = interval
        self.last_ok: float | None = None
        self.failures = 0

    def once(self) -> dict[str, Any]:
        body = {"node_id": self.identity.node_id, **self.beat()}
        try:
            return self.client.heartbeat(self.identity.key, body)
        except NodeGone:
            log.warning("the leader does not know node %s any more; registering again",
                        self.identity.name)
            self.identity = self.reregister()
            body["node_id"] = self.identity.node_id
            return self.client.heartbeat(self.identity.key, body)

    def run(self, stop: threading.Event) -> str:
        """Loops until `stop` is set (returns "stopped") or the leader refuses this node (raises
        LeaderRefused / LeaderRejected)."""
        delay = 0.0
        backoff = BACKOFF_START
        while not stop.wait(delay):
            started = time.monotonic()
            try:
                self.once()
            except LeaderUnavailable as exc:
                self.failures += 1
                log.warning("heartbeat failed (%s); retrying in %.0f s", exc, backoff)
                delay, backoff = backoff, min(backoff * 2, BACKOFF_MAX)
                continue
            if self.failures:
                log.warning("heartbeats reach the leader again after %d failures", self.failures)
            self.failures, backoff = 0, BACKOFF_START
            self.last_ok = time.monotonic()
            delay = max(0.0, self.interval - (time.monotonic() - started))
        return "stopped"
