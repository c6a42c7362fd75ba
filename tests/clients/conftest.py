"""Real API clients (aider, Continue's `cn`, Claude Code, the openai and Anthropic SDKs for Node,
LangChain) pointed at the gateway. They are installed once per machine by scripts/clients.sh into
a cache outside the work tree; each subprocess gets a throwaway HOME, an environment without the
host's proxies or API keys, and a bounded run time."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import LiveGateway

CLIENT_TIMEOUT = 120.0
REAL_MODEL = "gemma-3-270m"
CACHE = Path(os.environ.get("FLOCK_CACHE_DIR") or Path.home() / ".cache" / "flock") / "clients"
NODE_SCRIPTS = Path(__file__).parent / "node"

# Only these reach a client: no proxies, no OPENAI_*/ANTHROPIC_* keys, no host config.
_PASSED_THROUGH = ("PATH", "LANG", "LC_ALL", "TZ", "SSL_CERT_FILE", "NODE_EXTRA_CA_CERTS")
_PROXY_VARIABLES = ("http_proxy", "https_proxy", "all_proxy", "no_proxy", "HTTP_PROXY",
                    "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY")


@dataclass(frozen=True)
class Clients:
    root: Path

    @property
    def aider(self) -> Path:
        return self.root / "venv" / "bin" / "aider"

    @property
    def node_modules(self) -> Path:
        return self.root / "npm" / "node_modules"

    @property
    def claude(self) -> Path:
        return self.node_modules / ".bin" / "claude"

    @property
    def cn(self) -> Path:
        return self.node_modules / ".bin" / "cn"


@pytest.fixture(scope="session")
def clients() -> Clients:
    found = Clients(CACHE)
    needed = [found.aider, found.claude, found.cn, found.node_modules / "openai",
              found.node_modules / "@anthropic-ai" / "sdk"]
    missing = [str(path) for path in needed if not path.exists()]
    if missing:
        pytest.fail("the API clients are not installed; run `bash scripts/clients.sh` "
                    "(once per machine). Missing: " + ", ".join(missing), pytrace=False)
    return found


@pytest.fixture(autouse=True)
def _no_host_proxies_or_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    """The in-process clients (LangChain) read these from the environment too."""
    for name in list(os.environ):
        if name in _PROXY_VARIABLES or name.startswith(("OPENAI_", "ANTHROPIC_")):
            monkeypatch.delenv(name)


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    path = tmp_path / "work"
    path.mkdir()
    return path


@pytest.fixture
def home(tmp_path: Path) -> Path:
    path = tmp_path / "home"
    path.mkdir()
    return path


@pytest.fixture
def claude_home(home: Path, workdir: Path) -> Path:
    """Claude Code skips onboarding and the trust dialog only if its config says so."""
    (home / ".claude.json").write_text(json.dumps({
        "hasCompletedOnboarding": True,
        "projects": {str(workdir): {"hasTrustDialogAccepted": True,
                                    "hasCompletedProjectOnboarding": True}},
    }))
    return home


def client_env(home: Path, **extra: str) -> dict[str, str]:
    env = {name: os.environ[name] for name in _PASSED_THROUGH if name in os.environ}
    env.update(HOME=str(home), TERM="dumb", NO_COLOR="1", CI="1")
    env.update(extra)
    return env


def run_client(argv: list[str | Path], *, env: dict[str, str], cwd: Path,
               timeout: float = CLIENT_TIMEOUT) -> subprocess.CompletedProcess[str]:
    """Runs a client to completion, killing its whole process group if it overruns."""
    args = [str(a) for a in argv]
    proc = subprocess.Popen(args, env=env, cwd=cwd, stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        pytest.fail(f"{Path(args[0]).name} did not finish within {timeout:.0f} s\n"
                    f"--- stdout\n{out[-4000:]}\n--- stderr\n{err[-4000:]}")
    return subprocess.CompletedProcess(args, proc.returncode, out, err)


def explain(result: subprocess.CompletedProcess[str]) -> str:
    return (f"exit {result.returncode}\n--- stdout\n{result.stdout[-4000:]}\n"
            f"--- stderr\n{result.stderr[-4000:]}")


def run_node(clients: Clients, script: str, *, home: Path, cwd: Path,
             **env: str) -> dict[str, Any]:
    """Runs one of tests/clients/node/*.cjs; it prints one JSON object on its last line."""
    result = run_client(["node", NODE_SCRIPTS / script],
                        env=client_env(home, NODE_PATH=str(clients.node_modules), **env), cwd=cwd)
    assert result.returncode == 0, explain(result)
    return json.loads(result.stdout.strip().splitlines()[-1])


def billed(gateway: LiveGateway, *, count: int = 1, timeout: float = 5.0) -> Any:
    """The newest usage row, once at least `count` exist. A stream is recorded just after its
    last frame goes out, so the client may well have finished before its row exists."""
    return usage_rows(gateway, count=count, timeout=timeout)[-1]


def usage_rows(gateway: LiveGateway, *, count: int, timeout: float = 5.0) -> list[Any]:
    deadline = time.monotonic() + timeout
    while len(rows := gateway.usage_records()) < count and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(rows) >= count, f"the gateway recorded {len(rows)} usage rows, not {count}"
    return rows


def sent_messages(gateway: LiveGateway) -> list[dict[str, Any]]:
    return [m for _path, body, _headers in gateway.engine.requests
            for m in body.get("messages", [])]


@pytest.fixture
def tool_round_trip():
    """Makes the fake engine play an agent's two turns: the scripted tool call while the client
    offers that tool and has not yet sent a tool result, then `final_text`. Requests without the
    tool (Claude Code's title call) get `final_text` too."""

    def arm(gateway: LiveGateway, *, name: str, arguments: str, final_text: str) -> None:
        gateway.engine.script.text = ""
        gateway.engine.script.tool_calls = [{"name": name, "arguments": arguments}]
        gateway.engine.script.text_after_tool = final_text

    return arm
