"""Claude Code (`claude -p`) against the Anthropic surface (/v1/messages)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.clients.conftest import (
    REAL_MODEL,
    Clients,
    billed,
    client_env,
    explain,
    run_client,
    sent_messages,
    usage_rows,
)
from tests.conftest import LiveGateway

pytestmark = [pytest.mark.clients, pytest.mark.once]  # the wire, not the database: one pass
ANSWER = "The flock has landed safely"


def run_claude(clients: Clients, gateway: LiveGateway, model: str, prompt: str, *,
               home: Path, cwd: Path, extra: list[str] | None = None, expect_error: bool = False,
               **extra_env: str) -> dict:
    env = client_env(home, ANTHROPIC_BASE_URL=gateway.url, ANTHROPIC_AUTH_TOKEN=gateway.user_key,
                     ANTHROPIC_DEFAULT_HAIKU_MODEL=model,
                     CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC="1", DISABLE_AUTOUPDATER="1",
                     DISABLE_TELEMETRY="1", DISABLE_ERROR_REPORTING="1", **extra_env)
    argv = [clients.claude, "-p", prompt, "--model", model, "--output-format", "json",
            *(extra or [])]
    result = run_client(argv, env=env, cwd=cwd)
    assert (result.returncode != 0) is expect_error, explain(result)
    return json.loads(result.stdout)


def test_claude_code_prints_the_engines_answer_and_it_is_billed(gateway, clients, claude_home,
                                                                workdir):
    gateway.engine.script.text = ANSWER
    result = run_claude(clients, gateway, "fake-model", "Say hello.", home=claude_home,
                        cwd=workdir)
    assert (result["subtype"], result["is_error"]) == ("success", False)
    assert result["result"] == ANSWER
    assert (result["usage"]["input_tokens"], result["usage"]["output_tokens"]) == (7, 5)
    body = gateway.engine.last_body
    assert body["stream"] is True
    assert {"Bash", "Write"} <= {t["function"]["name"] for t in body["tools"]}
    row = billed(gateway)
    assert (row.key_name, row.model, row.protocol, row.outcome) == (
        "alice", "fake-model", "anthropic", "ok")
    assert (row.prompt_tokens, row.completion_tokens) == (7, 5)


def test_claude_code_runs_a_tool_and_answers_from_its_result(gateway, clients, claude_home,
                                                             workdir, tool_round_trip):
    tool_round_trip(gateway, name="Bash",
                    arguments=json.dumps({"command": "echo flock-$((6*7))",
                                          "description": "Print a marker"}),
                    final_text=ANSWER)
    result = run_claude(clients, gateway, "fake-model", "Print the marker.",
                        home=claude_home, cwd=workdir, extra=["--allowedTools", "Bash"])
    assert (result["subtype"], result["is_error"]) == ("success", False), result
    assert result["result"] == ANSWER
    assert result["num_turns"] == 2
    assert result["permission_denials"] == []
    call = [m for m in sent_messages(gateway) if m.get("tool_calls")][-1]
    assert call["tool_calls"][0]["function"]["name"] == "Bash"
    tool_messages = [m for m in sent_messages(gateway) if m["role"] == "tool"]
    assert tool_messages, "the fake engine never received the tool result"
    assert tool_messages[-1]["tool_call_id"] == call["tool_calls"][0]["id"]
    # The shell's output, not the command: Claude Code really ran it.
    assert "flock-42" in json.dumps(tool_messages[-1]["content"])
    rows = usage_rows(gateway, count=2)
    assert [(r.protocol, r.outcome) for r in rows] == [("anthropic", "ok")] * 2


@pytest.mark.engine
def test_claude_code_reads_real_tokens_and_the_max_tokens_stop(real_gateway, clients,
                                                               claude_home, workdir):
    # Without its tools and long system prompt Claude Code's request fits the model's 4k context.
    # The base model never stops by itself, so every answer ends on the output cap: Claude Code
    # asks again a few times, then reports the cap, adding up the real usage of every attempt.
    result = run_claude(clients, real_gateway, REAL_MODEL, "Say hello.", home=claude_home,
                        cwd=workdir, extra=["--tools", "", "--system-prompt", "Be brief."],
                        expect_error=True, CLAUDE_CODE_MAX_OUTPUT_TOKENS="8")
    assert result["is_error"] is True
    assert "exceeded the 8 output token maximum" in result["result"]
    attempts, rest = divmod(result["usage"]["output_tokens"], 8)
    assert attempts >= 1 and rest == 0
    rows = usage_rows(real_gateway, count=attempts)
    assert len(rows) == attempts
    assert {(r.model, r.engine, r.protocol, r.outcome) for r in rows} == {
        (REAL_MODEL, "llamacpp", "anthropic", "ok")}
    assert all(r.prompt_tokens > 0 and r.completion_tokens == 8 for r in rows)
