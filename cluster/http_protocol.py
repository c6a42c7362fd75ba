"""uvicorn's httptools protocol, sending a whole response in one write.

uvicorn writes a response's status line and headers when the app sends `http.response.start`,
and its body when the app sends `http.response.body`: two send() system calls, and two packets
the client wakes up for, per answer. For a response whose length is known up front (a
Content-Length header: every non-streamed answer of the API, flocksite/api_handler.py), the
headers are held until the body comes and both leave in one write. Streams are untouched: their
headers go out at once, before the first token."""

from __future__ import annotations

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol, RequestResponseCycle


class _Gathered:
    """Stands in for the transport while uvicorn writes one response."""

    __slots__ = ("chunks", "closed")

    def __init__(self) -> None:
        self.chunks: list[bytes] = []
        self.closed = False

    def write(self, data: bytes) -> None:
        self.chunks.append(data)

    def close(self) -> None:
        self.closed = True


def _has_length(headers) -> bool:
    return any(name.lower() == b"content-length" for name, _ in headers)


class OneWriteCycle(RequestResponseCycle):
    _held: dict | None = None

    async def send(self, message) -> None:
        if (message["type"] == "http.response.start" and not self.response_started
                and not self.disconnected and _has_length(message.get("headers", ()))):
            self._held = message
            return
        held, self._held = self._held, None
        if held is None or message["type"] != "http.response.body" or message.get("more_body"):
            if held is not None:
                await super().send(held)
            await super().send(message)
            return
        transport, gathered = self.transport, _Gathered()
        self.transport = gathered
        try:
            await super().send(held)
            await super().send(message)
        finally:
            self.transport = transport
        if gathered.chunks:
            transport.write(b"".join(gathered.chunks))
        if gathered.closed:
            transport.close()


class OneWriteProtocol(HttpToolsProtocol):
    def on_headers_complete(self) -> None:
        super().on_headers_complete()
        if type(self.cycle) is RequestResponseCycle:
            self.cycle.__class__ = OneWriteCycle
