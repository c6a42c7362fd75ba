"""A small HTTP/1.1 client for engines at plain http:// endpoints: keep-alive connections pooled
per event loop, Content-Length and chunked bodies, a connect timeout and a per-read timeout.

Engines sit next to the gateway (llama-server, vLLM, Ollama on the same host or network), so the
client's own cost is most of what a request adds; this one costs a fraction of a general-purpose
client's. https:// endpoints (hosted vendors) keep using httpx (gateway/http.py)."""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import AsyncIterator, Mapping
from urllib.parse import urlsplit

MAX_IDLE_PER_HOST = 100
MAX_HEAD = 64 * 1024


class TransportError(Exception):
    """The engine could not be reached, answered too slowly, or broke the exchange."""


class ConnectFailed(TransportError):
    pass


class ReadTimeout(TransportError):
    pass


class ConnectionBroken(TransportError):
    pass


class _Conn:
    __slots__ = ("reader", "writer")

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    def usable(self) -> bool:
        return not self.reader.at_eof() and not self.writer.is_closing()

    def abort(self) -> None:
        self.writer.transport.abort()


class _Pool:
    def __init__(self) -> None:
        self.idle: dict[tuple[str, int], list[_Conn]] = {}

    def take(self, key: tuple[str, int]) -> _Conn | None:
        idle = self.idle.get(key)
        while idle:
            conn = idle.pop()
            if conn.usable():
                return conn
            conn.abort()
        return None

    def give(self, key: tuple[str, int], conn: _Conn) -> None:
        idle = self.idle.setdefault(key, [])
        if len(idle) < MAX_IDLE_PER_HOST and conn.usable():
            idle.append(conn)
        else:
            conn.abort()

    def close(self) -> None:
        for idle in self.idle.values():
            for conn in idle:
                conn.abort()
        self.idle.clear()


_pools: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Pool] = weakref.WeakKeyDictionary()
_targets: dict[str, tuple[str, int, str, str]] = {}


def _pool() -> _Pool:
    loop = asyncio.get_running_loop()
    pool = _pools.get(loop)
    if pool is None:
        pool = _pools[loop] = _Pool()
    return pool


def close_idle() -> None:
    """Closes this loop's idle connections (tests end loops; the pool goes with its loop)."""
    _pool().close()


def _target(url: str) -> tuple[str, int, str, str]:
    """(host, port, path with query, Host header) of an http:// URL, cached per URL."""
    found = _targets.get(url)
    if found is None:
        parts = urlsplit(url)
        host, port = parts.hostname or "", parts.port or 80
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        netloc = f"[{host}]" if ":" in host else host
        found = (host, port, path, netloc if port == 80 else f"{netloc}:{port}")
        if len(_targets) < 10_000:
            _targets[url] = found
    return found


class Response:
    """An answer whose body is read with `read()` or `lines()`; `close()` gives the connection
    back when the body was read to its end, and drops it otherwise."""

    def __init__(self, status: int, headers: dict[str, str], conn: _Conn, pool: _Pool,
                 key: tuple[str, int], read_timeout: float | None, *, chunked: bool,
                 length: int | None, keep_alive: bool) -> None:
        self.status_code = status
        self._pool = pool
        self.headers = headers
        self._conn: _Conn | None = conn
        self._key = key
        self._timeout = read_timeout
        self._chunked = chunked
        self._left = length  # bytes of a Content-Length body still unread; None: until close
        self._keep_alive = keep_alive
        self._done = length == 0
        # The read timeout: one timer per response, re-armed lazily (a stream reads once or
        # twice per token; a timer per read costs more than the rest of the read).
        self._loop = asyncio.get_running_loop()
        self._deadline = 0.0
        self._timer: asyncio.TimerHandle | None = None
        self._reader_task: asyncio.Task | None = None
        self._expired = False

    def _expire(self) -> None:
        self._timer = None
        task = self._reader_task
        if task is None:
            return  # not reading now: the next read arms the timer again
        if self._loop.time() < self._deadline:
            self._timer = self._loop.call_at(self._deadline, self._expire)
            return
        self._expired = True
        task.cancel()

    async def _read(self, reading):
        if self._timeout is not None:
            self._deadline = self._loop.time() + self._timeout
            if self._timer is None:
                self._timer = self._loop.call_at(self._deadline, self._expire)
            self._reader_task = asyncio.current_task()
        try:
            return await reading
        except asyncio.CancelledError:
            if not self._expired:
                raise
            self._expired = False
            if self._reader_task is not None:
                self._reader_task.uncancel()
            raise ReadTimeout(f"no data within {self._timeout:g} s") from None
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, OSError, ValueError) as exc:
            raise ConnectionBroken(type(exc).__name__) from exc
        finally:
            self._reader_task = None

    async def chunks(self) -> AsyncIterator[bytes]:
        conn = self._conn
        if conn is None or self._done:
            return
        reader = conn.reader
        if self._chunked:
            while True:
                line = await self._read(reader.readuntil(b"\r\n"))
                try:
                    size = int(line.split(b";", 1)[0], 16)
                except ValueError:
                    raise ConnectionBroken("a malformed chunk size") from None
                if size == 0:
                    while (await self._read(reader.readuntil(b"\r\n"))) != b"\r\n":
                        pass  # trailers
                    self._done = True
                    return
                data = await self._read(reader.readexactly(size + 2))
                yield data[:-2]
        elif self._left is not None:
            while self._left > 0:
                data = await self._read(reader.read(min(self._left, 65536)))
                if not data:
                    raise ConnectionBroken("the body ended early")
                self._left -= len(data)
                yield data
            self._done = True
        else:  # no length given: the body runs until the engine closes the connection
            while data := await self._read(reader.read(65536)):
                yield data
            self._keep_alive = False
            self._done = True

    async def read(self) -> bytes:
        try:
            if not self._chunked and self._left is not None and self._conn is not None:
                body = await self._read(self._conn.reader.readexactly(self._left)) if self._left else b""
                self._left, self._done = 0, True
                return body
            return b"".join([chunk async for chunk in self.chunks()])
        finally:
            self.close()

    async def lines(self) -> AsyncIterator[str]:
        """Non-empty lines of the body, decoded, as they arrive."""
        pending = b""
        async for chunk in self.chunks():
            pending += chunk
            if b"\n" not in pending:
                continue
            *complete, pending = pending.split(b"\n")
            for line in complete:
                line = line.rstrip(b"\r")
                if line:
                    yield line.decode("utf-8", "replace")
        if pending.strip():
            yield pending.rstrip(b"\r").decode("utf-8", "replace")

    def _rest_is_here(self, conn: _Conn) -> bool:
        """True when the rest of a chunked body already sits in the read buffer, as it does when
        an SSE consumer stops at `data: [DONE]`, a moment before the body's last chunk: it is
        skipped, and the connection kept."""
        buffer = getattr(conn.reader, "_buffer", None)  # asyncio.StreamReader's, since 3.4
        if not self._chunked or not isinstance(buffer, bytearray):
            return False
        at = 0
        while True:
            end = buffer.find(b"\r\n", at)
            if end < 0:
                return False
            try:
                size = int(buffer[at:end].split(b";", 1)[0], 16)
            except ValueError:
                return False
            if size == 0:
                if buffer[end + 2:] != b"\r\n":  # trailers, or more than this body
                    return False
                buffer.clear()
                return True
            at = end + 2 + size + 2

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        conn, self._conn = self._conn, None
        if conn is None:
            return
        if not self._done and self._keep_alive and self._rest_is_here(conn):
            self._done = True
        if self._done and self._keep_alive:
            self._pool.give(self._key, conn)
        else:
            conn.abort()


def _head(method: str, path: str, host: str, headers: Mapping[str, str], length: int) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", f"host: {host}", "user-agent: flock",
             "accept: */*"]
    if length or method in ("POST", "PUT", "PATCH"):
        lines.append(f"content-length: {length}")
    for name, value in headers.items():
        if "\r" in value or "\n" in value or "\r" in name or "\n" in name:
            continue  # never lets a header value start a header of its own
        lines.append(f"{name}: {value}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1", "replace")


def _parse_head(raw: bytes) -> tuple[int, str, dict[str, str]]:
    text = raw.decode("latin-1")
    status_line, _, rest = text.partition("\r\n")
    version, _, status = status_line.partition(" ")
    if not version.startswith("HTTP/1."):
        raise ConnectionBroken("the engine did not answer in HTTP/1.x")
    headers: dict[str, str] = {}
    for line in rest.split("\r\n"):
        name, sep, value = line.partition(":")
        if sep:
            headers[name.strip().lower()] = value.strip()
    return int(status[:3]), version, headers


async def _connect(key: tuple[str, int], timeout: float | None) -> _Conn:
    try:
        if timeout is None:
            reader, writer = await asyncio.open_connection(*key, limit=MAX_HEAD)
        else:
            async with asyncio.timeout(timeout):
                reader, writer = await asyncio.open_connection(*key, limit=MAX_HEAD)
    except TimeoutError:
        raise ConnectFailed("ConnectTimeout") from None  # the names httpx gives them
    except OSError as exc:
        raise ConnectFailed("ConnectError") from exc
    return _Conn(reader, writer)


async def request(method: str, url: str, *, headers: Mapping[str, str], body: bytes = b"",
                  connect_timeout: float | None, read_timeout: float | None) -> Response:
    """Sends one request and reads the answer's head; the body is read from the Response."""
    host, port, path, host_header = _target(url)
    key = (host, port)
    data = _head(method, path, host_header, headers, len(body)) + body
    pool = _pool()
    conn = pool.take(key)
    reused = conn is not None
    while True:
        if conn is None:
            conn = await _connect(key, connect_timeout)
        try:
            conn.writer.write(data)
            if conn.writer.transport.get_write_buffer_size() > 65536:
                await conn.writer.drain()
            reading = conn.reader.readuntil(b"\r\n\r\n")
            if read_timeout is None:
                raw = await reading
            else:
                async with asyncio.timeout(read_timeout):
                    raw = await reading
        except TimeoutError:
            conn.abort()
            raise ReadTimeout(f"no answer within {read_timeout:g} s") from None
        except (asyncio.IncompleteReadError, OSError) as exc:
            conn.abort()
            partial = getattr(exc, "partial", b"")
            if reused and not partial:  # a kept-alive connection the engine had closed: once more
                conn, reused = None, False
                continue
            raise ConnectionBroken(type(exc).__name__) from exc
        except asyncio.LimitOverrunError as exc:
            conn.abort()
            raise ConnectionBroken("the answer's head is too large") from exc
        except BaseException:
            conn.abort()
            raise
        break
    try:
        status, version, head = _parse_head(raw)
    except (ValueError, ConnectionBroken) as exc:
        conn.abort()
        raise ConnectionBroken(f"a malformed answer ({exc})") from None
    keep_alive = head.get("connection", "").lower() != "close" and (
        version != "HTTP/1.0" or head.get("connection", "").lower() == "keep-alive")
    chunked = "chunked" in head.get("transfer-encoding", "").lower()
    length: int | None = None
    if method == "HEAD" or status in (204, 304) or 100 <= status < 200:
        length = 0
    elif not chunked and "content-length" in head:
        try:
            length = int(head["content-length"])
        except ValueError:
            conn.abort()
            raise ConnectionBroken("a malformed Content-Length") from None
    return Response(status, head, conn, pool, key, read_timeout, chunked=chunked, length=length,
                    keep_alive=keep_alive)
