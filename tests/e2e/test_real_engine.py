"""End to end through the gateway on the real engine: llama-server with the gemma-3 270M GGUF.
The model is a base model, so its text is not sensible; its tokens and usage are real."""

from __future__ import annotations

import json
import signal
import time

import httpx
import pytest

pytestmark = pytest.mark.engine
MODEL = "gemma-3-270m"


def _chat(stream: bool = False, **extra) -> dict:
    return {"model": "auto", "stream": stream,
            "messages": [{"role": "user", "content": "hi in 5 words"}], **extra}


def _busy_slots(endpoint: str) -> int:
    slots = httpx.get(endpoint + "/slots", timeout=5).json()
    return sum(1 for slot in slots if slot.get("is_processing"))


def test_auto_gets_real_tokens_from_the_real_model(real_gateway):
    r = httpx.post(real_gateway.v1 + "/chat/completions", headers=real_gateway.headers(),
                   json=_chat(max_tokens=16), timeout=120)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["model"] == MODEL
    assert body["usage"]["prompt_tokens"] > 0
    assert 0 < body["usage"]["completion_tokens"] <= 16
    assert body["choices"][0]["message"]["content"]
    row = real_gateway.usage_records()[-1]
    assert (row.model, row.engine, row.outcome) == (MODEL, "llamacpp", "ok")
    assert row.completion_tokens == body["usage"]["completion_tokens"]


def test_it_streams_real_tokens_with_usage(real_gateway):
    with httpx.stream("POST", real_gateway.v1 + "/chat/completions",
                      headers=real_gateway.headers(), timeout=120,
                      json=_chat(True, max_tokens=24, stream_options={"include_usage": True})) as r:
        assert r.status_code == 200
        data = [line[6:] for line in r.iter_lines() if line.startswith("data: ")]
    assert data[-1] == "[DONE]"
    chunks = [json.loads(d) for d in data[:-1]]
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])
    usage = chunks[-1]["usage"]
    assert text and usage["completion_tokens"] > 0 and usage["prompt_tokens"] > 0
    assert chunks[-2]["choices"][0]["finish_reason"] in ("stop", "length")


def test_embeddings_come_from_the_real_model(real_gateway):
    r = httpx.post(real_gateway.v1 + "/embeddings", headers=real_gateway.headers(), timeout=60,
                   json={"model": MODEL, "input": ["the cat sat", "on the mat"]})
    assert r.status_code == 200, r.text
    vectors = [d["embedding"] for d in r.json()["data"]]
    assert len(vectors) == 2 and len(vectors[0]) == 640 and vectors[0] != vectors[1]


def test_a_client_hanging_up_stops_the_engine_generating(real_gateway, llama_server):
    with httpx.stream("POST", real_gateway.v1 + "/chat/completions",
                      headers=real_gateway.headers(), timeout=120,
                      json=_chat(True, max_tokens=3000, ignore_eos=True)) as r:
        lines = r.iter_lines()
        for _ in range(12):
            next(lines)
        assert _busy_slots(llama_server.endpoint) == 1
    # 3000 tokens take the engine well over 20 s; an idle slot soon after proves cancellation.
    deadline = time.monotonic() + 10
    while _busy_slots(llama_server.endpoint) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert _busy_slots(llama_server.endpoint) == 0
    deadline = time.monotonic() + 5
    rows = []
    while not rows and time.monotonic() < deadline:
        rows = real_gateway.usage_records()
    assert rows[-1].outcome == "aborted" and 0 < rows[-1].completion_tokens < 3000


def test_the_engine_killed_mid_stream_gives_an_error_event(doomed_gateway, doomed_llama_server):
    with httpx.stream("POST", doomed_gateway.v1 + "/chat/completions",
                      headers=doomed_gateway.headers(), timeout=120,
                      json=_chat(True, max_tokens=3000, ignore_eos=True)) as r:
        lines = r.iter_lines()
        for _ in range(8):
            next(lines)
        doomed_llama_server.proc.send_signal(signal.SIGKILL)
        rest = [line[6:] for line in lines if line.startswith("data: ")]
    assert rest[-1] == "[DONE]"
    error = json.loads(rest[-2])["error"]
    assert error["type"] == "server_error" and "llamacpp" in error["message"]
    deadline = time.monotonic() + 5
    rows = []
    while not rows and time.monotonic() < deadline:
        rows = doomed_gateway.usage_records()
    assert rows[-1].outcome == "error"


def test_an_engine_that_is_gone_before_the_request_is_a_503(doomed_gateway, doomed_llama_server):
    doomed_llama_server.stop()
    r = httpx.post(doomed_gateway.v1 + "/chat/completions", headers=doomed_gateway.headers(),
                   json=_chat(), timeout=30)
    assert r.status_code == 503
    assert r.json()["error"]["code"] == "engine_unreachable"
