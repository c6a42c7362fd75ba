"""The join URL: how the leader prints it and how a worker reads it back.

`manage.py join http://LEADER:8080?token=flock-join-…` — the leader's base URL with the join
token as its query string."""

from __future__ import annotations

import socket
from urllib.parse import parse_qs, urlsplit

from django.conf import settings

from cluster import agent
from flocksite.config import FlockConfig


class JoinUrlError(ValueError):
    pass


def leader_url(cfg: FlockConfig | None = None) -> str:
    """The URL workers use to reach this leader: FLOCK_EXTERNAL_URL, else the address it listens
    on, else the address of the interface holding the default route."""
    cfg = cfg or settings.FLOCK
    if cfg.external_url:
        return cfg.external_url.rstrip("/")
    host = cfg.listen_host
    if host in agent.UNSPECIFIED:
        host = agent.route_source("10.255.255.255", 9) or socket.gethostname() or "localhost"
    return f"http://{agent.url_host(host)}:{cfg.listen_port}"


def join_command(token: str, cfg: FlockConfig | None = None) -> str:
    return f"python manage.py join '{leader_url(cfg)}?token={token}'"


def parse_join_url(url: str) -> tuple[str, str]:
    """(leader base URL, join token or '') from what the admin pasted."""
    text = url.strip().strip("'\"")
    if not text:
        raise JoinUrlError("no leader URL given: manage.py join http://LEADER:8080?token=T")
    if "://" not in text:
        text = "http://" + text
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise JoinUrlError(f"{url!r} is not a leader URL like http://LEADER:8080?token=T")
    token = (parse_qs(parts.query).get("token") or [""])[0].strip()
    base = f"{parts.scheme}://{parts.netloc}{parts.path}".rstrip("/")
    return base, token
