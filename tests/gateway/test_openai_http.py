"""The OpenAI surface over real HTTP, backed by the fake OpenAI-compatible engine."""

from __future__ import annotations

import json

import httpx


def _sse_data(text: str) -> list[str]:
    return [line[6:] for line in text.split("\n") if line.startswith("data: ")]


def test_it_answers_a_chat_completion_in_openai_shape(gateway):
    r = httpx.post(gateway.v1 + "/chat/completions", headers=gateway.headers(),
                   json={"model": "fake-model", "messages": [{"role": "user", "content": "hi"}]})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["object"] == "chat.completion"
    assert body["choices"][0]["message"] == {"role": "assistant",
                                             "content": "Hello from the fake engine"}
    assert body["choices"][0]["finish_reason"] == "stop"
    assert body["usage"] == {"prompt_tokens": 7, "completion_tokens": 5, "total_tokens": 12}
    assert r.headers["x-request-id"].startswith("req_")


def test_auto_resolves_to_the_engines_first_model(gateway):
    r = httpx.post(gateway.v1 + "/chat/completions", headers=gateway.headers(),
                   json={"model": "auto", "messages": [{"role": "user", "content": "hi"}]})
    assert r.status_code == 200, r.text
    assert r.json()["model"] == "fake-model"
    assert gateway.engine.last_body["model"] == "fake-model"


def test_it_streams_sse_frames_exactly_and_ends_with_done(gateway):
    with httpx.stream("POST", gateway.v1 + "/chat/completions", headers=gateway.headers(),
                      json={"model": "fake-model", "stream": True,
                            "messages": [{"role": "user", "content": "hi"}]}) as r:
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/event-stream")
        raw = r.read().decode()
    assert raw.endswith("data: [DONE]\n\n")
    frames = [f for f in raw.split("\n\n") if f]
    assert all(f.startswith("data: ") and "\n" not in f for f in frames)
    chunks = [json.loads(d) for d in _sse_data(raw)[:-1]]
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks)
    assert text == "Hello from the fake engine"
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"
    assert all("usage" not in c for c in chunks)  # not asked for


def test_it_sends_a_usage_chunk_only_when_asked_and_always_asks_upstream(gateway):
    with httpx.stream("POST", gateway.v1 + "/chat/completions", headers=gateway.headers(),
                      json={"model": "fake-model", "stream": True,
                            "stream_options": {"include_usage": True},
                            "messages": [{"role": "user", "content": "hi"}]}) as r:
        raw = r.read().decode()
    chunks = [json.loads(d) for d in _sse_data(raw)[:-1]]
    assert chunks[-1]["choices"] == []
    assert chunks[-1]["usage"] == {"prompt_tokens": 7, "completion_tokens": 5, "total_tokens": 12}
    assert all(c["usage"] is None for c in chunks[:-1])
    assert gateway.engine.last_body["stream_options"] == {"include_usage": True}


def test_streamed_tool_call_fragments_arrive_whole(gateway):
    gateway.engine.script.text = ""
    gateway.engine.script.tool_calls = [{"name": "get_weather",
                                         "arguments": '{"city": "Paris", "unit": "c"}'}]
    with httpx.stream("POST", gateway.v1 + "/chat/completions", headers=gateway.headers(),
                      json={"model": "fake-model", "stream": True,
                            "tools": [{"type": "function", "function": {
                                "name": "get_weather", "parameters": {"type": "object"}}}],
                            "messages": [{"role": "user", "content": "weather?"}]}) as r:
        raw = r.read().decode()
    chunks = [json.loads(d) for d in _sse_data(raw)[:-1]]
    calls = [tc for c in chunks for tc in c["choices"][0]["delta"].get("tool_calls", [])]
    assert calls[0]["id"] == "call_0" and calls[0]["function"]["name"] == "get_weather"
    assert "".join(c["function"]["arguments"] for c in calls) == '{"city": "Paris", "unit": "c"}'
    assert chunks[-1]["choices"][0]["finish_reason"] == "tool_calls"
    assert gateway.engine.last_body["tools"][0]["function"]["name"] == "get_weather"


def test_it_records_one_usage_row_per_request(gateway):
    for _ in range(3):
        httpx.post(gateway.v1 + "/chat/completions", headers=gateway.headers(),
                   json={"model": "fake-model", "messages": [{"role": "user", "content": "hi"}]})
    rows = gateway.usage_records()
    assert len(rows) == 3
    row = rows[0]
    assert (row.key_name, row.model, row.protocol, row.node, row.outcome) == (
        "alice", "fake-model", "openai", "leader", "ok")
    assert (row.prompt_tokens, row.completion_tokens) == (7, 5)
    assert row.ttft_ms is not None and row.latency_ms >= row.ttft_ms


def test_a_missing_key_is_a_401_in_openai_shape(gateway):
    r = httpx.post(gateway.v1 + "/chat/completions",
                   json={"model": "fake-model", "messages": [{"role": "user", "content": "hi"}]})
    assert r.status_code == 401
    assert r.json()["error"]["type"] == "authentication_error"


def test_a_wrong_key_is_a_401_and_x_api_key_is_accepted(gateway):
    body = {"model": "fake-model", "messages": [{"role": "user", "content": "hi"}]}
    bad = httpx.post(gateway.v1 + "/chat/completions", json=body,
                     headers={"authorization": "Bearer sk-flock-" + "x" * 44})
    assert bad.status_code == 401
    good = httpx.post(gateway.v1 + "/chat/completions", json=body,
                      headers={"x-api-key": gateway.user_key})
    assert good.status_code == 200


def test_malformed_json_is_a_400(gateway):
    r = httpx.post(gateway.v1 + "/chat/completions", headers=gateway.headers(),
                   content=b'{"model": "fake-model", "messages": [')
    assert r.status_code == 400
    assert r.json()["error"]["type"] == "invalid_request_error"


def test_a_bad_field_is_a_400_naming_the_field(gateway):
    r = httpx.post(gateway.v1 + "/chat/completions", headers=gateway.headers(),
                   json={"model": "fake-model", "messages": [], "temperature": 9})
    assert r.status_code == 400
    assert r.json()["error"]["param"] == "messages"


def test_an_unknown_model_is_a_404_model_not_found(gateway):
    r = httpx.post(gateway.v1 + "/chat/completions", headers=gateway.headers(),
                   json={"model": "nope", "messages": [{"role": "user", "content": "hi"}]})
    assert r.status_code == 404
    assert r.json()["error"]["code"] == "model_not_found"
    assert "fake-model" in r.json()["error"]["message"]


def test_a_body_over_the_limit_is_a_413(gateway, settings):
    r = httpx.post(gateway.v1 + "/chat/completions", headers=gateway.headers(),
                   content=b'{"model":"fake-model","messages":[{"role":"user","content":"'
                   + b"x" * (33 * 1024 * 1024) + b'"}]}')
    assert r.status_code == 413
    assert "FLOCK_MAX_BODY_MB" in r.json()["error"]["message"]


def test_an_engine_500_before_any_byte_is_a_502(gateway):
    gateway.engine.script.fail_status = 500
    r = httpx.post(gateway.v1 + "/chat/completions", headers=gateway.headers(),
                   json={"model": "fake-model", "messages": [{"role": "user", "content": "hi"}]})
    assert r.status_code == 502
    assert "engine exploded" in r.json()["error"]["message"]
    assert gateway.usage_records()[-1].outcome == "error"


def test_an_unreachable_engine_is_a_503_naming_engine_endpoint_and_fix(gateway):
    from cluster.models import Node

    Node.objects.update(engine="llamacpp", engine_endpoint="http://127.0.0.1:9")
    r = httpx.post(gateway.v1 + "/chat/completions", headers=gateway.headers(),
                   json={"model": "auto", "messages": [{"role": "user", "content": "hi"}]})
    assert r.status_code == 503
    error = r.json()["error"]
    assert error["type"] == "engine_unreachable" and error["code"] == "engine_unreachable"
    assert error["engine"] == "llamacpp" and error["endpoint"] == "http://127.0.0.1:9"
    assert "llama-server" in error["hint"]


def test_an_engine_dying_mid_stream_gives_a_well_formed_error_event(gateway):
    gateway.engine.script.die_after_chunks = 3
    with httpx.stream("POST", gateway.v1 + "/chat/completions", headers=gateway.headers(),
                      json={"model": "fake-model", "stream": True,
                            "messages": [{"role": "user", "content": "hi"}]}) as r:
        assert r.status_code == 200
        raw = r.read().decode()
    data = _sse_data(raw)
    error = json.loads(data[-2])
    assert error["error"]["type"] == "server_error"
    assert data[-1] == "[DONE]"
    row = gateway.usage_records()[-1]
    assert row.outcome == "error" and row.completion_tokens == 2


def test_a_client_hanging_up_cancels_the_upstream_and_is_billed(gateway):
    gateway.engine.script.text = " ".join(["word"] * 200)
    gateway.engine.script.token_delay = 0.02
    with httpx.stream("POST", gateway.v1 + "/chat/completions", headers=gateway.headers(),
                      json={"model": "fake-model", "stream": True,
                            "messages": [{"role": "user", "content": "hi"}]}) as r:
        lines = r.iter_lines()
        for _ in range(10):
            next(lines)
    import time

    deadline = time.monotonic() + 10
    while gateway.engine.disconnects == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert gateway.engine.disconnects == 1
    assert gateway.engine.streams_finished == 0
    deadline = time.monotonic() + 5
    rows = []
    while not rows and time.monotonic() < deadline:
        rows = gateway.usage_records()
    assert rows[-1].outcome == "aborted"
    assert 0 < rows[-1].completion_tokens < 200


def test_models_lists_what_the_engines_serve(gateway):
    r = httpx.get(gateway.v1 + "/models", headers=gateway.headers())
    assert r.status_code == 200
    assert [m["id"] for m in r.json()["data"]] == ["fake-embed", "fake-model"]
    assert r.json()["object"] == "list"


def test_embeddings_come_back_in_openai_shape(gateway):
    r = httpx.post(gateway.v1 + "/embeddings", headers=gateway.headers(),
                   json={"model": "fake-embed", "input": ["a", "b"]})
    assert r.status_code == 200, r.text
    body = r.json()
    assert [d["index"] for d in body["data"]] == [0, 1]
    assert len(body["data"][0]["embedding"]) == 8
    assert body["usage"]["prompt_tokens"] == 6


def test_legacy_completions_work_streaming_and_not(gateway):
    r = httpx.post(gateway.v1 + "/completions", headers=gateway.headers(),
                   json={"model": "fake-model", "prompt": "Once upon"})
    assert r.status_code == 200
    assert r.json()["choices"][0]["text"] == "Hello from the fake engine"
    with httpx.stream("POST", gateway.v1 + "/completions", headers=gateway.headers(),
                      json={"model": "fake-model", "prompt": "Once", "stream": True}) as s:
        raw = s.read().decode()
    chunks = [json.loads(d) for d in _sse_data(raw)[:-1]]
    assert "".join(c["choices"][0]["text"] for c in chunks) == "Hello from the fake engine"


def test_probes_answer_without_a_key(gateway):
    assert httpx.head(gateway.url + "/").status_code == 200
    assert httpx.get(gateway.url + "/healthz").json() == {"status": "ok"}
    ready = httpx.get(gateway.url + "/readyz")
    assert ready.status_code == 200 and ready.json()["engines"][0]["reachable"] is True


def test_a_node_key_cannot_call_inference(gateway):
    from accounts.services import key_create

    node_key = key_create(name="worker", scope="node").plaintext
    r = httpx.post(gateway.v1 + "/chat/completions", headers=gateway.headers(node_key),
                   json={"model": "fake-model", "messages": [{"role": "user", "content": "hi"}]})
    assert r.status_code == 403
    assert r.json()["error"]["type"] == "permission_error"


def test_unknown_v1_paths_are_a_json_404(gateway):
    r = httpx.get(gateway.v1 + "/nothing-here", headers=gateway.headers())
    assert r.status_code == 404
    assert "error" in r.json()


def test_a_model_can_be_retrieved_by_id(gateway):
    r = httpx.get(gateway.v1 + "/models/fake-model", headers=gateway.headers())
    assert r.status_code == 200 and r.json()["id"] == "fake-model"
    missing = httpx.get(gateway.v1 + "/models/nope", headers=gateway.headers())
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "model_not_found"


def test_streamed_tool_calls_without_ids_get_one(gateway):
    from gateway.canonical import ToolCallDelta
    from gateway.dialects.openai_render import ChatChunker

    chunker = ChatChunker(id="chatcmpl-abc", model="m", created=0, include_usage=False)
    first = chunker.feed(ToolCallDelta(index=0, name="f", arguments='{"a"'))[-1]
    more = chunker.feed(ToolCallDelta(index=0, arguments=": 1}"))[-1]
    call = first["choices"][0]["delta"]["tool_calls"][0]
    assert call["id"].startswith("call_") and call["type"] == "function"
    assert "id" not in more["choices"][0]["delta"]["tool_calls"][0]


def test_an_engine_refusing_our_key_is_unhealthy_not_a_crash():
    import asyncio
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from gateway.engines.registry import make_engine

    class Refuses(BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(401)
            self.send_header("content-length", "2")
            self.end_headers()
            self.wfile.write(b"{}")

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Refuses)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}"
        for kind in ("vllm", "ollama"):
            assert asyncio.run(make_engine(kind, url).health()) is False
    finally:
        server.shutdown()
