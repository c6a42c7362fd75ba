"""Continue's CLI (`cn -p`) with an `anthropic` provider against the Anthropic surface."""

from __future__ import annotations

import pytest

from tests.clients.conftest import billed, explain
from tests.clients.continue_cli import cn_usage, continue_config, run_cn

pytestmark = [pytest.mark.clients, pytest.mark.once]  # the wire, not the database: one pass
ANSWER = "The flock has landed safely"


def test_cn_prints_the_engines_answer_and_it_is_billed(gateway, clients, home, workdir):
    gateway.engine.script.text = ANSWER
    config = continue_config(workdir / "config.yaml", provider="anthropic", model="fake-model",
                             api_base=gateway.v1 + "/", api_key=gateway.user_key)
    result = run_cn(clients, config, "Say hello.", home=home, cwd=workdir)
    assert result.returncode == 0, explain(result)
    assert result.stdout.strip() == ANSWER, explain(result)
    body = gateway.engine.last_body
    assert body["stream"] is True
    assert body["tools"], "cn offers its tools"
    usage = cn_usage(home)
    # cn takes input_tokens from message_start, which the gateway sends before the engine has
    # reported usage, so it holds the gateway's estimate; only output_tokens is exact here.
    assert usage["promptTokens"] > 0 and usage["completionTokens"] == 5
    row = billed(gateway)
    assert (row.key_name, row.model, row.protocol, row.outcome) == (
        "alice", "fake-model", "anthropic", "ok")
    assert (row.prompt_tokens, row.completion_tokens) == (7, 5)
