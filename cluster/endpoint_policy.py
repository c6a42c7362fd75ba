"""Which addresses a node may report. The leader calls a worker's agent at the `agent_url` the
worker reports (and, through it, the engine), so a node key must not be able to point the leader
at anything else: its own API, its database or Redis, or a cloud metadata service. The engine
endpoint a worker reports is only ever called by that worker's agent, so it must be on the
worker itself: loopback there, or the worker's own address.

    report_check(agent_url, engine_endpoint)   # raises PolicyError naming what is wrong
"""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

from django.conf import settings

METADATA_HOSTS = ("metadata.google.internal", "metadata", "instance-data")


class PolicyError(ValueError):
    """An address a node may not report."""


def _parts(url: str, field: str) -> tuple[str, int]:
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise PolicyError(f"{field} {url!r} is not a URL") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise PolicyError(f"{field} {url!r} must be an http:// or https:// URL with a host")
    if port is None:
        raise PolicyError(f"{field} {url!r} must name its port (e.g. http://10.0.0.7:8090)")
    if parts.username or parts.password or parts.query or parts.fragment:
        raise PolicyError(f"{field} {url!r} may not carry credentials, a query or a fragment")
    return parts.hostname.lower(), port


def _ip(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


def _loopback(host: str) -> bool:
    ip = _ip(host)
    return host == "localhost" or (ip is not None and ip.is_loopback)


def _leader_services() -> set[tuple[str, int]]:
    """(host, port) of what the leader runs or uses: its API, its database, its Redis."""
    cfg = settings.FLOCK
    found = {(cfg.listen_host.lower(), cfg.listen_port)}
    for url in (cfg.database_url, cfg.redis_url, cfg.external_url):
        try:
            parts = urlsplit(url)
            if parts.hostname and parts.port:
                found.add((parts.hostname.lower(), parts.port))
        except ValueError:
            continue
    return found


def _own_addresses() -> set[str]:
    """This machine's addresses, where a leader listening on 0.0.0.0 answers too."""
    import psutil

    return {a.address.split("%")[0].lower() for addrs in psutil.net_if_addrs().values()
            for a in addrs if a.family.name in ("AF_INET", "AF_INET6")}


def _leader_ports() -> set[int]:
    return {port for _host, port in _leader_services()}


def agent_url_check(url: str) -> str:
    host, port = _parts(url, "agent_url")
    ip = _ip(host)
    if host in METADATA_HOSTS or (ip is not None and (ip.is_link_local or ip.is_multicast
                                                     or ip.is_unspecified or ip.is_reserved)):
        raise PolicyError(f"agent_url {url!r} is not an address a worker's agent can have")
    if (host, port) in _leader_services() or (
            port in _leader_ports() and (_loopback(host) or host in _own_addresses())):
        raise PolicyError(f"agent_url {url!r} is one of the leader's own services, not an agent")
    return url


def engine_endpoint_check(url: str, agent_url: str) -> str:
    """The engine's address on the worker: loopback there, or the worker's own host."""
    if not url:
        return url
    host, _port = _parts(url, "engine_endpoint")
    agent_host, _ = _parts(agent_url, "agent_url")
    if not (_loopback(host) or host == agent_host):
        raise PolicyError(f"engine_endpoint {url!r} must be on the worker itself (127.0.0.1 or "
                          f"{agent_host}); the leader reaches it only through the worker's agent")
    return url


def report_check(agent_url: str, engine_endpoint: str) -> None:
    agent_url_check(agent_url)
    engine_endpoint_check(engine_endpoint, agent_url)
