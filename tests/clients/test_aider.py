"""aider (through its own litellm and openai) against the OpenAI surface."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.clients.conftest import REAL_MODEL, Clients, billed, client_env, explain, run_client
from tests.conftest import LiveGateway

pytestmark = [pytest.mark.clients, pytest.mark.once]  # the wire, not the database: one pass
ANSWER = "The flock has landed safely"


def _aider(clients: Clients, gateway: LiveGateway, model: str, *, home: Path, cwd: Path,
           stream: bool, extra: list[str] | None = None):
    argv = [clients.aider, "--model", f"openai/{model}", "--openai-api-base", gateway.v1,
            "--message", "Say hello.", "--yes-always", "--no-git", "--no-check-update",
            "--no-show-model-warnings", "--analytics-disable", "--no-pretty",
            "--stream" if stream else "--no-stream", *(extra or [])]
    env = client_env(home, OPENAI_API_KEY=gateway.user_key, LITELLM_LOCAL_MODEL_COST_MAP="True")
    return run_client(argv, env=env, cwd=cwd)


def _tokens_line(output: str) -> re.Match[str] | None:
    return re.search(r"Tokens: ([\d.]+k?) sent, ([\d.]+k?) received", output)


def _reply(output: str) -> str:
    """What aider printed between its banner and its closing token report."""
    after_banner = output.split("Repo-map:", 1)[-1].split("\n", 1)[-1]
    reply = re.split(r"^(?:Tokens: |Model \S+ has hit a token limit)", after_banner,
                     flags=re.M)[0]
    return re.sub(r"^https://aider\.chat/HISTORY\.html\S*$", "", reply, flags=re.M).strip()


@pytest.mark.parametrize("stream", [True, False], ids=["streamed", "not-streamed"])
def test_aider_prints_the_engines_answer_and_it_is_billed(gateway, clients, home, workdir,
                                                          stream):
    gateway.engine.script.text = ANSWER
    result = _aider(clients, gateway, "fake-model", home=home, cwd=workdir, stream=stream)
    assert result.returncode == 0, explain(result)
    assert _reply(result.stdout) == ANSWER, explain(result)
    tokens = _tokens_line(result.stdout)
    assert tokens, explain(result)
    if not stream:  # streamed, aider counts tokens itself (it never asks for include_usage)
        assert tokens.groups() == ("7", "5")
    body = gateway.engine.last_body
    assert bool(body.get("stream")) is stream
    assert body["messages"][-1]["content"].startswith("Say hello.")
    row = billed(gateway)
    assert (row.key_name, row.model, row.protocol, row.outcome) == (
        "alice", "fake-model", "openai", "ok")
    assert (row.prompt_tokens, row.completion_tokens) == (7, 5)


@pytest.mark.engine
@pytest.mark.parametrize("stream", [True, False], ids=["streamed", "not-streamed"])
def test_aider_gets_real_tokens_from_the_real_model(real_gateway, clients, home, workdir, stream):
    # A base model would ramble to the end of its context; cap the answer.
    (workdir / ".aider.model.settings.yml").write_text(
        f"- name: openai/{REAL_MODEL}\n  extra_params:\n    max_tokens: 24\n")
    result = _aider(clients, real_gateway, REAL_MODEL, home=home, cwd=workdir, stream=stream)
    assert result.returncode == 0, explain(result)
    assert _reply(result.stdout), explain(result)
    # The capped answer usually ends on `length`, which aider reports instead of its token line.
    assert _tokens_line(result.stdout) or "has hit a token limit" in result.stdout, explain(result)
    row = billed(real_gateway)
    assert (row.model, row.engine, row.outcome) == (REAL_MODEL, "llamacpp", "ok")
    assert row.prompt_tokens > 0 and 0 < row.completion_tokens <= 24
