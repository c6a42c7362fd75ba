"""A fake Anthropic API for tests: real HTTP on 127.0.0.1, answering like the published Messages
API (docs.anthropic.com/en/api/messages, /messages-streaming, /errors, /models-list,
/messages-count-tokens) field by field, and as strict as the real one about what it accepts:
the key (`x-api-key`, or `Authorization: Bearer` as the SDKs send it), an `anthropic-version`
header, `max_tokens`, no unknown fields, no empty text blocks, tool results right after the
turn that called the tools. It records the headers it received, so tests can check them.

Behaviour is set with attributes, before or between requests:

    fake = FakeAnthropic(reply="Hi there").start()
    fake.thinking = "Let me think."        # streamed first when the request asks for thinking
    fake.tool_calls = [{"name": "get_weather", "input": {"city": "Paris"}}]
    fake.cache_read_tokens = 30            # prompt tokens reported as read from the cache
    fake.error_after = 3                   # an `error` event after three events
    fake.last_request.headers["x-api-key"]
    fake.stop()
"""

from __future__ import annotations

import json
import re
import threading
import time
import uuid
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self
from urllib.parse import parse_qs, urlsplit

from tests.fakes.anthropic_checks import (
    COUNT_FIELDS,
    MESSAGE_FIELDS,
    Refused,
    _bad,
    _check_fields,
    _check_messages,
    _check_options,
    _words,
)

MODELS = ("claude-sonnet-4-5-20250929", "claude-haiku-4-5-20251001", "claude-opus-4-1-20250805")
SIGNATURE = "EqQBCkYIBxgCKkBf3m1rXa2Yg0vS1c8y9Q+fake+signature+bytesEgwQ4C5m0Yx2dGJkZWY="



@dataclass
class Recorded:
    method: str
    path: str
    headers: dict[str, str]  # lower-cased names
    body: Any
    raw: bytes = b""  # the body exactly as it arrived


class FakeAnthropic:
    def __init__(self, *, api_key: str = "sk-ant-fake-key", models: tuple[str, ...] = MODELS,
                 reply: str = "Hello! How can I help you today?") -> None:
        self.api_key = api_key
        self.models = list(models)
        self.reply = reply
        self.thinking = ""  # sent as a thinking block when the request enables thinking
        self.tool_calls: list[dict[str, Any]] = []  # {"name": ..., "input": {...}}
        self.cache_read_tokens = 0
        self.cache_creation_tokens = 0
        self.delta_usage_output_only = False  # older servers: message_delta.usage has only output
        self.token_delay = 0.0  # seconds between streamed events
        self.first_delay = 0.0  # seconds between a stream's headers and its first event
        self.fail_status: int | None = None  # answer /v1/messages with this status
        self.fail_kind = "overloaded_error"
        self.fail_message = "Overloaded"
        self.error_after: int | None = None  # send an `error` event after this many events
        self.die_after: int | None = None  # close the socket after this many events
        self.unknown_events = False  # add an event type from the future, which must be ignored
        self.max_page = 1000  # the most models GET /v1/models returns at once, whatever the limit
        # Secrets that must never arrive here (a gateway's own client keys): any header carrying
        # one is refused with 401, as a leaked credential would be by a careful vendor.
        self.refused_secrets: list[str] = []
        self.required_beta = ""  # refuse requests whose anthropic-beta does not name this
        self.sent: list[bytes] = []  # every response body exactly as written (streams joined)
        self.requests: list[Recorded] = []
        self.client_disconnected = threading.Event()
        self.url = ""
        self._server: ThreadingHTTPServer | None = None

    @property
    def last_request(self) -> Recorded:
        return self.requests[-1]

    @property
    def last_body(self) -> Any:
        return self.requests[-1].body

    def start(self) -> Self:
        server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        server.daemon_threads = True
        server.fake = self  # type: ignore[attr-defined]
        self._server = server
        self.url = f"http://127.0.0.1:{server.server_address[1]}"
        threading.Thread(target=server.serve_forever, args=(0.05,), name="fake-anthropic",
                         daemon=True).start()
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


# --- validation, as strict as the real API ------------------------------------------------------


def _tokens(text: str) -> list[str]:
    return re.findall(r"\s*\S+|\s+", text) if text else []


def _fragments(text: str, size: int = 9) -> list[str]:
    return [""] + [text[i:i + size] for i in range(0, len(text), size)]  # the first is "", as real


@dataclass
class _Answer:
    thinking: list[str]
    text: list[str]
    calls: list[dict[str, Any]]
    stop_reason: str
    stop_sequence: str | None
    usage: dict[str, int]

    def output_tokens(self) -> int:
        return len(self.thinking) + len(self.text) + 12 * len(self.calls)


def _answer(fake: FakeAnthropic, body: dict[str, Any]) -> _Answer:
    thinks = (body.get("thinking") or {}).get("type") in ("enabled", "adaptive")
    thinking = _tokens(fake.thinking) if thinks else []
    text, stop_reason, stop_sequence = fake.reply, "end_turn", None
    hits = [(text.find(s), s) for s in body.get("stop_sequences") or [] if s and s in text]
    if hits:
        at, stop_sequence = min(hits)
        text, stop_reason = text[:at], "stop_sequence"
    tokens = _tokens(text)
    room = body["max_tokens"] - len(thinking)
    calls: list[dict[str, Any]] = []
    if len(tokens) > room:
        tokens, stop_reason, stop_sequence = tokens[:max(room, 0)], "max_tokens", None
    elif stop_reason == "end_turn" and body.get("tools") and fake.tool_calls and \
            (body.get("tool_choice") or {}).get("type") != "none":
        calls = [{"type": "tool_use", "id": f"toolu_01{uuid.uuid4().hex[:22]}",
                  "name": call["name"], "input": call.get("input", {})}
                 for call in fake.tool_calls]
        stop_reason = "tool_use"
    prompt = _words(body.get("system")) + _words(body["messages"]) + _words(body.get("tools")) + 8
    cached = min(fake.cache_read_tokens, prompt)
    created = min(fake.cache_creation_tokens, prompt - cached)
    usage = {"input_tokens": prompt - cached - created, "cache_creation_input_tokens": created,
             "cache_read_input_tokens": cached, "output_tokens": 0}
    answer = _Answer(thinking, tokens, calls, stop_reason, stop_sequence, usage)
    usage["output_tokens"] = answer.output_tokens()
    return answer


def _content(answer: _Answer) -> list[dict[str, Any]]:
    content: list[dict[str, Any]] = []
    if answer.thinking:
        content.append({"type": "thinking", "thinking": "".join(answer.thinking),
                        "signature": SIGNATURE})
    if answer.text:
        content.append({"type": "text", "text": "".join(answer.text)})
    return content + answer.calls


def _message(body: dict[str, Any], answer: _Answer, msg_id: str) -> dict[str, Any]:
    return {"id": msg_id, "type": "message", "role": "assistant", "model": body["model"],
            "content": _content(answer), "stop_reason": answer.stop_reason,
            "stop_sequence": answer.stop_sequence,
            "usage": {**answer.usage, "service_tier": "standard"}}


def _block_events(index: int, block: dict[str, Any], answer: _Answer) -> list[dict[str, Any]]:
    kind = block["type"]
    start: dict[str, Any]
    deltas: list[dict[str, Any]]
    if kind == "thinking":
        start = {"type": "thinking", "thinking": "", "signature": ""}
        deltas = [{"type": "thinking_delta", "thinking": t} for t in answer.thinking]
        deltas.append({"type": "signature_delta", "signature": SIGNATURE})
    elif kind == "text":
        start = {"type": "text", "text": ""}
        deltas = [{"type": "text_delta", "text": t} for t in answer.text]
    else:
        start = {**block, "input": {}}
        deltas = [{"type": "input_json_delta", "partial_json": part}
                  for part in _fragments(json.dumps(block["input"]))]
    return ([{"type": "content_block_start", "index": index, "content_block": start}]
            + [{"type": "content_block_delta", "index": index, "delta": d} for d in deltas]
            + [{"type": "content_block_stop", "index": index}])


def _stream_events(fake: FakeAnthropic, body: dict[str, Any], answer: _Answer,
                   msg_id: str) -> list[dict[str, Any]]:
    start = {**_message(body, answer, msg_id), "content": [], "stop_reason": None,
             "stop_sequence": None}
    start["usage"] = {**start["usage"], "output_tokens": 1}
    events: list[dict[str, Any]] = [{"type": "message_start", "message": start}, {"type": "ping"}]
    if fake.unknown_events:
        events.append({"type": "message_annotation_v2", "annotation": {"kind": "from-the-future"}})
    for index, block in enumerate(_content(answer)):
        events += _block_events(index, block, answer)
        if index == 0:
            events.append({"type": "ping"})
    usage = ({"output_tokens": answer.usage["output_tokens"]} if fake.delta_usage_output_only
             else dict(answer.usage))
    events.append({"type": "message_delta", "delta": {"stop_reason": answer.stop_reason,
                                                      "stop_sequence": answer.stop_sequence},
                   "usage": usage})
    events.append({"type": "message_stop"})
    return events


# --- HTTP ---------------------------------------------------------------------------------------


class _Abort(Exception):
    """The scripted failure closes the connection; nothing more is written."""


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "anthropic-fake"

    @property
    def fake(self) -> FakeAnthropic:
        return self.server.fake  # type: ignore[attr-defined]

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _send_json(self, status: int, payload: Any) -> None:
        raw = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("request-id", f"req_01{uuid.uuid4().hex[:22]}")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.fake.sent.append(raw)  # before it goes out: a client that has it finds it here
        self.wfile.write(raw)

    def _refuse(self, refused: Refused) -> None:
        self._send_json(refused.status, {"type": "error", "error": {
            "type": refused.kind, "message": refused.message},
            "request_id": f"req_01{uuid.uuid4().hex[:22]}"})

    def _record(self, body: Any, raw: bytes = b"") -> None:
        headers = {name.lower(): value for name, value in self.headers.items()}
        self.fake.requests.append(Recorded(self.command, self.path, headers, body, raw))

    def _check_headers(self) -> None:
        # The API takes the key either way: x-api-key (litellm, Claude Code, this gateway) or
        # Authorization: Bearer (the official SDKs since 2.x, protocols.md §0.1).
        bearer = self.headers.get("authorization", "").removeprefix("Bearer ")
        if self.fake.api_key not in (self.headers.get("x-api-key"), bearer):
            raise Refused(401, "authentication_error", "invalid x-api-key")
        if not self.headers.get("anthropic-version"):
            raise _bad("anthropic-version: header is required")
        for secret in self.fake.refused_secrets:
            if any(secret in value for value in self.headers.values()):
                raise Refused(401, "authentication_error", "a foreign credential was sent")
        betas = [b.strip() for b in self.headers.get("anthropic-beta", "").split(",")]
        if self.fake.required_beta and self.fake.required_beta not in betas:
            raise _bad(f"this request needs the anthropic-beta {self.fake.required_beta}")

    def do_GET(self) -> None:
        self._record(None)
        url = urlsplit(self.path)
        try:
            self._check_headers()
            if url.path != "/v1/models":
                raise Refused(404, "not_found_error", "Not found")
        except Refused as refused:
            return self._refuse(refused)
        query = parse_qs(url.query)
        limit = min(int(query.get("limit", ["20"])[0]), self.fake.max_page)
        ids = self.fake.models
        after = query.get("after_id", [None])[0]
        if after in ids:
            ids = ids[ids.index(after) + 1:]
        page = [{"type": "model", "id": i, "display_name": i.replace("-", " ").title(),
                 "created_at": "2025-09-29T00:00:00Z", "max_input_tokens": 200000,
                 "max_tokens": 64000} for i in ids[:limit]]
        self._send_json(200, {"data": page, "has_more": len(ids) > limit,
                              "first_id": page[0]["id"] if page else None,
                              "last_id": page[-1]["id"] if page else None})

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            body = json.loads(raw)
        except ValueError:
            body = None
        self._record(body, raw)
        try:
            self._check_headers()
            if not isinstance(body, dict):
                raise _bad("There was an issue with your request body: not valid JSON")
            if self.path == "/v1/messages/count_tokens":
                return self._count_tokens(body)
            if self.path != "/v1/messages":
                raise Refused(404, "not_found_error", "Not found")
            self._messages(body)
        except Refused as refused:
            self._refuse(refused)

    def _validate(self, body: dict[str, Any], allowed: set[str]) -> None:
        _check_fields(body, allowed)
        _check_messages(body["messages"])
        _check_options(body)
        if body["model"] not in self.fake.models:
            raise Refused(404, "not_found_error", f"model: {body['model']}")

    def _count_tokens(self, body: dict[str, Any]) -> None:
        self._validate(body, COUNT_FIELDS)
        prompt = _words(body.get("system")) + _words(body["messages"]) + _words(body.get("tools"))
        self._send_json(200, {"input_tokens": prompt + 8})

    def _messages(self, body: dict[str, Any]) -> None:
        self._validate(body, MESSAGE_FIELDS)
        max_tokens = body.get("max_tokens")
        if isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 1:
            raise _bad("max_tokens: Field required")
        fake = self.fake
        if fake.fail_status:
            raise Refused(fake.fail_status, fake.fail_kind, fake.fail_message)
        answer = _answer(fake, body)
        msg_id = f"msg_01{uuid.uuid4().hex[:22]}"
        if not body.get("stream"):
            return self._send_json(200, _message(body, answer, msg_id))
        self._stream(_stream_events(fake, body, answer, msg_id))

    def _stream(self, events: list[dict[str, Any]]) -> None:
        fake = self.fake
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream; charset=utf-8")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("request-id", f"req_01{uuid.uuid4().hex[:22]}")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        # Recorded before each frame goes out: a client that has read a frame finds it here, even
        # when the gateway hangs up before the stream's last chunk.
        written = bytearray()
        fake.sent.append(written)
        try:
            if fake.first_delay:
                self.wfile.flush()
                time.sleep(fake.first_delay)
            for sent, event in enumerate(events):
                if sent and fake.token_delay:
                    time.sleep(fake.token_delay)
                if sent == fake.die_after:
                    raise _Abort
                if sent == fake.error_after:
                    event = {"type": "error", "error": {"type": fake.fail_kind,
                                                        "message": fake.fail_message}}
                frame = f"event: {event['type']}\ndata: {json.dumps(event)}\n\n".encode()
                written += frame
                self.wfile.write(b"%x\r\n%s\r\n" % (len(frame), frame))
                self.wfile.flush()
                if event["type"] == "error":
                    break
            self.wfile.write(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            fake.client_disconnected.set()
            self.close_connection = True
        except _Abort:
            self.close_connection = True
