"""The ASGI server the gateway runs under: uvicorn with uvloop and httptools (bench/results:
about half daphne's CPU per request), websockets for the dashboard's live updates.

Headers and addresses as daphne gave them: no Server or extra Date header (the API's middleware
sets Date), and the peer address is the connection's, not a forwarded header's."""

from __future__ import annotations

import sys

NAME = "uvicorn"
APPLICATION = "flocksite.asgi:application"
HTTP = "cluster.http_protocol:OneWriteProtocol"  # httptools, a whole answer in one write


def gateway_argv(*, host: str | None = None, port: int | None = None, fd: int | None = None,
                 application: str = APPLICATION) -> list[str]:
    argv = [sys.executable, "-m", "uvicorn", "--loop", "uvloop", "--http", HTTP,
            "--ws", "websockets", "--lifespan", "off", "--no-access-log", "--log-level", "warning",
            "--no-server-header", "--no-date-header", "--no-proxy-headers",
            "--timeout-graceful-shutdown", "5"]
    if fd is not None:
        argv += ["--fd", str(fd)]
    else:
        argv += ["--host", host or "127.0.0.1", "--port", str(port)]
    return [*argv, application]
