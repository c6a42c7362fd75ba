"""The `openai` npm package (through tests/clients/node/openai_client.cjs) against the OpenAI
surface."""

from __future__ import annotations

import json

import pytest

from tests.clients.conftest import REAL_MODEL, billed, run_node
from tests.conftest import LiveGateway

pytestmark = [pytest.mark.clients, pytest.mark.once]  # the wire, not the database: one pass
USAGE = {"prompt_tokens": 7, "completion_tokens": 5, "total_tokens": 12}


def _call(clients, gateway: LiveGateway, mode: str, *, home, workdir, model: str = "fake-model",
          **env: str) -> dict:
    return run_node(clients, "openai_client.cjs", home=home, cwd=workdir, FLOCK_MODE=mode,
                    FLOCK_BASE_URL=gateway.v1, FLOCK_API_KEY=gateway.user_key, FLOCK_MODEL=model,
                    **env)


def _billed_ok(gateway: LiveGateway, model: str = "fake-model"):
    row = billed(gateway)
    assert (row.key_name, row.model, row.protocol, row.outcome) == (
        "alice", model, "openai", "ok")
    return row


def test_a_chat_completion_returns_the_answer_and_usage(gateway, clients, home, workdir):
    result = _call(clients, gateway, "chat", home=home, workdir=workdir)
    assert (result["text"], result["finish_reason"]) == ("Hello from the fake engine", "stop")
    assert result["usage"] == USAGE
    assert not gateway.engine.last_body.get("stream")
    row = _billed_ok(gateway)
    assert (row.prompt_tokens, row.completion_tokens) == (7, 5)


def test_a_stream_arrives_in_pieces_with_a_usage_chunk(gateway, clients, home, workdir):
    result = _call(clients, gateway, "stream", home=home, workdir=workdir)
    assert (result["text"], result["finish_reason"]) == ("Hello from the fake engine", "stop")
    assert result["pieces"] == 5
    assert result["usage"] == USAGE
    _billed_ok(gateway)


@pytest.mark.parametrize("mode", ["tools", "tools-stream"], ids=["created", "streamed"])
def test_a_tool_call_arrives_whole(gateway, clients, home, workdir, mode):
    gateway.engine.script.text = ""
    gateway.engine.script.tool_calls = [{"name": "get_weather",
                                         "arguments": '{"city": "Paris", "unit": "c"}'}]
    result = _call(clients, gateway, mode, home=home, workdir=workdir)
    assert result["finish_reason"] == "tool_calls"
    [call] = result["tool_calls"]
    assert (call["id"], call["name"]) == ("call_0", "get_weather")
    assert json.loads(call["arguments"]) == {"city": "Paris", "unit": "c"}
    assert result["usage"] == {"prompt_tokens": 7, "completion_tokens": 1, "total_tokens": 8}
    assert gateway.engine.last_body["tools"][0]["function"]["name"] == "get_weather"
    _billed_ok(gateway)


@pytest.mark.engine
@pytest.mark.parametrize("mode", ["chat", "stream"], ids=["created", "streamed"])
def test_real_tokens_and_usage_come_from_the_real_model(real_gateway, clients, home, workdir,
                                                        mode):
    result = _call(clients, real_gateway, mode, home=home, workdir=workdir, model=REAL_MODEL,
                   FLOCK_MAX_TOKENS="16")
    assert result["text"]
    assert result["finish_reason"] in ("stop", "length")
    usage = result["usage"]
    assert usage["prompt_tokens"] > 0 and 0 < usage["completion_tokens"] <= 16
    row = _billed_ok(real_gateway, REAL_MODEL)
    assert (row.prompt_tokens, row.completion_tokens) == (usage["prompt_tokens"],
                                                          usage["completion_tokens"])
