"""The worker agent's credentials and addresses, shared by the leader and the worker.

A worker's engine stays bound to 127.0.0.1 on its own box; the leader reaches it through the
worker agent (`manage.py join` serves it), at `<agent_url>/node/v1/engine/<engine path>`. The
leader authenticates with a per-node agent secret, presented as the engine's API key, so the
drivers need not know they go through an agent.

The secret is derived, never stored on the leader: HMAC-SHA256 of the node's id and (non-secret)
salt under the leader's SECRET_KEY. Every gateway process sharing that key derives the same
secret. The worker receives it once, at registration, and its agent keeps only its SHA-256."""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import secrets
import socket

from django.conf import settings

ENGINE_ROUTE = "/node/v1/engine"
STATUS_ROUTE = "/node/v1/status"
DEFAULT_AGENT_PORT = 8090


def new_salt() -> str:
    return secrets.token_hex(8)


def agent_secret(node_id: int, salt: str) -> str:
    """The secret the leader presents to node `node_id`'s agent."""
    message = f"flock-agent:{node_id}:{salt}".encode()
    return hmac.new(settings.SECRET_KEY.encode(), message, hashlib.sha256).hexdigest()


def secret_digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def secret_matches(presented: str, digest: str) -> bool:
    return bool(presented and digest) and hmac.compare_digest(secret_digest(presented), digest)


def engine_access(node) -> tuple[str, str | None]:
    """(URL, API key) for reaching `node`'s engine from the leader. The key is None for a node
    reached directly, where the engine's own configured key applies."""
    if node.agent_url and node.agent_salt:
        return node.engine_endpoint, agent_secret(node.pk, node.agent_salt)
    return node.engine_endpoint, None


def agent_engine_url(agent_url: str) -> str:
    return agent_url.rstrip("/") + ENGINE_ROUTE


# --- addresses -----------------------------------------------------------------------------------

UNSPECIFIED = ("", "0.0.0.0", "::", "[::]", "*")


class AddressError(ValueError):
    """An address a worker must not advertise."""


def check_advertised(host: str) -> str:
    """`host` when other machines could use it to reach this one; refuses the wildcard."""
    host = host.strip().strip("[]")
    if host in UNSPECIFIED:
        raise AddressError(f"{host or '(empty)'} is not an address other machines can reach; "
                           "pass the address the leader should use: --advertise HOST")
    return host


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def route_source(leader_host: str, leader_port: int) -> str | None:
    """The local address this machine uses to reach the leader: the interface the kernel routes
    through, so a multi-homed box advertises the one the leader can answer on. No packet is
    sent (a UDP socket's connect only picks the route)."""
    try:
        infos = socket.getaddrinfo(leader_host, leader_port, type=socket.SOCK_DGRAM)
    except OSError:
        return None
    for family, _type, _proto, _name, sockaddr in infos:
        with socket.socket(family, socket.SOCK_DGRAM) as sock:
            try:
                sock.connect(sockaddr)
            except OSError:
                continue
            address = sock.getsockname()[0]
            if address not in UNSPECIFIED:
                return address
    return None


def url_host(host: str) -> str:
    return f"[{host}]" if ":" in host and not host.startswith("[") else host
