"""The HTTP/1.1 client for http:// engines, against a raw server on 127.0.0.1 that answers the way
real engines' servers do (Content-Length, chunked, closing) and misbehaves on request."""

from __future__ import annotations

import asyncio
import contextlib

import pytest

from gateway.engines import http11
from gateway.engines.base import Engine
from gateway.engines.registry import make_engine
from gateway.engines.transport import request_json, stream_lines
from gateway.errors import EngineFailed, EngineTimeout, EngineUnreachable


class RawServer:
    """Answers each request on a connection with `script(path, body)`'s raw bytes, or
    None to hang up without a word; counts connections and requests. `close_idle` closes each
    connection after its answer without saying so (an idle timeout)."""

    def __init__(self, script, *, close_idle: bool = False) -> None:
        self.script = script
        self.close_idle = close_idle
        self.connections = 0
        self.requests: list[tuple[str, dict[str, str], bytes]] = []

    async def __aenter__(self) -> RawServer:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.url = f"http://127.0.0.1:{self.server.sockets[0].getsockname()[1]}"
        return self

    async def __aexit__(self, *exc) -> None:
        self.server.close()
        http11.close_idle()

    async def _serve(self, reader, writer) -> None:
        self.connections += 1
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                line, *rest = head.decode().split("\r\n")
                headers = {k.lower(): v.strip() for k, _, v in (h.partition(":") for h in rest if h)}
                body = await reader.readexactly(int(headers.get("content-length", 0)))
                self.requests.append((line, headers, body))
                answer = await self.script(line.split()[1], body)
                if answer is None:
                    break
                writer.write(answer)
                await writer.drain()
                if self.close_idle:
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


def _json(body: bytes, *extra: str) -> bytes:
    head = "\r\n".join(["HTTP/1.1 200 OK", "content-type: application/json",
                        f"content-length: {len(body)}", *extra])
    return head.encode() + b"\r\n\r\n" + body


def _chunked(*pieces: bytes) -> bytes:
    out = b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n"
    for piece in pieces:
        out += f"{len(piece):x}\r\n".encode() + piece + b"\r\n"
    return out + b"0\r\n\r\n"


def _engine(url: str) -> Engine:
    return make_engine("vllm", url, api_key="sk-engine", timeout=600, connect_timeout=5)


def test_requests_share_one_kept_alive_connection_and_carry_json_and_auth() -> None:
    async def script(path, body):
        return _json(b'{"echo": %s}' % body)

    async def main():
        async with RawServer(script) as server:
            engine = _engine(server.url)
            for n in range(3):
                assert await request_json(engine, "POST", "/v1/x", {"n": n, "s": "é"}) == {
                    "echo": {"n": n, "s": "é"}}
            assert server.connections == 1
            line, headers, _ = server.requests[0]
            assert line == "POST /v1/x HTTP/1.1"
            assert headers["content-type"] == "application/json"
            assert headers["host"] == server.url.removeprefix("http://")
            assert headers["authorization"] == "Bearer sk-engine"

    asyncio.run(main())


def test_a_connection_the_engine_closed_while_idle_is_replaced_transparently() -> None:
    async def script(path, body):
        return _json(b'{"ok": 1}')

    async def main():
        async with RawServer(script, close_idle=True) as server:
            engine = _engine(server.url)
            assert await request_json(engine, "GET", "/one") == {"ok": 1}
            assert await request_json(engine, "GET", "/two") == {"ok": 1}  # closed under it
            await asyncio.sleep(0.05)
            assert await request_json(engine, "GET", "/three") == {"ok": 1}
            assert server.connections == 3 and len(server.requests) == 3

    asyncio.run(main())


def test_chunked_streams_come_out_as_lines_split_anywhere() -> None:
    async def script(path, body):
        return _chunked(b"data: {\"a\"", b": 1}\n\ndata: [DO", b"NE]\r\n\r\n")

    async def main():
        async with RawServer(script) as server:
            engine = _engine(server.url)
            lines = [line async for line in stream_lines(engine, "/v1/s", {"stream": True})]
            assert lines == ['data: {"a": 1}', "data: [DONE]"]
            lines = [line async for line in stream_lines(engine, "/v1/s", {"stream": True})]
            assert len(lines) == 2 and server.connections == 1  # read to the end: kept

    asyncio.run(main())


def test_a_stream_left_at_its_done_line_keeps_its_connection() -> None:
    async def script(path, body):
        return _chunked(b"data: 1\n\n", b"data: [DONE]\n\n")

    async def main():
        async with RawServer(script) as server:
            engine = _engine(server.url)
            for _ in range(3):
                async with contextlib.aclosing(stream_lines(engine, "/v1/s", {})) as lines:
                    async for line in lines:
                        if line == "data: [DONE]":
                            break  # as the drivers do, before the body's last chunk is read
            assert server.connections == 1 and len(server.requests) == 3

    asyncio.run(main())


def test_a_stream_closed_early_drops_its_connection() -> None:
    async def script(path, body):
        if path == "/v1/s":  # still generating: the body's last chunk has not come
            return _chunked(*[b"data: x\n\n"] * 5).removesuffix(b"0\r\n\r\n")
        return _chunked(b"data: y\n\n")

    async def main():
        async with RawServer(script) as server:
            engine = _engine(server.url)
            lines = stream_lines(engine, "/v1/s", {})
            assert await lines.__anext__() == "data: x"
            await lines.aclose()
            assert [line async for line in stream_lines(engine, "/v1/t", {})] == ["data: y"]
            assert server.connections == 2

    asyncio.run(main())


def test_failures_map_to_the_gateway_errors() -> None:
    async def main():
        with pytest.raises(EngineUnreachable):
            await request_json(_engine("http://127.0.0.1:9"), "GET", "/v1/models")

        async def slow(path, body):
            await asyncio.sleep(5)
            return _json(b"{}")

        async with RawServer(slow) as server:
            with pytest.raises(EngineTimeout):
                await request_json(_engine(server.url), "GET", "/v1/models", timeout=0.2)

        async def truncated(path, body):
            return b"HTTP/1.1 200 OK\r\ncontent-length: 50\r\n\r\n{\"a\": 1" if path == "/short" \
                else None

        async with RawServer(truncated, close_idle=True) as server:
            with pytest.raises(EngineFailed):
                await request_json(_engine(server.url), "GET", "/short")
            with pytest.raises(EngineFailed):
                await request_json(_engine(server.url), "GET", "/hangup")

        async def refused(path, body):
            error = b'{"error": {"message": "oom"}}'
            return b"HTTP/1.1 500 Internal Server Error\r\ncontent-length: %d\r\n\r\n%s" % (
                len(error), error)

        async with RawServer(refused) as server:
            with pytest.raises(EngineFailed, match="oom"):
                await request_json(_engine(server.url), "POST", "/v1/chat/completions", {})

    asyncio.run(main())


def test_a_stream_that_stalls_mid_way_times_out_between_reads() -> None:
    async def script(path, body):
        return _chunked(b"data: 1\n\n").removesuffix(b"0\r\n\r\n")  # then nothing more

    async def main():
        async with RawServer(script) as server:
            engine = make_engine("vllm", server.url, api_key="", timeout=0.3, connect_timeout=5)
            seen = []
            with pytest.raises(EngineTimeout):
                async for line in stream_lines(engine, "/v1/s", {}):
                    seen.append(line)
                    await asyncio.sleep(0.4)  # slower than the timeout, but not reading then
            assert seen == ["data: 1"]

    asyncio.run(main())


def test_a_header_value_cannot_start_a_header_of_its_own() -> None:
    head = http11._head("GET", "/", "h", {"traceparent": "x\r\nx-evil: 1", "ok": "1"}, 0)
    assert b"x-evil" not in head and b"ok: 1" in head
