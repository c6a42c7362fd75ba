"""The Anthropic dialect on the real engine (llama-server, gemma-3 270M)."""

from __future__ import annotations

import anthropic
import pytest

pytestmark = pytest.mark.engine
MSG = [{"role": "user", "content": "Say hello."}]


@pytest.fixture
def client(real_gateway) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=real_gateway.url, api_key=real_gateway.user_key,
                               max_retries=0, timeout=120)


def test_a_message_from_the_real_model(client):
    message = client.messages.create(model="gemma-3-270m", max_tokens=16, messages=MSG)
    assert message.content[0].type == "text" and message.content[0].text
    assert message.usage.input_tokens > 0 and 0 < message.usage.output_tokens <= 16
    assert message.stop_reason in ("end_turn", "max_tokens")


def test_a_streamed_message_with_claude_codes_max_tokens(client):
    # Claude Code asks for 32000 tokens; the 4096-token context must clamp it, not fail.
    # A space as stop sequence keeps the answer to a word or so.
    with client.messages.stream(model="gemma-3-270m", max_tokens=32000, messages=MSG,
                                stop_sequences=[" "],
                                system=[{"type": "text", "text": "Be brief.",
                                         "cache_control": {"type": "ephemeral"}}]) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text and final.usage.output_tokens > 0


def test_count_tokens_uses_llama_cpps_tokenizer(client, llama_server):
    import httpx

    counted = client.messages.count_tokens(model="gemma-3-270m", messages=MSG).input_tokens
    prompt = httpx.post(llama_server.endpoint + "/apply-template",
                        json={"messages": MSG}).json()["prompt"]
    tokens = httpx.post(llama_server.endpoint + "/tokenize", json={"content": prompt}).json()
    assert counted == len(tokens["tokens"]) > 0
