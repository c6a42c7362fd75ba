"""Runs FakeOpenAIEngine as a process of its own, for tests whose engine must live somewhere the
test process is not (inside another network namespace):

    python -m tests.fakes.serve_openai --port 8000 --models a,b --text "from worker-a"

It prints `ready <port>` once it listens and serves until killed."""

from __future__ import annotations

import argparse
import signal
import socket
import sys
import threading
import time
from http.server import ThreadingHTTPServer

from tests.fakes.openai_server import FakeOpenAIEngine, _Handler


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--models", default="fake-model")
    parser.add_argument("--text", default="Hello from the fake engine")
    parser.add_argument("--token-delay", type=float, default=0.0)
    parser.add_argument("--reply-delay", type=float, default=0.0,
                        help="seconds every POST waits before answering (a busy engine)")
    args = parser.parse_args(argv)

    engine = FakeOpenAIEngine()
    engine.script.models = [m for m in args.models.split(",") if m]
    engine.script.text = args.text
    engine.script.token_delay = args.token_delay

    class Handler(_Handler):
        fake = engine

        def setup(self) -> None:
            super().setup()
            # Like real engines' servers (uvicorn, llama-server): no Nagle delay between the
            # header and body writes, so latencies measured through it are the gateway's.
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

        def do_POST(self) -> None:
            if args.reply_delay:
                time.sleep(args.reply_delay)
            super().do_POST()

    server = ThreadingHTTPServer((args.host, args.port), Handler)
    server.daemon_threads = True
    engine._server = server
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown).start())
    print(f"ready {server.server_address[1]}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    sys.exit(0)


if __name__ == "__main__":
    main()
