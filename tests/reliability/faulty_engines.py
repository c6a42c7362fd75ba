"""Engines that fail the way real ones do: a hung one (accepts, lists its models, and never
answers a generation), one answering garbage, and a dead port. Plus the two counts that tell a
leak: the gateway's asyncio tasks and its open connections to an engine."""

from __future__ import annotations

import asyncio
import socket
import threading
from http.server import ThreadingHTTPServer

import psutil

from tests.fakes.openai_server import FakeOpenAIEngine, _Handler


class HungEngine(FakeOpenAIEngine):
    """Lists its models, then holds every generation request open, answering nothing."""

    def __init__(self) -> None:
        super().__init__()
        self.held = 0
        self.release = threading.Event()

    def start(self) -> HungEngine:
        engine = self

        class Handler(_Handler):
            fake = engine

            def do_POST(self) -> None:
                engine.held += 1
                engine.release.wait(120)
                self.close_connection = True

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        self.release.set()
        super().stop()


class GarbageEngine(FakeOpenAIEngine):
    """Lists its models, then answers generations with 200 and bytes that are not the API."""

    def start(self) -> GarbageEngine:
        engine = self

        class Handler(_Handler):
            fake = engine

            def do_POST(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                stream = b'"stream": true' in self.rfile.read(length)
                body = (b"data: {not json at all\n\ndata: \x00\xff\xfe\n\n" if stream
                        else b"<html>\x00\xff{{{ not json")
                self.send_response(200)
                self.send_header("content-type", "text/event-stream" if stream else "application/json")
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self


def dead_endpoint() -> str:
    """An address where nothing listens (a killed engine)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def connections_to(url: str) -> int:
    """Open TCP connections from this process to `url`'s port (the gateway's side of them)."""
    port = int(url.rsplit(":", 1)[1])
    return sum(1 for c in psutil.Process().net_connections(kind="tcp")
               if c.raddr and c.raddr.port == port and c.status == psutil.CONN_ESTABLISHED)


def gateway_tasks(server) -> int:
    """asyncio tasks alive in the in-process gateway's event loop."""
    loop = server.server.servers[0].get_loop()

    async def count() -> int:
        return len(asyncio.all_tasks())

    return asyncio.run_coroutine_threadsafe(count(), loop).result(10)
