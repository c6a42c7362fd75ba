"""Driving Continue's CLI: its config file, its headless run, and the usage it keeps."""

from __future__ import annotations

import json
from pathlib import Path

from tests.clients.conftest import Clients, client_env, run_client


def continue_config(path: Path, *, provider: str, model: str, api_base: str, api_key: str,
                    max_tokens: int | None = None) -> Path:
    options = f"\n    defaultCompletionOptions:\n      maxTokens: {max_tokens}" if max_tokens else ""
    path.write_text(f"""\
name: flock
version: 0.0.1
schema: v1
models:
  - name: flock
    provider: {provider}
    model: {model}
    apiBase: {api_base}
    apiKey: {api_key}
    roles: [chat]{options}
""")
    return path


def run_cn(clients: Clients, config: Path, prompt: str, *, home: Path, cwd: Path):
    env = client_env(home, CONTINUE_CLI_ENABLE_TELEMETRY="0", CONTINUE_METRICS_ENABLED="0")
    return run_client([clients.cn, "-p", prompt, "--config", config], env=env, cwd=cwd)


def cn_usage(home: Path) -> dict:
    """cn keeps what the server reported as usage in its session file."""
    [session] = [p for p in (home / ".continue" / "sessions").glob("*.json")
                 if p.name != "sessions.json"]
    return json.loads(session.read_text())["usage"]
