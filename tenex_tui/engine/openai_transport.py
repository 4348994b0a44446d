"""A lean HTTP/1.1 transport for the SDK's client: asyncio protocol, no per-read layers.

The SDK's own stack reads every network chunk of a streamed reply through httpx2,
httpcore2, h11 and anyio: per read an anyio cancel scope, a pause and a resume of the
socket's reading (two `epoll_ctl` calls), h11's event machinery and four generator
layers. On a server streaming thousands of chunks a second that is the largest single
cost (`benchmarks`, server profile). `StreamingTransport` plugs into the SDK's own
client (`http_client=`) and keeps everything above the wire (auth, retries, status
errors, timeouts' meaning), but speaks HTTP/1.1 itself: an `asyncio.Protocol` appends
to a buffer, the body iterator decodes `Content-Length`, chunked or close-delimited
bodies straight from it and yields whatever arrived in one piece.

Scope, on purpose: plain HTTP/1.1 over TCP or TLS, keep-alive with a small idle pool
per origin. With a proxy configured (`HTTP_PROXY`, `HTTPS_PROXY`, `ALL_PROXY`) it is
not used at all: httpx2 ignores those variables once given a transport, so the SDK's
own client, which honours them, is kept. Errors are httpx2's, so
the SDK maps them as it maps its own: `ConnectError`/`ConnectTimeout` before the
response, `ReadTimeout`, `ReadError` and `RemoteProtocolError` after.
"""

from __future__ import annotations

import asyncio
import os
import ssl
import time
from collections.abc import AsyncIterator, Mapping
from typing import Any

import httpx2

from tenex_tui.engine.request_signal import request_sent

MAX_HEAD_BYTES = 64 * 1024
"""A response head larger than this is a protocol error."""
KEEPALIVE_SECONDS = 5.0
"""How long an idle connection is kept for reuse."""
MAX_IDLE_PER_ORIGIN = 64
"""Idle connections kept per origin (scheme, host, port)."""

Origin = tuple[str, str, int]


class _Connection(asyncio.Protocol):
    """One TCP (or TLS) connection: a receive buffer and a waiter for more."""

    def __init__(self) -> None:
        self.buffer = bytearray()
        self.transport: asyncio.Transport | None = None
        self.eof = False
        self.lost = False
        self.error: BaseException | None = None
        self.idle_since = 0.0
        self.nothing_received = True
        """No byte arrived since the connection was last taken from the pool."""
        self._waiter: asyncio.Future[None] | None = None

    # -- protocol callbacks -------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        self.nothing_received = False
        self._wake()

    def eof_received(self) -> bool:
        self.eof = True
        self._wake()
        return False  # Close our side too.

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        self.eof = True
        self.error = exc
        self._wake()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    # -- used by the transport ----------------------------------------------------

    @property
    def reusable(self) -> bool:
        """Open, quiet, with nothing unread: fit to carry another request."""
        return not self.eof and not self.lost and not self.buffer

    async def more(self, within: float | None, request: httpx2.Request) -> None:
        """Wait until more data came, the peer closed, or `within` seconds passed.

        Raises:
            httpx2.ReadTimeout: When nothing came in time.
        """
        if self.eof:
            return
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[None] = loop.create_future()
        self._waiter = waiter
        timer = loop.call_later(within, _expire, waiter) if within is not None else None
        try:
            await waiter
        except _Expired:
            raise httpx2.ReadTimeout("timed out reading", request=request) from None
        finally:
            self._waiter = None
            if timer is not None:
                timer.cancel()

    def write(self, data: bytes) -> None:
        assert self.transport is not None
        self.transport.write(data)

    def close(self) -> None:
        """Drop the connection (unread body: the server sees the hang-up)."""
        if self.transport is not None and not self.lost:
            self.transport.abort()
        self.lost = True
        self.eof = True


class _Expired(Exception):
    pass


def _expire(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_exception(_Expired())


class StreamingTransport(httpx2.AsyncBaseTransport):
    """HTTP/1.1 over asyncio streams, for `httpx2.AsyncClient(transport=...)`.

    Args:
        ssl_context: The TLS context for `https` (None: the default, verified).
        keepalive: Seconds an idle connection is kept.
        max_idle: Idle connections kept per origin.
    """

    def __init__(
        self,
        *,
        ssl_context: ssl.SSLContext | None = None,
        keepalive: float = KEEPALIVE_SECONDS,
        max_idle: int = MAX_IDLE_PER_ORIGIN,
    ) -> None:
        self._ssl = ssl_context
        self._keepalive = keepalive
        self._max_idle = max_idle
        self._idle: dict[Origin, list[_Connection]] = {}

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        """Send one request; the response's body streams from the connection."""
        url = request.url
        scheme = url.scheme
        if scheme not in ("http", "https"):
            raise httpx2.UnsupportedProtocol(
                f"unsupported URL scheme {scheme!r}", request=request
            )
        host = url.host
        origin: Origin = (scheme, host, url.port or (443 if scheme == "https" else 80))
        timeouts: dict[str, float | None] = request.extensions.get("timeout") or {}
        body = await request.aread()
        head = _request_head(request, body)
        conn = self._take(origin)
        reused = conn is not None
        while True:
            if conn is None:
                conn = await self._connect(origin, timeouts.get("connect"), request)
            try:
                conn.write(head)
                conn.write(body)
                request_sent()
                status, reason, headers, keep = await _read_head(
                    conn, request, timeouts.get("read")
                )
                break
            except (httpx2.RemoteProtocolError, httpx2.ReadError):
                conn.close()
                if not (reused and conn.nothing_received):
                    raise
                # A kept-alive connection the server closed as we sent: it never saw
                # the request. Send it once more on a new connection.
                conn, reused = None, False
            except BaseException:
                conn.close()
                raise
        framing = _framing(request.method, status, headers)
        stream = _Body(
            self,
            origin,
            conn,
            request,
            framing,
            keep=keep and framing[0] != "eof",
            read_timeout=timeouts.get("read"),
        )
        return httpx2.Response(
            status_code=status,
            headers=headers,
            stream=stream,
            extensions={"http_version": b"HTTP/1.1", "reason_phrase": reason},
        )

    async def aclose(self) -> None:
        """Close every idle connection."""
        idle, self._idle = self._idle, {}
        for conns in idle.values():
            for conn in conns:
                conn.close()

    # -- the pool -------------------------------------------------------------------

    def _take(self, origin: Origin) -> _Connection | None:
        conns = self._idle.get(origin)
        now = time.monotonic()
        while conns:
            conn = conns.pop()
            if conn.reusable and now - conn.idle_since < self._keepalive:
                conn.nothing_received = True
                return conn
            conn.close()
        return None

    def release(self, origin: Origin, conn: _Connection) -> None:
        """A body was read to its end on a keep-alive connection: keep it."""
        if not conn.reusable:
            conn.close()
            return
        conn.idle_since = time.monotonic()
        conns = self._idle.setdefault(origin, [])
        conns.append(conn)
        if len(conns) > self._max_idle:
            conns.pop(0).close()

    async def _connect(
        self, origin: Origin, within: float | None, request: httpx2.Request
    ) -> _Connection:
        scheme, host, port = origin
        loop = asyncio.get_running_loop()
        tls: ssl.SSLContext | None = None
        if scheme == "https":
            tls = self._ssl or ssl.create_default_context()
        try:
            async with asyncio.timeout(within):
                _, conn = await loop.create_connection(
                    _Connection,
                    host,
                    port,
                    ssl=tls,
                    server_hostname=host if tls else None,
                )
        except TimeoutError:
            raise httpx2.ConnectTimeout(
                f"no connection to {host}:{port} within {within:g} s", request=request
            ) from None
        except (OSError, ssl.SSLError) as exc:
            raise httpx2.ConnectError(
                str(exc) or type(exc).__name__, request=request
            ) from exc
        return conn


def _request_head(request: httpx2.Request, body: bytes) -> bytes:
    target = request.url.raw_path or b"/"
    lines = [request.method.encode("ascii") + b" " + target + b" HTTP/1.1"]
    has_length = False
    for name, value in request.headers.raw:
        lower = name.lower()
        if lower == b"content-length":
            has_length = True
        elif lower == b"transfer-encoding":
            continue  # The body was read whole: it goes with a length.
        lines.append(name + b": " + value)
    if body and not has_length:
        lines.append(b"Content-Length: " + str(len(body)).encode())
    return b"\r\n".join(lines) + b"\r\n\r\n"


async def _read_head(
    conn: _Connection, request: httpx2.Request, within: float | None
) -> tuple[int, bytes, list[tuple[bytes, bytes]], bool]:
    """The status, reason, headers and keep-alive of the response (1xx skipped)."""
    while True:
        end = conn.buffer.find(b"\r\n\r\n")
        if end < 0:
            if len(conn.buffer) > MAX_HEAD_BYTES:
                raise httpx2.RemoteProtocolError(
                    "response head too large", request=request
                )
            if conn.eof:
                _raise_closed(conn, request, "without sending a response")
            await conn.more(within, request)
            continue
        raw = bytes(conn.buffer[:end])
        del conn.buffer[: end + 4]
        status_line, *header_lines = raw.split(b"\r\n")
        parts = status_line.split(b" ", 2)
        if len(parts) < 2 or not parts[0].startswith(b"HTTP/1."):
            raise httpx2.RemoteProtocolError(
                f"malformed status line {status_line[:80]!r}", request=request
            )
        try:
            status = int(parts[1])
        except ValueError:
            raise httpx2.RemoteProtocolError(
                f"malformed status {parts[1][:20]!r}", request=request
            ) from None
        if 100 <= status < 200 and status != 101:
            continue  # 100 Continue, 103 Early Hints: the real answer follows.
        headers: list[tuple[bytes, bytes]] = []
        for line in header_lines:
            name, colon, value = line.partition(b":")
            if not colon or not name or name != name.strip():
                raise httpx2.RemoteProtocolError(
                    "malformed header line", request=request
                )
            headers.append((name, value.strip()))
        connection = b",".join(
            v for n, v in headers if n.lower() == b"connection"
        ).lower()
        keep = parts[0] == b"HTTP/1.1" and b"close" not in connection
        reason = parts[2] if len(parts) > 2 else b""
        return status, reason, headers, keep


def _framing(
    method: str, status: int, headers: list[tuple[bytes, bytes]]
) -> tuple[str, int]:
    """How the body ends: ("length", n), ("chunked", 0) or ("eof", 0)."""
    if method == "HEAD" or status in (204, 304) or 100 <= status < 200:
        return ("length", 0)
    codings = b",".join(v for n, v in headers if n.lower() == b"transfer-encoding")
    if codings:
        last = codings.split(b",")[-1].strip().lower()
        return ("chunked", 0) if last == b"chunked" else ("eof", 0)
    lengths = {v.strip() for n, v in headers if n.lower() == b"content-length"}
    if lengths:
        if len(lengths) != 1 or not next(iter(lengths)).isdigit():
            raise httpx2.RemoteProtocolError("conflicting or malformed Content-Length")
        return ("length", int(next(iter(lengths))))
    return ("eof", 0)


def _raise_closed(conn: _Connection, request: httpx2.Request, what: str) -> None:
    if conn.error is not None and not isinstance(conn.error, EOFError):
        raise httpx2.ReadError(f"connection lost {what}: {conn.error}", request=request)
    raise httpx2.RemoteProtocolError(f"server disconnected {what}", request=request)


class _Body(httpx2.AsyncByteStream):
    """A response body read straight from the connection's buffer."""

    def __init__(
        self,
        transport: StreamingTransport,
        origin: Origin,
        conn: _Connection,
        request: httpx2.Request,
        framing: tuple[str, int],
        *,
        keep: bool,
        read_timeout: float | None,
    ) -> None:
        self._transport = transport
        self._origin = origin
        self._conn: _Connection | None = conn
        self._request = request
        self._framing = framing
        self._keep = keep
        self._timeout = read_timeout

    async def __aiter__(self) -> AsyncIterator[bytes]:
        conn = self._conn
        if conn is None:
            raise httpx2.StreamClosed()
        kind, length = self._framing
        if kind == "length":
            reader = self._by_length(conn, length)
        elif kind == "chunked":
            reader = self._chunked(conn)
        else:
            reader = self._until_eof(conn)
        async for data in reader:
            yield data
        self._done(conn)

    def _done(self, conn: _Connection) -> None:
        self._conn = None
        if self._keep:
            self._transport.release(self._origin, conn)
        else:
            conn.close()

    async def aclose(self) -> None:
        """Close the body; unread data means the connection is dropped."""
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()

    async def _by_length(self, conn: _Connection, length: int) -> AsyncIterator[bytes]:
        remaining = length
        while remaining:
            if not conn.buffer:
                if conn.eof:
                    _raise_closed(conn, self._request, "before the end of the body")
                await conn.more(self._timeout, self._request)
                continue
            take = min(remaining, len(conn.buffer))
            data = bytes(conn.buffer[:take])
            del conn.buffer[:take]
            remaining -= take
            yield data

    async def _until_eof(self, conn: _Connection) -> AsyncIterator[bytes]:
        while True:
            if conn.buffer:
                data = bytes(conn.buffer)
                conn.buffer.clear()
                yield data
                continue
            if conn.eof:
                if conn.error is not None:
                    _raise_closed(conn, self._request, "mid-body")
                return
            await conn.more(self._timeout, self._request)

    async def _chunked(self, conn: _Connection) -> AsyncIterator[bytes]:
        """Decode chunked framing; yields everything one read completed, at once."""
        left = 0  # Bytes of the current chunk still to come (0: a size line is due).
        crlf = False  # The CRLF after a chunk's data is due.
        out: list[bytes] = []
        buffer = conn.buffer
        while True:
            progressed = True
            while progressed:
                progressed = False
                if left:
                    if buffer:
                        take = min(left, len(buffer))
                        out.append(bytes(buffer[:take]))
                        del buffer[:take]
                        left -= take
                        crlf = left == 0
                        progressed = True
                elif crlf:
                    if len(buffer) >= 2:
                        if buffer[:2] != b"\r\n":
                            raise httpx2.RemoteProtocolError(
                                "malformed chunked body", request=self._request
                            )
                        del buffer[:2]
                        crlf = False
                        progressed = True
                else:
                    end = buffer.find(b"\r\n")
                    if end < 0:
                        if len(buffer) > 4096:
                            raise httpx2.RemoteProtocolError(
                                "malformed chunk size", request=self._request
                            )
                        break
                    size_text = bytes(buffer[:end]).split(b";", 1)[0].strip()
                    try:
                        size = int(size_text, 16)
                    except ValueError:
                        raise httpx2.RemoteProtocolError(
                            f"malformed chunk size {size_text[:20]!r}",
                            request=self._request,
                        ) from None
                    if size < 0:
                        raise httpx2.RemoteProtocolError(
                            "negative chunk size", request=self._request
                        )
                    del buffer[: end + 2]
                    if size == 0:
                        if out:
                            yield b"".join(out)
                        await self._trailers(conn)
                        return
                    left = size
                    progressed = True
            if out:
                data = b"".join(out) if len(out) > 1 else out[0]
                out = []
                yield data
            if conn.eof:
                # Everything that came was decoded above, and the body is not done.
                _raise_closed(conn, self._request, "before the end of the body")
            await conn.more(self._timeout, self._request)

    async def _trailers(self, conn: _Connection) -> None:
        """Skip the trailer section (up to its empty line)."""
        while True:
            end = conn.buffer.find(b"\r\n")
            if end == 0:
                del conn.buffer[:2]
                return
            if end > 0:
                del conn.buffer[: end + 2]
                continue
            if conn.eof:
                # No final CRLF: the body is complete all the same, but never reuse.
                self._keep = False
                return
            await conn.more(self._timeout, self._request)


PROXY_VARIABLES = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY")
"""Proxy settings httpx2 reads from the environment (in either case)."""


def proxies_configured(environ: Mapping[str, str] | None = None) -> bool:
    """Whether the environment names a proxy (then the SDK's own stack is used)."""
    env = os.environ if environ is None else environ
    return any(env.get(name) or env.get(name.lower()) for name in PROXY_VARIABLES)


def streaming_client(**options: Any) -> Any | None:
    """The SDK's default async HTTP client with `StreamingTransport` underneath.

    Keeps the SDK's defaults (limits, redirects, timeouts). httpx2 ignores the proxy
    variables once a transport is given, so with a proxy configured this returns None
    and the SDK builds its own client, which honours them.

    Returns:
        The client, or None for "let the SDK build its default one".
    """
    if proxies_configured():
        return None
    import openai

    ssl_context = httpx2.create_ssl_context()
    return openai.DefaultAsyncHttpxClient(
        transport=StreamingTransport(ssl_context=ssl_context), **options
    )


__all__ = [
    "PROXY_VARIABLES",
    "StreamingTransport",
    "proxies_configured",
    "streaming_client",
]
