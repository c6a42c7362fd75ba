"""Settings for the worker agent that `manage.py join` serves: the same project, with only the
agent's routes (cluster.agent_urls) and no session, CSRF or auth middleware on the way."""

from __future__ import annotations

from flocksite.settings import *  # noqa: F403

ROOT_URLCONF = "cluster.agent_urls"
MIDDLEWARE: list[str] = []
# The relayed request bodies are the leader's: it already enforced FLOCK_MAX_BODY_MB.
DATA_UPLOAD_MAX_MEMORY_SIZE = None
