"""A loopback HTTP/1.1 proxy that injects faults, for the remote client's reliability tests.

It sits between the client and the project's own server (or answers by itself), parses
just enough HTTP to know where requests and responses begin and end, and applies the
first rule that matches a request:

- `DropAfterEvents(n)`: forward the reply stream, cut the connection after `n` SSE events
  (FIN, or RST with `rst=True`) without the final chunk, as a flaky network does;
- `StallAfterEvents(n)`: forward `n` events, then send nothing until `release_stalls()`;
- `StatusAfterCommit(status)`: forward the request, read the server's whole answer (the
  server has committed), then answer `status` instead;
- `DropAfterCommit()`: the same, but cut the connection without any answer;
- `Respond(status, headers, body)`: answer without forwarding (a 429, a redirect, HTML);
- `Hang()`: accept the request and never answer;
- `Drip(chunk, interval)`: forward the answer a few bytes at a time.

Every request is recorded (`seen`), with its headers, so tests can check the
`Idempotency-Key`, `Last-Event-ID` and `Authorization` of each attempt. Every response
carries `Connection: close`, so each request uses its own connection and rules apply per
request. All waits are bounded.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import socket
import struct
from dataclasses import dataclass, field

_STALL_LIMIT = 60.0


@dataclass(frozen=True)
class DropAfterEvents:
    events: int
    rst: bool = False


@dataclass(frozen=True)
class StallAfterEvents:
    events: int


@dataclass(frozen=True)
class StatusAfterCommit:
    status: int = 500
    body: bytes = b'{"error":{"code":"internal_error","message":"injected failure"}}'
    content_type: str = "application/json"


@dataclass(frozen=True)
class DropAfterCommit:
    pass


@dataclass(frozen=True)
class Respond:
    status: int
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes = b""


@dataclass(frozen=True)
class Hang:
    pass


@dataclass(frozen=True)
class Drip:
    chunk: int = 1
    interval: float = 0.2


Action = (
    DropAfterEvents
    | StallAfterEvents
    | StatusAfterCommit
    | DropAfterCommit
    | Respond
    | Hang
    | Drip
)


@dataclass
class Rule:
    """Apply `action` to the next `times` requests matching method and path (regex)."""

    method: str
    path: str
    action: Action
    times: int = 1
    """How many matching requests it applies to (-1: all)."""

    def matches(self, method: str, path: str) -> bool:
        return (
            self.times != 0
            and (self.method in ("*", method))
            and re.fullmatch(self.path, path) is not None
        )


@dataclass(frozen=True)
class SeenRequest:
    method: str
    path: str
    """Without the query string."""
    target: str
    """The full request target, query included."""
    headers: dict[str, str]
    body: bytes
    action: str


@dataclass
class FaultProxy:
    """Forwards to `upstream` (host, port) unless a rule says otherwise."""

    upstream: tuple[str, int] | None = None
    rules: list[Rule] = field(default_factory=list)
    seen: list[SeenRequest] = field(default_factory=list)
    host: str = "127.0.0.1"
    port: int = 0
    _server: asyncio.Server | None = None
    _release: asyncio.Event = field(default_factory=asyncio.Event)
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def add(self, method: str, path: str, action: Action, times: int = 1) -> Rule:
        rule = Rule(method, path, action, times)
        self.rules.append(rule)
        return rule

    def release_stalls(self) -> None:
        self._release.set()

    def requests(
        self, method: str | None = None, path: str | None = None
    ) -> list[SeenRequest]:
        return [
            r
            for r in self.seen
            if (method is None or r.method == method)
            and (path is None or re.fullmatch(path, r.path))
        ]

    async def start(self) -> FaultProxy:
        self._server = await asyncio.start_server(self._accept, self.host, self.port)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def close(self) -> None:
        self._release.set()
        if self._server is not None:
            self._server.close()
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=5)
        if self._server is not None:
            with contextlib.suppress(Exception):
                async with asyncio.timeout(5):
                    await self._server.wait_closed()

    async def __aenter__(self) -> FaultProxy:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # -- connection handling ---------------------------------------------------------

    async def _accept(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            await self._serve_one(reader, writer)
        except (
            ConnectionError,
            asyncio.IncompleteReadError,
            asyncio.LimitOverrunError,
        ):
            pass
        finally:
            self._tasks.discard(task)
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def _serve_one(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        request_line, headers = _parse_head(head)
        method, target, _version = request_line.split(" ", 2)
        path = target.split("?", 1)[0]
        length = int(headers.get("content-length", "0") or 0)
        body = await reader.readexactly(length) if length else b""
        rule = next((r for r in self.rules if r.matches(method, path)), None)
        action: Action | None = None
        if rule is not None:
            action = rule.action
            if rule.times > 0:
                rule.times -= 1
        self.seen.append(
            SeenRequest(method, path, target, headers, body, type(action).__name__)
        )
        if isinstance(action, Respond):
            await _write_simple(writer, action.status, action.headers, action.body)
            return
        if isinstance(action, Hang):
            await self._wait_released(reader)
            return
        assert self.upstream is not None, "no upstream and no answering rule"
        up_reader, up_writer = await asyncio.open_connection(*self.upstream)
        try:
            await self._forward(
                reader, writer, head, body, up_reader, up_writer, action
            )
        finally:
            up_writer.close()
            with contextlib.suppress(Exception):
                await up_writer.wait_closed()

    async def _forward(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        head: bytes,
        body: bytes,
        up_reader: asyncio.StreamReader,
        up_writer: asyncio.StreamWriter,
        action: Action | None,
    ) -> None:
        up_writer.write(_with_header(head, "Connection", "close") + body)
        await up_writer.drain()
        response_head = await up_reader.readuntil(b"\r\n\r\n")
        _status_line, response_headers = _parse_head(response_head)
        chunked = "chunked" in response_headers.get("transfer-encoding", "").lower()
        length = response_headers.get("content-length")
        if isinstance(action, StatusAfterCommit | DropAfterCommit):
            # Read the whole answer: whatever the server does for this request is done.
            async with asyncio.timeout(_STALL_LIMIT):
                async for _ in _body_pieces(up_reader, chunked, length):
                    pass
            if isinstance(action, StatusAfterCommit):
                await _write_simple(
                    writer,
                    action.status,
                    (("Content-Type", action.content_type),),
                    action.body,
                )
            else:
                _reset(writer)
            return
        writer.write(_with_header(response_head, "Connection", "close"))
        await writer.drain()
        counter = _EventCounter()
        async for raw, data in _body_pieces(up_reader, chunked, length):
            if isinstance(action, Drip):
                for start in range(0, len(raw), action.chunk):
                    writer.write(raw[start : start + action.chunk])
                    await writer.drain()
                    await asyncio.sleep(action.interval)
                continue
            limit = (
                action.events
                if isinstance(action, DropAfterEvents | StallAfterEvents)
                else None
            )
            if limit is None:
                writer.write(raw)
                await writer.drain()
                continue
            cut = counter.cut_after(data, limit)
            if cut is None:
                writer.write(raw)
                await writer.drain()
                continue
            if cut > 0:
                part = data[:cut]
                writer.write(
                    f"{len(part):x}\r\n".encode() + part + b"\r\n" if chunked else part
                )
                await writer.drain()
            if isinstance(action, StallAfterEvents):
                await self._wait_released(reader)
            elif action.rst:  # type: ignore[union-attr]
                _reset(writer)
            return

    async def _wait_released(self, reader: asyncio.StreamReader) -> None:
        """Wait for `release_stalls()` or the client going away (bounded)."""
        release = asyncio.ensure_future(self._release.wait())
        gone = asyncio.ensure_future(reader.read(1))
        try:
            await asyncio.wait(
                {release, gone},
                timeout=_STALL_LIMIT,
                return_when=asyncio.FIRST_COMPLETED,
            )
        finally:
            release.cancel()
            gone.cancel()


class _EventCounter:
    """Counts complete SSE events (blocks with a data line) in the body as it passes."""

    def __init__(self) -> None:
        self.count = 0
        self._block = b""

    def cut_after(self, data: bytes, limit: int) -> int | None:
        """Feed `data`; when the `limit`-th event ends inside it, return the offset just
        after that event (0 when the limit was already reached), else None."""
        if self.count >= limit:
            return 0
        text = self._block + data
        base = len(self._block)
        position = 0
        while True:
            end = text.find(b"\n\n", position)
            if end < 0:
                break
            block = text[position:end]
            position = end + 2
            if any(line.startswith(b"data:") for line in block.split(b"\n")):
                self.count += 1
                if self.count >= limit:
                    self._block = b""
                    return position - base
        self._block = text[position:]
        return None


async def _body_pieces(reader: asyncio.StreamReader, chunked: bool, length: str | None):  # type: ignore[no-untyped-def]
    """Yield (raw bytes to forward, payload bytes) of a response body."""
    if chunked:
        while True:
            size_line = await reader.readuntil(b"\r\n")
            size = int(size_line.split(b";")[0].strip(), 16)
            payload = await reader.readexactly(size + 2)
            yield size_line + payload, payload[:-2]
            if size == 0:
                return
    elif length is not None:
        remaining = int(length)
        while remaining > 0:
            piece = await reader.read(min(remaining, 65536))
            if not piece:
                return
            remaining -= len(piece)
            yield piece, piece
    else:
        while True:
            piece = await reader.read(65536)
            if not piece:
                return
            yield piece, piece


def _parse_head(head: bytes) -> tuple[str, dict[str, str]]:
    lines = head.decode("latin-1").split("\r\n")
    headers: dict[str, str] = {}
    for line in lines[1:]:
        if ":" in line:
            name, value = line.split(":", 1)
            headers[name.strip().lower()] = value.strip()
    return lines[0], headers


def _with_header(head: bytes, name: str, value: str) -> bytes:
    lines = head.decode("latin-1").split("\r\n")
    kept = [
        line for line in lines[:-2] if not line.lower().startswith(name.lower() + ":")
    ]
    return ("\r\n".join([*kept, f"{name}: {value}"]) + "\r\n\r\n").encode("latin-1")


async def _write_simple(
    writer: asyncio.StreamWriter,
    status: int,
    headers: tuple[tuple[str, str], ...],
    body: bytes,
) -> None:
    lines = [f"HTTP/1.1 {status} Injected"]
    names = {name.lower() for name, _ in headers}
    lines += [f"{name}: {value}" for name, value in headers]
    if "content-length" not in names:
        lines.append(f"Content-Length: {len(body)}")
    lines.append("Connection: close")
    writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body)
    await writer.drain()


def _reset(writer: asyncio.StreamWriter) -> None:
    """Close with RST (SO_LINGER 0), as a dropped network path does."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(
                socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
            )
    writer.transport.abort()
