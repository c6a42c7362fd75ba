"""A fast fake OpenAI-compatible engine: a raw asyncio HTTP/1.1 server with keep-alive, so that
the engine is never what a gateway benchmark measures.

Three models: `bench-fast` (no delay), `bench-stream` (streams at --stream-pace-ms per token)
and `bench-slow` (--slow-pace-ms per token). A request's `max_tokens` sets how many tokens the
answer has; every answer carries usage (in streams when `stream_options.include_usage` asks).

    python -m bench.engine --port 0    # prints "READY <port>" once it listens
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal

DEFAULT_TOKENS = 16
PROMPT_TOKENS = 9
CREATED = 1_700_000_000
MAX_MODEL_LEN = 32_768


def _json_response(status: str, body: object) -> bytes:
    data = json.dumps(body, separators=(",", ":")).encode()
    return (f"HTTP/1.1 {status}\r\ncontent-type: application/json\r\n"
            f"content-length: {len(data)}\r\n\r\n").encode() + data


def token(i: int) -> str:
    # Every token differs: LiteLLM's proxy ends a stream that repeats one chunk 100 times.
    return f" w{i}"


def _chunked(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


def _event(body: object) -> bytes:
    return b"data: " + json.dumps(body, separators=(",", ":")).encode() + b"\n\n"


STREAM_HEAD = (b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n"
               b"cache-control: no-cache\r\ntransfer-encoding: chunked\r\n\r\n")
STREAM_END = b"0\r\n\r\n"


class Answers:
    """Every response body the engine sends, rendered once and reused."""

    def __init__(self, paces: dict[str, float]) -> None:
        self.paces = paces
        self.models = _json_response("200 OK", {"object": "list", "data": [
            {"id": name, "object": "model", "created": CREATED, "owned_by": "bench",
             "max_model_len": MAX_MODEL_LEN} for name in paces]})
        self.health = _json_response("200 OK", {"status": "ok"})
        self.not_found = _json_response("404 Not Found", {"error": {
            "message": "not found", "type": "NotFoundError", "code": 404}})
        self._whole: dict[tuple[str, int], bytes] = {}
        self._first: dict[str, bytes] = {}
        self._tokens: dict[str, list[bytes]] = {}

    def whole(self, model: str, n: int) -> bytes:
        found = self._whole.get((model, n))
        if found is None:
            found = self._whole[(model, n)] = _json_response("200 OK", {
                "id": "chatcmpl-bench", "object": "chat.completion", "created": CREATED,
                "model": model, "choices": [{"index": 0, "message": {
                    "role": "assistant", "content": "".join(token(i) for i in range(n))},
                    "logprobs": None,
                    "finish_reason": "length"}],
                "usage": _usage(n)})
        return found

    def first(self, model: str) -> bytes:
        """The role chunk, then the first token, in one write (as vLLM sends them)."""
        found = self._first.get(model)
        if found is None:
            found = self._first[model] = _chunked(
                _event(_chunk(model, {"role": "assistant", "content": ""}))
                + _event(_chunk(model, {"content": token(0)})))
        return found

    def tokens(self, model: str, n: int) -> list[bytes]:
        """The chunks of tokens 0..n-1 (token 0 goes out in `first`)."""
        found = self._tokens.setdefault(model, [])
        while len(found) < n:
            found.append(_chunked(_event(_chunk(model, {"content": token(len(found))}))))
        return found

    def tail(self, model: str, n: int, include_usage: bool) -> bytes:
        data = _event(_chunk(model, {}, "length"))
        if include_usage:
            data += _event({"id": "chatcmpl-bench", "object": "chat.completion.chunk",
                            "created": CREATED, "model": model, "choices": [], "usage": _usage(n)})
        return _chunked(data + b"data: [DONE]\n\n") + STREAM_END


def _chunk(model: str, delta: dict, finish: str | None = None) -> dict:
    return {"id": "chatcmpl-bench", "object": "chat.completion.chunk", "created": CREATED,
            "model": model, "choices": [{"index": 0, "delta": delta, "logprobs": None,
                                         "finish_reason": finish}]}


def _usage(n: int) -> dict[str, int]:
    return {"prompt_tokens": PROMPT_TOKENS, "completion_tokens": n,
            "total_tokens": PROMPT_TOKENS + n}


class EngineProtocol(asyncio.Protocol):
    """One keep-alive connection; requests are answered in order, one at a time."""

    def __init__(self, answers: Answers) -> None:
        self.answers = answers
        self.buf = bytearray()
        self.busy = False  # a stream is being written; later requests wait in `buf`
        self.transport: asyncio.Transport | None = None
        self.stream_task: asyncio.Task | None = None

    def connection_made(self, transport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.buf += data
        if not self.busy:
            self._drain()

    def _drain(self) -> None:
        while not self.busy:
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                return
            lines = self.buf[:end].decode("latin-1").split("\r\n")
            method, path, _ = lines[0].split(" ", 2)
            length = 0
            for line in lines[1:]:
                name, _, value = line.partition(":")
                if name.strip().lower() == "content-length":
                    length = int(value)
            total = end + 4 + length
            if len(self.buf) < total:
                return
            body = bytes(self.buf[end + 4:total])
            del self.buf[:total]
            self._handle(method, path, body)

    def _handle(self, method: str, path: str, body: bytes) -> None:
        assert self.transport is not None
        answers = self.answers
        if method == "GET" and path in ("/v1/models", "/models"):
            self.transport.write(answers.models)
            return
        if method == "GET" and path == "/health":
            self.transport.write(answers.health)
            return
        if method != "POST" or path not in ("/v1/chat/completions", "/chat/completions"):
            self.transport.write(answers.not_found)
            return
        request = json.loads(body or b"{}")
        model = request.get("model")
        if model not in answers.paces:
            self.transport.write(answers.not_found)
            return
        n = max(1, int(request.get("max_tokens") or request.get("max_completion_tokens")
                       or DEFAULT_TOKENS))
        if not request.get("stream"):
            self.transport.write(answers.whole(model, n))
            return
        include_usage = bool((request.get("stream_options") or {}).get("include_usage"))
        self.busy = True
        # Held here so the task is not collected while it runs.
        self.stream_task = asyncio.get_running_loop().create_task(
            self._stream(model, n, include_usage))

    async def _stream(self, model: str, n: int, include_usage: bool) -> None:
        transport = self.transport
        assert transport is not None
        pace = self.answers.paces[model]
        tokens = self.answers.tokens(model, n)
        transport.write(STREAM_HEAD + self.answers.first(model))
        loop = asyncio.get_running_loop()
        start = loop.time()
        for i in range(1, n):
            if pace:
                # An absolute schedule, so that timer slack does not add up over the stream.
                wait = start + i * pace - loop.time()
                if wait > 0:
                    await asyncio.sleep(wait)
            elif i % 64 == 0:
                await asyncio.sleep(0)
            if transport.is_closing():
                return
            transport.write(tokens[i])
        transport.write(self.answers.tail(model, n, include_usage))
        self.busy = False
        self._drain()


async def serve(port: int, paces: dict[str, float]) -> None:
    loop = asyncio.get_running_loop()
    answers = Answers(paces)
    server = await loop.create_server(lambda: EngineProtocol(answers), "127.0.0.1", port,
                                      backlog=4096)
    stop = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    print(f"READY {server.sockets[0].getsockname()[1]}", flush=True)
    await stop.wait()
    server.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--stream-pace-ms", type=float, default=5.0)
    parser.add_argument("--slow-pace-ms", type=float, default=500.0)
    args = parser.parse_args()
    paces = {"bench-fast": 0.0, "bench-stream": args.stream_pace_ms / 1000,
             "bench-slow": args.slow_pace_ms / 1000}
    asyncio.run(serve(args.port, paces))


if __name__ == "__main__":
    main()
