"""A fake Ollama server for tests: real HTTP on 127.0.0.1, answering like Ollama's docs/api.md
field by field (/api/tags, /api/ps, /api/version, /api/chat, /api/generate, /api/embed).

Behaviour is set with attributes, before or between requests:

    fake = FakeOllama(reply="Hi there", token_delay=0.01).start()
    fake.tool_calls = [{"name": "get_weather", "arguments": {"city": "Paris"}}]
    fake.die_after = 2          # close the socket after two streamed lines
    fake.last_request           # the JSON body of the last POST
    fake.client_disconnected.wait(2)
    fake.stop()
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import threading
import time
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self

MODELS = ("llama3.2:1b", "qwen3:0.6b", "llava:7b", "nomic-embed-text:latest")
_FAMILIES = {"llama3.2": "llama", "qwen3": "qwen3", "llava": "llama", "nomic-embed-text": "nomic-bert"}


class FakeOllama:
    def __init__(self, *, models: tuple[str, ...] = MODELS, loaded: tuple[str, ...] = ("llama3.2:1b",),
                 reply: str = "Hello! How can I help you today?") -> None:
        self.models = list(models)
        self.loaded = list(loaded)
        self.thinking_models = ["qwen3:0.6b"]  # others answer 400 to think=true, as Ollama does
        self.embedding_models = ["nomic-embed-text:latest"]  # these refuse chat and generate
        self.reply = reply
        self.thinking = ""  # reasoning streamed before the reply, on thinking models
        self.tool_calls: list[dict[str, Any]] = []  # {"name": ..., "arguments": {...}}
        self.tool_call_ids = False  # newer Ollama versions add an "id" to each tool call
        self.token_delay = 0.0  # seconds between streamed lines
        self.fail_status: int | None = None  # answer inference endpoints with this status
        self.fail_message = "llama runner process has terminated: exit status 2"
        self.die_after: int | None = None  # close the socket after this many streamed lines
        self.error_after: int | None = None  # send {"error": fail_message} after this many lines
        self.omit_done = False  # end the stream cleanly but without its done line
        self.embedding_size = 8
        self.version = "0.12.6"
        self.requests: list[tuple[str, str, Any]] = []  # (method, path, JSON body or None)
        self.client_disconnected = threading.Event()
        self.url = ""
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def last_request(self) -> Any:
        bodies = [body for method, _, body in self.requests if method == "POST"]
        return bodies[-1] if bodies else None

    def start(self) -> Self:
        server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        server.daemon_threads = True
        server.fake = self  # type: ignore[attr-defined]
        self._server = server
        self.url = f"http://127.0.0.1:{server.server_address[1]}"
        # A short poll keeps stop() quick: shutdown() waits for the next poll.
        self._thread = threading.Thread(target=server.serve_forever, args=(0.05,),
                                        name="fake-ollama", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _now() -> str:
    # Go's RFC 3339 with nanoseconds, as Ollama prints created_at.
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f") + "000Z"


def _tokens(text: str) -> list[str]:
    return re.findall(r"\s*\S+|\s+", text) if text else []


def _full_name(model: str) -> str:
    return model if ":" in model else f"{model}:latest"


def _digest(name: str) -> str:
    return hashlib.sha256(name.encode()).hexdigest()


def _details(name: str) -> dict[str, Any]:
    family = _FAMILIES.get(name.split(":")[0], "llama")
    return {"parent_model": "", "format": "gguf", "family": family, "families": [family],
            "parameter_size": "1.2B", "quantization_level": "Q4_K_M"}


def _metrics(prompt_tokens: int, eval_tokens: int) -> dict[str, int]:
    prompt_ns, eval_ns, load_ns = prompt_tokens * 1_500_000, eval_tokens * 20_000_000, 12_000_000
    return {"total_duration": load_ns + prompt_ns + eval_ns, "load_duration": load_ns,
            "prompt_eval_count": prompt_tokens, "prompt_eval_duration": prompt_ns,
            "eval_count": eval_tokens, "eval_duration": eval_ns}


def _count_words(texts: list[str]) -> int:
    return sum(len(text.split()) for text in texts)


def _embedding(text: str, size: int) -> list[float]:
    raw = hashlib.sha256(text.encode()).digest() * (size // 32 + 1)
    vector = [(byte - 127.5) / 127.5 for byte in raw[:size]]
    norm = math.sqrt(sum(v * v for v in vector)) or 1.0  # Ollama returns unit vectors
    return [round(v / norm, 7) for v in vector]


class _Abort(Exception):
    """The scripted failure closes the connection; nothing more is written."""


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "ollama-fake"

    @property
    def fake(self) -> FakeOllama:
        return self.server.fake  # type: ignore[attr-defined]

    def log_message(self, format: str, *args: Any) -> None:
        pass  # keep test output clean

    # --- plumbing ------------------------------------------------------------------------

    def _send_json(self, status: int, payload: Any) -> None:
        body = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _error(self, status: int, message: str) -> None:
        self._send_json(status, {"error": message})

    def _read_body(self) -> tuple[Any, str | None]:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        if not raw:
            return None, "unexpected EOF"
        try:
            return json.loads(raw), None
        except ValueError:
            return None, "invalid character looking for beginning of value"

    def _stream(self, lines: list[dict[str, Any]]) -> None:
        fake = self.fake
        self.send_response(200)
        self.send_header("Content-Type", "application/x-ndjson")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        if fake.omit_done:
            lines = lines[:-1]
        try:
            for sent, line in enumerate(lines):
                if sent and fake.token_delay:
                    time.sleep(fake.token_delay)
                if sent == fake.die_after:
                    raise _Abort
                if sent == fake.error_after:
                    line = {"error": fake.fail_message}
                self._chunk(json.dumps(line).encode() + b"\n")
                if "error" in line:
                    break
            self.wfile.write(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            fake.client_disconnected.set()
            self.close_connection = True
        except _Abort:
            self.close_connection = True  # the server closes the socket mid-body

    def _chunk(self, payload: bytes) -> None:
        self.wfile.write(b"%x\r\n%s\r\n" % (len(payload), payload))
        self.wfile.flush()

    # --- routes --------------------------------------------------------------------------

    def do_HEAD(self) -> None:
        self.send_response(200 if self.path == "/" else 404)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def do_GET(self) -> None:
        fake = self.fake
        fake.requests.append(("GET", self.path, None))
        if self.path == "/":
            body = b"Ollama is running"
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        elif self.path == "/api/version":
            self._send_json(200, {"version": fake.version})
        elif self.path == "/api/tags":
            self._send_json(200, {"models": [self._tag(name) for name in fake.models]})
        elif self.path == "/api/ps":
            self._send_json(200, {"models": [self._running(name) for name in fake.loaded]})
        else:
            self._not_found()

    def do_POST(self) -> None:
        body, problem = self._read_body()
        self.fake.requests.append(("POST", self.path, body))
        routes = {"/api/chat": self._chat, "/api/generate": self._generate,
                  "/api/embed": self._embed}
        route = routes.get(self.path)
        if route is None:
            return self._not_found()
        if problem or not isinstance(body, dict):
            return self._error(400, problem or "invalid request body")
        if not body.get("model"):
            return self._error(400, "model is required")
        name = _full_name(body["model"])
        if name not in self.fake.models:
            return self._error(404, f'model "{body["model"]}" not found, try pulling it first')
        if self.fake.fail_status:
            return self._error(self.fake.fail_status, self.fake.fail_message)
        route(body, name)

    def _not_found(self) -> None:
        body = b"404 page not found"
        self.send_response(404)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _tag(self, name: str) -> dict[str, Any]:
        return {"name": name, "model": name, "modified_at": "2025-05-04T17:37:44.706015396-07:00",
                "size": 1321098329, "digest": _digest(name), "details": _details(name)}

    def _running(self, name: str) -> dict[str, Any]:
        return {"name": name, "model": name, "size": 2070000000, "digest": _digest(name),
                "details": _details(name), "expires_at": "2099-01-01T00:05:00.000000000Z",
                "size_vram": 2070000000, "context_length": 4096}

    # --- generation ----------------------------------------------------------------------

    def _refusal(self, body: dict[str, Any], name: str, verb: str) -> str | None:
        if name in self.fake.embedding_models:
            return f'"{body["model"]}" does not support {verb}'
        if body.get("think") is True and name not in self.fake.thinking_models:
            return f'"{body["model"]}" does not support thinking'
        return None

    def _script(self, body: dict[str, Any], name: str) -> tuple[list[str], list[str], str]:
        """Thinking tokens, reply tokens and done_reason for this request."""
        fake = self.fake
        thinks = name in fake.thinking_models and body.get("think") is not False
        thinking = _tokens(fake.thinking) if thinks else []
        reply = _tokens(fake.reply)
        limit = (body.get("options") or {}).get("num_predict")
        if isinstance(limit, int) and 0 <= limit < len(thinking) + len(reply):
            thinking = thinking[:limit]
            reply = reply[:limit - len(thinking)]
            return thinking, reply, "length"
        return thinking, reply, "stop"

    def _calls(self, body: dict[str, Any]) -> list[dict[str, Any]]:
        if not body.get("tools"):
            return []
        calls = []
        for index, call in enumerate(self.fake.tool_calls):
            item: dict[str, Any] = {"function": {"index": index, "name": call["name"],
                                                 "arguments": call.get("arguments", {})}}
            if self.fake.tool_call_ids:
                item = {"id": f"call_{_digest(str(index))[:8]}", **item}
            calls.append(item)
        return calls

    def _chat(self, body: dict[str, Any], name: str) -> None:
        refusal = self._refusal(body, name, "chat")
        if refusal:
            return self._error(400, refusal)
        thinking, reply, reason = self._script(body, name)
        calls = self._calls(body) if reason == "stop" else []
        prompt_tokens = _count_words([str(m.get("content") or "")
                                      for m in body.get("messages") or []]) + 10
        head = {"model": body["model"]}
        metrics = _metrics(prompt_tokens, len(thinking) + len(reply) + len(calls) * 8)
        if body.get("stream", True) is False:
            message: dict[str, Any] = {"role": "assistant", "content": "".join(reply)}
            if thinking:
                message["thinking"] = "".join(thinking)
            if calls:
                message["tool_calls"] = calls
            return self._send_json(200, {**head, "created_at": _now(), "message": message,
                                         "done_reason": reason, "done": True, **metrics})
        lines = [{**head, "created_at": _now(),
                  "message": {"role": "assistant", "content": "", "thinking": token},
                  "done": False} for token in thinking]
        lines += [{**head, "created_at": _now(),
                   "message": {"role": "assistant", "content": token}, "done": False}
                  for token in reply]
        lines += [{**head, "created_at": _now(),
                   "message": {"role": "assistant", "content": "", "tool_calls": [call]},
                   "done": False} for call in calls]
        lines.append({**head, "created_at": _now(),
                      "message": {"role": "assistant", "content": ""},
                      "done_reason": reason, "done": True, **metrics})
        self._stream(lines)

    def _generate(self, body: dict[str, Any], name: str) -> None:
        refusal = self._refusal(body, name, "generate")
        if refusal:
            return self._error(400, refusal)
        thinking, reply, reason = self._script(body, name)
        prompt_tokens = _count_words([str(body.get("prompt") or "")]) + (0 if body.get("raw") else 10)
        metrics = _metrics(prompt_tokens, len(thinking) + len(reply))
        head = {"model": body["model"]}
        tail: dict[str, Any] = {"done": True, "done_reason": reason}
        if not body.get("raw"):  # raw mode returns no context, per the docs
            tail["context"] = list(range(1, prompt_tokens + len(reply) + 1))
        if body.get("stream", True) is False:
            whole = {**head, "created_at": _now(), "response": "".join(reply)}
            if thinking:
                whole["thinking"] = "".join(thinking)
            return self._send_json(200, {**whole, **tail, **metrics})
        lines = [{**head, "created_at": _now(), "response": "", "thinking": token, "done": False}
                 for token in thinking]
        lines += [{**head, "created_at": _now(), "response": token, "done": False}
                  for token in reply]
        lines.append({**head, "created_at": _now(), "response": "", **tail, **metrics})
        self._stream(lines)

    def _embed(self, body: dict[str, Any], name: str) -> None:
        given = body.get("input", [])
        texts = [given] if isinstance(given, str) else list(given or [])
        if any(not isinstance(text, str) for text in texts):
            return self._error(400, "invalid input type")
        size = int(body.get("dimensions") or self.fake.embedding_size)
        self._send_json(200, {"model": body["model"],
                              "embeddings": [_embedding(text, size) for text in texts],
                              "total_duration": 14143917, "load_duration": 1019500,
                              "prompt_eval_count": _count_words(texts)})
