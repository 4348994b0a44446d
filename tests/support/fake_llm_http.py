"""The fake LLM server's HTTP/1.1 connection: buffered reads, flushed writes, close events.

Written on `asyncio.Protocol` rather than streams so the server learns at once when a
client goes away (FIN or RST), even while it is stalling or pacing a reply, and so a
"sent" chunk is one the kernel took (no write buffer allowance).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
from collections.abc import Awaitable, Callable
from typing import Any, Literal

MAX_HEAD = 64 * 1024
"""Largest request line plus headers accepted."""


class Closed(Exception):
    """The client closed the connection."""


class Connection(asyncio.Protocol):
    """One client connection: a buffered reader, flow-controlled writes, close events.

    Args:
        serve: Runs the request loop for this connection (started on connect).
        on_change: Called when the client goes away, so waiters can re-check.
    """

    def __init__(
        self,
        serve: Callable[[Connection], Awaitable[None]],
        on_change: Callable[[], None],
    ) -> None:
        self._serve = serve
        self._on_change = on_change
        self._buffer = bytearray()
        self._waiter: asyncio.Future[None] | None = None
        self._drain: asyncio.Future[None] | None = None
        self.transport: asyncio.Transport | None = None
        self.peer_closed = asyncio.Event()
        self.task: asyncio.Task[None] | None = None

    # asyncio callbacks
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        # With no buffer allowance, drain() returns only once the kernel took every
        # byte: "chunk sent" then means the client can read it (and an RST cannot eat it).
        transport.set_write_buffer_limits(high=0)
        self.task = asyncio.get_running_loop().create_task(self._serve(self))

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        self._wake()

    def eof_received(self) -> bool:
        self._peer_gone()
        return True

    def connection_lost(self, exc: Exception | None) -> None:
        self._peer_gone()
        if self._drain is not None and not self._drain.done():
            self._drain.set_result(None)

    def pause_writing(self) -> None:
        self._drain = asyncio.get_running_loop().create_future()

    def resume_writing(self) -> None:
        if self._drain is not None and not self._drain.done():
            self._drain.set_result(None)
        self._drain = None

    def _peer_gone(self) -> None:
        self.peer_closed.set()
        self._on_change()
        self._wake()

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    # reading
    async def _more(self) -> None:
        if self.peer_closed.is_set():
            raise Closed
        self._waiter = asyncio.get_running_loop().create_future()
        try:
            await self._waiter
        finally:
            self._waiter = None

    async def read_head(self) -> bytes | None:
        """The request line and headers, or None at a clean end of connection."""
        while True:
            end = self._buffer.find(b"\r\n\r\n")
            if end >= 0:
                head = bytes(self._buffer[:end])
                del self._buffer[: end + 4]
                return head
            if len(self._buffer) > MAX_HEAD:
                raise Closed
            if self.peer_closed.is_set():
                return None
            await self._more()

    async def read_exactly(self, size: int) -> bytes:
        while len(self._buffer) < size:
            await self._more()
        data = bytes(self._buffer[:size])
        del self._buffer[:size]
        return data

    # writing
    async def write(self, data: bytes) -> None:
        assert self.transport is not None
        if self.transport.is_closing():
            raise Closed
        self.transport.write(data)
        if self._drain is not None:
            await self._drain

    async def pause(self, delay: float) -> bool:
        """Wait `delay` seconds; return True (early) if the client left meanwhile."""
        if not self.peer_closed.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.peer_closed.wait(), delay)
        return self.peer_closed.is_set()

    async def stall(
        self, take_release: Callable[[], bool], released: Callable[[], Awaitable[None]]
    ) -> bool:
        """Send nothing until `take_release()` holds; return True if the client left.

        `released()` completes whenever a release may have happened, so the loop runs
        once per release or disconnect, never on a timer.
        """
        while not self.peer_closed.is_set():
            if take_release():
                return False
            waiters: set[asyncio.Future[Any]] = {
                asyncio.ensure_future(self.peer_closed.wait()),
                asyncio.ensure_future(released()),
            }
            _, pending = await asyncio.wait(
                waiters, return_when=asyncio.FIRST_COMPLETED
            )
            for task in pending:
                task.cancel()
        return True

    def abort(self, mode: Literal["rst", "fin"]) -> None:
        assert self.transport is not None
        if mode == "rst":
            sock = self.transport.get_extra_info("socket")
            if sock is not None:
                sock.setsockopt(
                    socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
                )
            self.transport.abort()
        else:
            self.transport.close()
