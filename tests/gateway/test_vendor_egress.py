"""Vendor egress: claude-* to Anthropic and gpt-*/o1*/o3*/o4* to OpenAI, with the server's key,
checked at fake vendors on 127.0.0.1 that refuse the caller's gateway key."""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass

import anthropic
import httpx
import openai
import pytest

from tests.fakes.anthropic_server import SIGNATURE, FakeAnthropic
from tests.fakes.openai_server import FakeOpenAIEngine
from tests.gateway.test_metrics import delta, scrape

CLAUDE = "claude-sonnet-4-5-20250929"
OPENAI_KEY = "sk-openai-server-key-1234"


@dataclass
class Vendors:
    gateway: object
    anthropic: FakeAnthropic
    openai: FakeOpenAIEngine


@pytest.fixture
def vendors(gateway, settings) -> Iterator[Vendors]:
    claude = FakeAnthropic(reply="Hello from Claude").start()
    claude.thinking = "Let me think."
    claude.refused_secrets = [gateway.user_key, gateway.admin_key]
    gpt = FakeOpenAIEngine().start()
    gpt.script.models = ["gpt-4o", "o3-mini"]
    gpt.script.text = "Hello from GPT"
    gpt.script.api_key = OPENAI_KEY
    gpt.script.refused_secrets = [gateway.user_key, gateway.admin_key]
    gpt.script.vendor_strict = True
    settings.FLOCK = dataclasses.replace(
        settings.FLOCK, anthropic_api_key=claude.api_key, anthropic_url=claude.url,
        openai_api_key=OPENAI_KEY, openai_url=gpt.url)
    yield Vendors(gateway, claude, gpt)
    claude.stop()
    gpt.stop()


# A Claude Code style turn, written the way a client might lay it out: a thinking block with its
# signature echoed back, cache_control marks, beta-only fields, odd spacing and a raw non-ASCII
# character. Every byte of it must reach Anthropic unchanged.
RAW_TURN = ('{"model":"' + CLAUDE + '",  "max_tokens": 2048, "thinking": {"type":"enabled",'
            '"budget_tokens":1024},\n "context_management": {"edits": [{"type": '
            '"clear_thinking_20251015", "keep": "all"}]}, "output_config": {"effort": "high"},'
            ' "system": [{"type": "text", "text": "Be brief, café.", "cache_control": '
            '{"type": "ephemeral"}}], "tools": [{"name": "get_weather", "description": "w", '
            '"input_schema": {"$schema": "https://json-schema.org/draft/2020-12/schema", '
            '"type": "object", "properties": {"city": {"type": "string"}}}}], "messages": ['
            '{"role": "user", "content": [{"type": "text", "text": "Weather in Paris?"}]}, '
            '{"role": "assistant", "content": [{"type": "thinking", "thinking": "I should call '
            'the tool.", "signature": "' + SIGNATURE + '"}, {"type": "tool_use", "id": '
            '"toolu_01A", "name": "get_weather", "input": {"city": "Paris"}}]}, {"role": "user",'
            ' "content": [{"type": "tool_result", "tool_use_id": "toolu_01A", "content": '
            '"18 C", "cache_control": {"type": "ephemeral"}}]}]%s}')
BETAS = "interleaved-thinking-2025-05-14,context-management-2025-06-27"


def _relay(vendors: Vendors, *, stream: bool) -> httpx.Response:
    raw = (RAW_TURN % (', "stream": true' if stream else "")).encode()
    headers = {"x-api-key": vendors.gateway.user_key, "anthropic-version": "2026-10-21",
               "anthropic-beta": BETAS, "content-type": "application/json"}
    with httpx.Client(timeout=30) as client:
        response = client.send(client.build_request("POST", vendors.gateway.v1 + "/messages",
                                                    content=raw, headers=headers))
        response.read()
    sent = vendors.anthropic.last_request
    assert sent.raw == raw  # byte for byte
    assert sent.headers["x-api-key"] == vendors.anthropic.api_key  # the server's key
    assert sent.headers["anthropic-version"] == "2026-10-21"
    assert sent.headers["anthropic-beta"] == BETAS
    assert vendors.gateway.user_key not in json.dumps(sent.headers)
    return response


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
def test_claude_on_the_messages_route_goes_to_anthropic_byte_for_byte(vendors, stream):
    vendors.anthropic.required_beta = "context-management-2025-06-27"
    vendors.anthropic.cache_read_tokens = 20
    before = scrape(vendors.gateway.url)

    r = _relay(vendors, stream=stream)

    assert r.status_code == 200, r.text
    assert r.content == vendors.anthropic.sent[-1]  # the answer exactly as Anthropic sent it
    text = r.text
    assert SIGNATURE in text and "Hello from Claude" in text.replace('"', "") or stream
    [record] = vendors.gateway.usage_records()
    assert (record.model, record.node, record.engine) == (CLAUDE, "anthropic", "anthropic")
    assert record.outcome == "ok" and record.attempts == 1 and record.stream is stream
    assert record.prompt_tokens > 20 and record.completion_tokens > 0  # cached tokens included
    after = scrape(vendors.gateway.url)
    assert delta(before, after, "flock_completion_tokens_total", model=CLAUDE) == \
        record.completion_tokens


def test_a_streamed_relay_carries_thinking_and_its_signature_untouched(vendors):
    r = _relay(vendors, stream=True)
    events = [json.loads(line[6:]) for line in r.text.splitlines() if line.startswith("data: ")]
    signatures = [e["delta"]["signature"] for e in events
                  if e["type"] == "content_block_delta" and e["delta"]["type"] == "signature_delta"]
    assert signatures == [SIGNATURE]
    assert events[-1]["type"] == "message_stop"


def test_anthropic_refusing_a_relayed_request_is_answered_as_it_refused(vendors):
    vendors.anthropic.required_beta = "some-beta-the-caller-did-not-send"
    r = _relay(vendors, stream=False)
    assert r.status_code == 400
    assert r.content == vendors.anthropic.sent[-1]
    assert r.json()["error"]["type"] == "invalid_request_error"
    assert len(vendors.anthropic.requests) == 1  # not retried
    [record] = vendors.gateway.usage_records()
    assert (record.status_code, record.outcome, record.node) == (400, "error", "anthropic")


def test_the_anthropic_sdk_reaches_claude_through_the_gateway(vendors):
    client = anthropic.Anthropic(base_url=vendors.gateway.url, api_key=vendors.gateway.user_key,
                                 max_retries=0)
    message = client.messages.create(model=CLAUDE, max_tokens=100,
                                     messages=[{"role": "user", "content": "hi"}])
    assert message.content[0].text == "Hello from Claude"
    assert message.model == CLAUDE
    assert vendors.anthropic.last_request.headers["x-api-key"] == vendors.anthropic.api_key


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
def test_claude_on_the_openai_route_is_translated(vendors, stream):
    client = openai.OpenAI(base_url=vendors.gateway.v1, api_key=vendors.gateway.user_key,
                           max_retries=0)
    messages = [{"role": "system", "content": "be kind"}, {"role": "user", "content": "hi"}]
    if stream:
        chunks = list(client.chat.completions.create(model=CLAUDE, messages=messages,
                                                     stream=True))
        text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        model = chunks[0].model
    else:
        reply = client.chat.completions.create(model=CLAUDE, messages=messages)
        text, model = reply.choices[0].message.content, reply.model
    assert (text, model) == ("Hello from Claude", CLAUDE)
    sent = vendors.anthropic.last_request
    assert sent.headers["x-api-key"] == vendors.anthropic.api_key
    assert sent.body["system"] == "be kind" and sent.body["max_tokens"] > 0
    [record] = vendors.gateway.usage_records()
    assert (record.model, record.node, record.protocol) == (CLAUDE, "anthropic", "openai")
    assert record.completion_tokens > 0


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
def test_gpt_on_the_messages_route_is_translated_for_openai(vendors, stream):
    client = anthropic.Anthropic(base_url=vendors.gateway.url, api_key=vendors.gateway.user_key,
                                 max_retries=0)
    kwargs = {"model": "o3-mini", "max_tokens": 100, "system": "be kind",
              "messages": [{"role": "user", "content": "hi"}]}
    if stream:
        with client.messages.stream(**kwargs) as events:
            message = events.get_final_message()
    else:
        message = client.messages.create(**kwargs)
    assert message.content[0].text == "Hello from GPT" and message.model == "o3-mini"
    path, body, headers = vendors.openai.requests[-1]
    assert path == "/v1/chat/completions"
    assert {k.lower(): v for k, v in headers.items()}["authorization"] == f"Bearer {OPENAI_KEY}"
    assert body["max_completion_tokens"] == 100 and "max_tokens" not in body
    assert body["messages"][0] == {"role": "system", "content": "be kind"}
    [record] = vendors.gateway.usage_records()
    assert (record.model, record.node, record.engine) == ("o3-mini", "openai", "openai")
    assert record.prompt_tokens == 7 and record.completion_tokens > 0


def test_gpt_on_the_openai_route_goes_to_openai_with_the_servers_key(vendors):
    client = openai.OpenAI(base_url=vendors.gateway.v1, api_key=vendors.gateway.user_key,
                           max_retries=0)
    reply = client.chat.completions.create(model="gpt-4o", max_tokens=50,
                                           messages=[{"role": "user", "content": "hi"}])
    assert reply.choices[0].message.content == "Hello from GPT" and reply.model == "gpt-4o"
    _, body, headers = vendors.openai.requests[-1]
    assert {k.lower(): v for k, v in headers.items()}["authorization"] == f"Bearer {OPENAI_KEY}"
    assert vendors.gateway.user_key not in json.dumps(headers)


def test_vendor_calls_count_against_the_keys_daily_quota(vendors):
    from django.core.cache import cache

    from accounts.quota import quota_key
    from accounts.services import key_create

    issued = key_create(name="metered", daily_token_quota=100_000)
    r = httpx.post(vendors.gateway.v1 + "/messages",
                   headers={"x-api-key": issued.plaintext, "anthropic-version": "2023-06-01"},
                   json={"model": CLAUDE, "max_tokens": 50,
                         "messages": [{"role": "user", "content": "hi there"}]})
    assert r.status_code == 200, r.text
    [record] = vendors.gateway.usage_records()
    assert record.key_name == "metered"
    assert cache.get(quota_key(issued.key.id)) == record.prompt_tokens + record.completion_tokens


@pytest.mark.parametrize("model,variable", [(CLAUDE, "ANTHROPIC_API_KEY"),
                                            ("gpt-4o", "OPENAI_API_KEY"),
                                            ("o4-mini", "OPENAI_API_KEY")])
def test_without_the_vendor_key_a_vendor_model_is_a_404_naming_the_variable(gateway, settings,
                                                                            model, variable):
    settings.FLOCK = dataclasses.replace(settings.FLOCK, anthropic_api_key="", openai_api_key="")
    messages = [{"role": "user", "content": "hi"}]
    r = httpx.post(gateway.v1 + "/chat/completions", headers=gateway.headers(),
                   json={"model": model, "messages": messages})
    assert r.status_code == 404
    assert r.json()["error"]["code"] == "model_not_found"
    assert variable in r.json()["error"]["message"]
    r = httpx.post(gateway.v1 + "/messages", headers=gateway.headers(),
                   json={"model": model, "max_tokens": 10, "messages": messages})
    assert r.status_code == 404
    assert r.json()["type"] == "error" and r.json()["error"]["type"] == "not_found_error"
    assert variable in r.json()["error"]["message"]


def test_a_model_served_here_never_leaves_even_when_its_name_looks_like_a_vendors(vendors):
    vendors.gateway.engine.script.models = ["gpt-oss-20b", "claude-local-finetune"]
    for model in ("gpt-oss-20b", "claude-local-finetune"):
        r = httpx.post(vendors.gateway.v1 + "/chat/completions",
                       headers=vendors.gateway.headers(),
                       json={"model": model, "messages": [{"role": "user", "content": "hi"}]})
        assert r.status_code == 200 and r.json()["model"] == model
    assert vendors.anthropic.requests == [] and vendors.openai.requests == []


def _stream_claude(vendors: Vendors) -> httpx.Response:
    with httpx.Client(timeout=30) as client:
        response = client.send(client.build_request(
            "POST", vendors.gateway.v1 + "/messages",
            headers={"x-api-key": vendors.gateway.user_key, "anthropic-version": "2023-06-01"},
            json={"model": CLAUDE, "max_tokens": 100, "stream": True,
                  "messages": [{"role": "user", "content": "hi"}]}))
        response.read()
    return response


def test_an_error_event_anthropic_sends_mid_stream_is_relayed_and_recorded(vendors):
    vendors.anthropic.error_after = 3
    r = _stream_claude(vendors)
    assert r.status_code == 200
    assert r.content == vendors.anthropic.sent[-1]  # its error event included, as it sent it
    assert r.text.rstrip().endswith('"message": "Overloaded"}}')
    [record] = vendors.gateway.usage_records()
    assert record.outcome == "error" and record.attempts == 1


def test_a_relayed_stream_cut_off_by_anthropic_ends_with_an_error_event(vendors):
    vendors.anthropic.die_after = 4
    r = _stream_claude(vendors)
    assert r.status_code == 200
    events = [json.loads(line[6:]) for line in r.text.splitlines() if line.startswith("data: ")]
    assert events[0]["type"] == "message_start" and events[-1]["type"] == "error"
    assert len(vendors.anthropic.requests) == 1
    [record] = vendors.gateway.usage_records()
    assert record.outcome == "error"


def test_anthropic_overloaded_before_the_first_byte_is_an_error_status_not_a_stream(vendors):
    vendors.anthropic.fail_status = 529
    r = _stream_claude(vendors)
    assert r.status_code >= 500 and r.json()["type"] == "error"
    [record] = vendors.gateway.usage_records()
    assert record.outcome == "error"


def test_count_tokens_for_claude_is_asked_of_anthropic_as_sent(vendors):
    raw = (RAW_TURN % "").replace('"max_tokens": 2048, ', "").replace(
        '"output_config": {"effort": "high"}, ', "").encode()
    r = httpx.post(vendors.gateway.v1 + "/messages/count_tokens", content=raw,
                   headers={"x-api-key": vendors.gateway.user_key,
                            "anthropic-version": "2023-06-01", "anthropic-beta": BETAS,
                            "content-type": "application/json"})
    assert r.status_code == 200, r.text
    assert r.content == vendors.anthropic.sent[-1] and r.json()["input_tokens"] > 0
    sent = vendors.anthropic.last_request
    assert sent.path == "/v1/messages/count_tokens" and sent.raw == raw
    assert sent.headers["x-api-key"] == vendors.anthropic.api_key
    assert sent.headers["anthropic-beta"] == BETAS


def test_a_caller_hanging_up_a_relayed_stream_closes_the_request_to_anthropic(vendors):
    vendors.anthropic.reply = " ".join(["word"] * 200)
    vendors.anthropic.token_delay = 0.05
    with httpx.stream("POST", vendors.gateway.v1 + "/messages", timeout=30,
                      headers={"x-api-key": vendors.gateway.user_key,
                               "anthropic-version": "2023-06-01"},
                      json={"model": CLAUDE, "max_tokens": 1000, "stream": True,
                            "messages": [{"role": "user", "content": "hi"}]}) as r:
        next(r.iter_bytes())
    assert vendors.anthropic.client_disconnected.wait(10)
    records = vendors.gateway.usage_records()
    for _ in range(100):  # the gateway records the request once its stream has wound down
        if records:
            break
        time.sleep(0.05)
        records = vendors.gateway.usage_records()
    [record] = records
    assert record.outcome == "aborted" and record.node == "anthropic"


def test_keepalives_before_a_slow_anthropic_stream_keep_the_sdks_event_order(vendors):
    vendors.anthropic.first_delay = 2.5  # past the gateway's first keep-alive
    client = anthropic.Anthropic(base_url=vendors.gateway.url, api_key=vendors.gateway.user_key,
                                 max_retries=0)
    with client.messages.stream(model=CLAUDE, max_tokens=100,
                                messages=[{"role": "user", "content": "hi"}]) as stream:
        message = stream.get_final_message()
    assert message.content[0].text == "Hello from Claude"
    r = _stream_claude(vendors)
    assert r.text.startswith(": ping\n\n")
    relayed = r.content
    while relayed.startswith(b": ping\n\n"):
        relayed = relayed.removeprefix(b": ping\n\n")
    assert relayed == vendors.anthropic.sent[-1]
