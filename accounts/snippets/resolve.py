"""Where connect and invite take the base URL, the model and the key from when no flag gives
them: the gateway's own configuration and this machine's admin key."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from accounts.snippets.base import normalize_base_url
from flocksite.config import FlockConfig

PLACEHOLDER = "<your-flock-key>"
ADMIN_KEY_FILE = "admin.key"


@dataclass(frozen=True)
class Token:
    value: str
    source: str  # "--token", "$FLOCK_TOKEN", a file path, or "" for the placeholder

    @property
    def is_placeholder(self) -> bool:
        return self.value == PLACEHOLDER


def base_url_resolve(explicit: str | None, config: FlockConfig) -> str:
    """--base-url, else FLOCK_EXTERNAL_URL / external_url, else http://localhost:<port>."""
    return normalize_base_url(explicit or config.api_base_url)


def model_resolve(explicit: str | None, config: FlockConfig) -> str:
    model = (explicit or "").strip()
    return model or config.default_model or "auto"


def token_resolve(explicit: str | None, data_dir: Path) -> Token:
    """--token, else $FLOCK_TOKEN, else <data_dir>/admin.key when readable, else a
    placeholder for the person to fill in."""
    if explicit is not None:
        if not explicit.strip():
            raise ValueError("--token is empty")
        return Token(explicit.strip(), "--token")
    if os.environ.get("FLOCK_TOKEN", "").strip():
        return Token(os.environ["FLOCK_TOKEN"].strip(), "$FLOCK_TOKEN")
    path = Path(data_dir) / ADMIN_KEY_FILE
    try:
        value = path.read_text().strip()
    except OSError:
        value = ""
    if value:
        return Token(value, str(path))
    return Token(PLACEHOLDER, "")
