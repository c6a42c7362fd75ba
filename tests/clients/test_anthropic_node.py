"""The `@anthropic-ai/sdk` npm package (through tests/clients/node/anthropic_client.cjs) against
the Anthropic surface (/v1/messages)."""

from __future__ import annotations

import pytest

from tests.clients.conftest import REAL_MODEL, billed, run_node
from tests.conftest import LiveGateway

pytestmark = [pytest.mark.clients, pytest.mark.once]  # the wire, not the database: one pass


def _call(clients, gateway: LiveGateway, mode: str, *, home, workdir, model: str = "fake-model",
          **env: str) -> dict:
    return run_node(clients, "anthropic_client.cjs", home=home, cwd=workdir, FLOCK_MODE=mode,
                    FLOCK_BASE_URL=gateway.url, FLOCK_API_KEY=gateway.user_key,
                    FLOCK_MODEL=model, **env)


def _billed_ok(gateway: LiveGateway, model: str = "fake-model"):
    row = billed(gateway)
    assert (row.key_name, row.model, row.protocol, row.outcome) == (
        "alice", model, "anthropic", "ok")
    return row


@pytest.mark.parametrize("mode", ["create", "stream"], ids=["created", "streamed"])
def test_a_message_returns_the_answer_and_usage(gateway, clients, home, workdir, mode):
    result = _call(clients, gateway, mode, home=home, workdir=workdir)
    assert (result["text"], result["stop_reason"]) == ("Hello from the fake engine", "end_turn")
    if mode == "stream":
        assert result["pieces"] == 5
    assert (result["usage"]["input_tokens"], result["usage"]["output_tokens"]) == (7, 5)
    assert bool(gateway.engine.last_body.get("stream")) is (mode == "stream")
    row = _billed_ok(gateway)
    assert (row.prompt_tokens, row.completion_tokens) == (7, 5)


@pytest.mark.parametrize("mode", ["tools", "tools-stream"], ids=["created", "streamed"])
def test_a_tool_use_arrives_whole(gateway, clients, home, workdir, mode):
    gateway.engine.script.text = ""
    gateway.engine.script.tool_calls = [{"name": "get_weather",
                                         "arguments": '{"city": "Paris", "unit": "c"}'}]
    result = _call(clients, gateway, mode, home=home, workdir=workdir)
    assert result["stop_reason"] == "tool_use"
    assert result["text"] == ""
    [use] = result["tool_uses"]
    assert use["id"] and use["name"] == "get_weather"
    assert use["input"] == {"city": "Paris", "unit": "c"}
    assert result["usage"]["output_tokens"] == 1
    assert gateway.engine.last_body["tools"][0]["function"]["name"] == "get_weather"
    _billed_ok(gateway)


@pytest.mark.engine
@pytest.mark.parametrize("mode", ["create", "stream"], ids=["created", "streamed"])
def test_real_tokens_and_usage_come_from_the_real_model(real_gateway, clients, home, workdir,
                                                        mode):
    result = _call(clients, real_gateway, mode, home=home, workdir=workdir, model=REAL_MODEL,
                   FLOCK_MAX_TOKENS="16")
    assert result["text"]
    assert result["stop_reason"] in ("end_turn", "max_tokens")
    usage = result["usage"]
    assert usage["input_tokens"] > 0 and 0 < usage["output_tokens"] <= 16
    row = _billed_ok(real_gateway, REAL_MODEL)
    assert row.completion_tokens == usage["output_tokens"]
