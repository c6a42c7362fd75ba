"""A stand-in for rpc-server in supervisor tests: takes rpc-server's -H/-p, accepts TCP
connections, and with --exit-after exits with --exit-code that many seconds after it is up
(a process that keeps crashing)."""

from __future__ import annotations

import argparse
import socket
import sys
import threading
import time


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("-H", "--host", default="127.0.0.1")
    parser.add_argument("-p", "--port", type=int, required=True)
    parser.add_argument("-t", "--threads", type=int, default=1)
    parser.add_argument("--exit-after", type=float, default=None)
    parser.add_argument("--exit-code", type=int, default=3)
    args = parser.parse_args()
    server = socket.socket()
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind((args.host, args.port))
    server.listen(16)
    print(f"fake rpc-server listening on {args.host}:{args.port}", flush=True)

    def accept() -> None:
        while True:
            conn, _ = server.accept()
            conn.close()

    threading.Thread(target=accept, daemon=True).start()
    if args.exit_after is None:
        while True:
            time.sleep(3600)
    time.sleep(args.exit_after)
    print(f"fake rpc-server crashing with exit code {args.exit_code}", flush=True)
    return args.exit_code


if __name__ == "__main__":
    sys.exit(main())
