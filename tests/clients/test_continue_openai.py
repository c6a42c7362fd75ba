"""Continue's CLI (`cn -p`) with an `openai` provider against the OpenAI surface."""

from __future__ import annotations

import pytest

from tests.clients.conftest import REAL_MODEL, billed, explain
from tests.clients.continue_cli import cn_usage, continue_config, run_cn
from tests.conftest import LiveGateway

pytestmark = [pytest.mark.clients, pytest.mark.once]  # the wire, not the database: one pass
ANSWER = "The flock has landed safely"


def _billed_ok(gateway: LiveGateway, model: str):
    row = billed(gateway)
    assert (row.key_name, row.model, row.protocol, row.outcome) == ("alice", model, "openai", "ok")
    return row


def test_cn_prints_the_engines_answer_and_it_is_billed(gateway, clients, home, workdir):
    gateway.engine.script.text = ANSWER
    config = continue_config(workdir / "config.yaml", provider="openai", model="fake-model",
                             api_base=gateway.v1, api_key=gateway.user_key)
    result = run_cn(clients, config, "Say hello.", home=home, cwd=workdir)
    assert result.returncode == 0, explain(result)
    assert result.stdout.strip() == ANSWER, explain(result)
    body = gateway.engine.last_body
    assert body["stream"] is True and body["stream_options"] == {"include_usage": True}
    assert body["tools"], "cn offers its tools"
    usage = cn_usage(home)
    assert (usage["promptTokens"], usage["completionTokens"]) == (7, 5)
    row = _billed_ok(gateway, "fake-model")
    assert (row.prompt_tokens, row.completion_tokens) == (7, 5)


@pytest.mark.engine
def test_cn_gets_real_tokens_from_the_real_model(real_gateway, clients, home, workdir):
    config = continue_config(workdir / "config.yaml", provider="openai", model=REAL_MODEL,
                             api_base=real_gateway.v1, api_key=real_gateway.user_key,
                             max_tokens=24)
    result = run_cn(clients, config, "Say hello.", home=home, cwd=workdir)
    assert result.returncode == 0, explain(result)
    assert result.stdout.strip(), explain(result)
    usage = cn_usage(home)
    row = _billed_ok(real_gateway, REAL_MODEL)
    assert row.prompt_tokens > 0 and 0 < row.completion_tokens <= 24
    assert (usage["promptTokens"], usage["completionTokens"]) == (row.prompt_tokens,
                                                                  row.completion_tokens)
