"""A fake OpenAI-compatible engine (what vLLM, llama-server and MLX-LM serve), as a real HTTP
server on 127.0.0.1. Field by field it answers like the published API; tests script its reply
and its failures, and read back what it received."""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Script:
    text: str = "Hello from the fake engine"
    tool_calls: list[dict[str, Any]] = field(default_factory=list)  # [{"name","arguments"}]
    reasoning: str = ""
    models: list[str] = field(default_factory=lambda: ["fake-model", "fake-embed"])
    token_delay: float = 0.0
    first_delay: float = 0.0  # seconds before the first streamed chunk (a model loading)
    fail_status: int = 0  # answer every request with this status
    fail_message: str = "engine exploded"
    die_after_chunks: int = -1  # close the socket mid-stream after this many chunks
    finish_reason: str | None = None
    prompt_tokens: int = 7
    max_model_len: int = 8192
    # An agent's second turn: once the request carries a tool result (or no longer offers the
    # scripted tool), answer with this text instead of calling the tool again.
    text_after_tool: str | None = None
    delay: float = 0.0  # seconds before answering any POST (a slow engine)
    # OpenAI's own API: a key it checks, and no argument it does not know.
    api_key: str = ""  # when set, requests must carry `Authorization: Bearer <api_key>`
    refused_secrets: list[str] = field(default_factory=list)  # credentials that must not arrive
    vendor_strict: bool = False  # refuse vLLM's extensions and `max_tokens` (o-series rules)


class FakeOpenAIEngine:
    def __init__(self) -> None:
        self.script = Script()
        self.requests: list[tuple[str, dict[str, Any], dict[str, str]]] = []
        self.disconnects = 0
        self.streams_finished = 0
        self._server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    @property
    def last_body(self) -> dict[str, Any]:
        return self.requests[-1][1]

    def start(self) -> FakeOpenAIEngine:
        engine = self

        class Handler(_Handler):
            fake = engine

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server:
            self._server.shutdown()
            self._server.server_close()


def _tokens(text: str) -> list[str]:
    words = text.split(" ")
    return [w if i == 0 else " " + w for i, w in enumerate(words)]


class _Handler(BaseHTTPRequestHandler):
    fake: FakeOpenAIEngine
    protocol_version = "HTTP/1.1"

    def log_message(self, *args: Any) -> None:
        pass

    def _json(self, status: int, body: Any) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _refused(self) -> bool:
        """As OpenAI answers a bad key or an argument it does not take."""
        script = self.fake.script
        sent = self.headers.get("authorization", "")
        if script.api_key and sent != f"Bearer {script.api_key}":
            self._json(401, {"error": {"message": "Incorrect API key provided.",
                                       "type": "invalid_request_error", "param": None,
                                       "code": "invalid_api_key"}})
            return True
        if any(secret in value for secret in script.refused_secrets
               for value in self.headers.values()):
            self._json(401, {"error": {"message": "A foreign credential was sent.",
                                       "type": "invalid_request_error", "param": None,
                                       "code": "invalid_api_key"}})
            return True
        return False

    def _vendor_refuses(self, body: dict[str, Any]) -> bool:
        if not self.fake.script.vendor_strict:
            return False
        for name in ("chat_template_kwargs", "top_k"):
            if name in body:
                self._json(400, {"error": {"message": "Unrecognized request argument supplied: "
                                                      f"{name}", "type": "invalid_request_error",
                                           "param": None, "code": None}})
                return True
        if "max_tokens" in body:
            self._json(400, {"error": {"message": "Unsupported parameter: 'max_tokens' is not "
                                                  "supported with this model. Use "
                                                  "'max_completion_tokens' instead.",
                                       "type": "invalid_request_error", "param": "max_tokens",
                                       "code": "unsupported_parameter"}})
            return True
        return False

    def do_GET(self) -> None:
        if self._refused():
            return
        if self.path in ("/v1/models", "/models"):
            self._json(200, {"object": "list", "data": [
                {"id": m, "object": "model", "created": 1700000000, "owned_by": "fake",
                 "max_model_len": self.fake.script.max_model_len}
                for m in self.fake.script.models]})
        elif self.path == "/health":
            self._json(200, {"status": "ok"})
        else:
            self._json(404, {"error": {"message": "not found", "type": "not_found_error"}})

    def do_POST(self) -> None:
        length = int(self.headers.get("content-length") or 0)
        body = json.loads(self.rfile.read(length) or b"{}")
        self.fake.requests.append((self.path, body, dict(self.headers)))
        script = self.fake.script
        if script.delay:
            time.sleep(script.delay)
        if self._refused() or self._vendor_refuses(body):
            return
        if script.fail_status:
            self._json(script.fail_status, {"error": {"message": script.fail_message,
                                                      "type": "server_error", "code": None}})
            return
        if body.get("model") not in script.models:
            self._json(404, {"error": {"message": f"The model `{body.get('model')}` does not "
                                                  "exist.", "type": "NotFoundError", "code": 404}})
            return
        if self.path == "/tokenize":  # vLLM's tokenizer endpoint
            text = json.dumps(body.get("messages") or body.get("prompt"))
            self._json(200, {"count": len(text) // 3, "max_model_len": script.max_model_len,
                             "tokens": list(range(len(text) // 3))})
        elif self.path == "/v1/chat/completions":
            self._chat(body)
        elif self.path == "/v1/completions":
            self._completion(body)
        elif self.path == "/v1/embeddings":
            self._embeddings(body)
        else:
            self._json(404, {"error": {"message": "not found"}})

    def _usage(self, completion: int) -> dict[str, int]:
        prompt = self.fake.script.prompt_tokens
        return {"prompt_tokens": prompt, "completion_tokens": completion,
                "total_tokens": prompt + completion}

    def _finish(self, script: Script) -> str:
        return script.finish_reason or ("tool_calls" if script.tool_calls else "stop")

    def _chat_script(self, body: dict[str, Any]) -> Script:
        script = self.fake.script
        if script.text_after_tool is None or not script.tool_calls:
            return script
        offered = {(t.get("function") or {}).get("name") for t in body.get("tools") or []}
        answered = any(m.get("role") == "tool" for m in body.get("messages") or [])
        if answered or not offered & {c["name"] for c in script.tool_calls}:
            return replace(script, text=script.text_after_tool, tool_calls=[])
        return script

    def _chat(self, body: dict[str, Any]) -> None:
        script = self._chat_script(body)
        pieces = _tokens(script.text) if script.text else []
        if not body.get("stream"):
            message: dict[str, Any] = {"role": "assistant", "content": script.text or None}
            if script.reasoning:
                message["reasoning_content"] = script.reasoning
            if script.tool_calls:
                message["tool_calls"] = [
                    {"id": f"call_{i}", "type": "function",
                     "function": {"name": c["name"], "arguments": c["arguments"]}}
                    for i, c in enumerate(script.tool_calls)]
            self._json(200, {
                "id": "chatcmpl-fake", "object": "chat.completion", "created": int(time.time()),
                "model": body["model"],
                "choices": [{"index": 0, "message": message, "logprobs": None,
                             "finish_reason": self._finish(script)}],
                "usage": self._usage(len(pieces) + len(script.tool_calls))})
            return
        chunks: list[dict[str, Any]] = [{"role": "assistant", "content": ""}]
        if script.reasoning:
            chunks += [{"reasoning_content": p} for p in _tokens(script.reasoning)]
        chunks += [{"content": p} for p in pieces]
        for i, call in enumerate(script.tool_calls):
            chunks.append({"tool_calls": [{"index": i, "id": f"call_{i}", "type": "function",
                                           "function": {"name": call["name"], "arguments": ""}}]})
            args = call["arguments"]
            for start in range(0, len(args), 5):
                chunks.append({"tool_calls": [{"index": i,
                                               "function": {"arguments": args[start:start + 5]}}]})
        frames = [self._chunk(body, delta, None) for delta in chunks]
        frames.append(self._chunk(body, {}, self._finish(script)))
        include_usage = (body.get("stream_options") or {}).get("include_usage")
        if include_usage:
            frames.append({"id": "chatcmpl-fake", "object": "chat.completion.chunk",
                           "created": int(time.time()), "model": body["model"], "choices": [],
                           "usage": self._usage(len(pieces) + len(script.tool_calls))})
        self._stream(frames)

    def _chunk(self, body: dict[str, Any], delta: dict[str, Any], finish: str | None) -> dict:
        return {"id": "chatcmpl-fake", "object": "chat.completion.chunk",
                "created": int(time.time()), "model": body["model"],
                "choices": [{"index": 0, "delta": delta, "logprobs": None,
                             "finish_reason": finish}]}

    def _completion(self, body: dict[str, Any]) -> None:
        script = self.fake.script
        pieces = _tokens(script.text)
        if not body.get("stream"):
            self._json(200, {"id": "cmpl-fake", "object": "text_completion",
                             "created": int(time.time()), "model": body["model"],
                             "choices": [{"index": 0, "text": script.text, "logprobs": None,
                                          "finish_reason": "stop"}],
                             "usage": self._usage(len(pieces))})
            return
        frames = [{"id": "cmpl-fake", "object": "text_completion", "created": int(time.time()),
                   "model": body["model"], "choices": [{"index": 0, "text": p, "logprobs": None,
                                                        "finish_reason": None}]}
                  for p in pieces]
        frames.append({"id": "cmpl-fake", "object": "text_completion", "created": 0,
                       "model": body["model"], "choices": [{"index": 0, "text": "",
                                                            "finish_reason": "stop"}]})
        if (body.get("stream_options") or {}).get("include_usage"):
            frames.append({"id": "cmpl-fake", "object": "text_completion", "created": 0,
                           "model": body["model"], "choices": [], "usage": self._usage(len(pieces))})
        self._stream(frames)

    def _embeddings(self, body: dict[str, Any]) -> None:
        inputs = body["input"] if isinstance(body["input"], list) else [body["input"]]
        data = [{"object": "embedding", "index": i,
                 "embedding": [round(0.1 * (i + 1) + 0.01 * j, 4) for j in range(8)]}
                for i, _ in enumerate(inputs)]
        self._json(200, {"object": "list", "data": data, "model": body["model"],
                         "usage": {"prompt_tokens": 3 * len(inputs), "total_tokens": 3 * len(inputs)}})

    def _stream(self, frames: list[dict[str, Any]]) -> None:
        script = self.fake.script
        self.send_response(200)
        self.send_header("content-type", "text/event-stream")
        self.send_header("cache-control", "no-cache")
        self.send_header("connection", "close")
        self.end_headers()
        try:
            self.wfile.flush()
            if script.first_delay:
                time.sleep(script.first_delay)
            for n, chunk in enumerate(frames):
                if n == script.die_after_chunks:
                    self.wfile.flush()
                    self.connection.shutdown(2)
                    self.close_connection = True
                    return
                self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
                self.wfile.flush()
                if script.token_delay:
                    time.sleep(script.token_delay)
            self.wfile.write(b"data: [DONE]\n\n")
            self.wfile.flush()
            self.fake.streams_finished += 1
        except (BrokenPipeError, ConnectionResetError):
            self.fake.disconnects += 1
        self.close_connection = True
