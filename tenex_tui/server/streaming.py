"""Serving a reply's events: as Server-Sent Events, or collected into one JSON answer.

The backend's event iterator is started *before* the response: errors that come at once
(an unknown thread, a reply already streaming, no model, a foreign event id) must be an
HTTP status with the error envelope, not a 200 stream. The first event is awaited for a
short time only, so a resume of a reply that is quiet right now still gets its headers
(and keep-alive pings) promptly.

On the wire every event is `id: <event id>`, `event: <type>`, `data: <json>`, with a
`: ping` comment after every `ping_interval` seconds without an event. When the client goes
away the iterator is closed, which only *detaches* it: the engine keeps generating
(DESIGN.md §3). A key revoked while its stream is open ends the stream at the next event
with an `error` event carrying the 401 envelope (T61). When the server shuts down, every
open stream ends cleanly (the client resumes elsewhere with `Last-Event-ID`).

The key check never holds a stream's events while a cached "still valid" is renewed: when
the cache says valid and then expires, the next events go out on that answer while one
store lookup (shared by every stream of the key) renews it in the background, for at
most `STALE_SECONDS`; a "revoked" answer ends the stream at the next event. Awaiting the
renewal instead stalled every stream of a key once per cache period behind the engine's
checkpoint writes on the DB thread (500 streams on a loaded 2-core box: an event's p99
wait between the engine and its frame went from ~260 ms to ~50 ms). A revoked
key's open streams therefore end within the cache period plus one lookup, and when
nothing was cached (a period of 0) every event still waits for its check.

`EventStream` is this module's own lean SSE response rather than sse-starlette's: a busy
server sends thousands of events a second, and sse-starlette spends per event a
`ServerSentEvent` object, a line split of the data, an anyio cancel scope around the send
and a debug log call. Here an event is one formatted byte string and one `send`; pings
and shutdown cost a timer per stream, not work per event.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import anyio
from starlette.responses import JSONResponse, Response
from starlette.types import Receive, Scope, Send

from tenex_tui.core.errors import TenexError, Unauthorized
from tenex_tui.core.events import StreamEvent
from tenex_tui.core.models import Message
from tenex_tui.server.auth import UNAUTHORIZED_MESSAGE

log = logging.getLogger("tenex_tui.server")

_END = object()
STALE_SECONDS = 2.0
"""How long events may go out on an expired "still valid" while it is being renewed."""
PING = b": ping\n\n"
"""The keep-alive comment (LF line ends: the shortest form every SSE reader accepts)."""


@dataclass
class StreamRegistry:
    """The open SSE streams of one app, so a shutdown can end them all at once."""

    _closers: set[Callable[[], None]] = field(default_factory=set)
    closing: bool = False
    """True once `close_all` ran: streams opened later end at once."""

    def add(self, closer: Callable[[], None]) -> None:
        """Call `closer` when the server shuts down."""
        self._closers.add(closer)

    def discard(self, closer: Callable[[], None]) -> None:
        """Forget a stream that ended."""
        self._closers.discard(closer)

    def close_all(self) -> None:
        """End every open stream (the server is shutting down)."""
        self.closing = True
        for closer in list(self._closers):
            closer()

    def __len__(self) -> int:
        return len(self._closers)


@dataclass
class Started:
    """A backend event stream whose first step has been taken (or is under way)."""

    events: AsyncIterator[StreamEvent]
    first: StreamEvent | None
    """The first event, when it arrived in time."""
    pending: asyncio.Future[StreamEvent] | None
    """The first event still on its way (a quiet live reply)."""
    exhausted: bool = False
    """True when the stream had no events at all (nothing after the given id)."""

    async def aclose(self) -> None:
        """Detach from the backend stream (the reply itself keeps running)."""
        if self.pending is not None and not self.pending.done():
            self.pending.cancel()
            with anyio.CancelScope(shield=True):
                await asyncio.gather(self.pending, return_exceptions=True)
        closer = getattr(self.events, "aclose", None)
        if closer is not None:
            with anyio.move_on_after(5, shield=True):
                await closer()


async def start_events(
    events: AsyncIterator[StreamEvent], wait: float | None
) -> Started:
    """Take the first step of a backend event stream.

    Args:
        events: The backend's iterator (send, regenerate or resume).
        wait: How long to wait for the first event before answering anyway (None:
            until it comes).

    Returns:
        The started stream.

    Raises:
        TenexError: What the backend raised at once (not found, conflict, …).
    """
    step: asyncio.Future[StreamEvent] = asyncio.ensure_future(anext(events))
    done, _ = await asyncio.wait({step}, timeout=wait)
    if not done:
        return Started(events, first=None, pending=step)
    try:
        first = step.result()
    except StopAsyncIteration:
        return Started(events, first=None, pending=None, exhausted=True)
    return Started(events, first=first, pending=None)


async def _next(started: Started) -> StreamEvent | object:
    if started.first is not None:
        first, started.first = started.first, None
        return first
    if started.pending is not None:
        pending, started.pending = started.pending, None
        try:
            return await pending
        except StopAsyncIteration:
            return _END
    try:
        return await anext(started.events)
    except StopAsyncIteration:
        return _END


def event_frame(event: StreamEvent) -> bytes:
    """One event as SSE bytes: `id:`, `event:` and one `data:` line of compact JSON.

    Compact JSON never holds a raw line break, and ids and types are the engine's own
    (no CR/LF), so no line needs splitting.
    """
    return f"id: {event.id}\nevent: {event.type}\ndata: {event.to_json()}\n\n".encode()


def _error_frame(error: TenexError) -> bytes:
    data = json.dumps(error.to_wire(), separators=(",", ":"))
    return f"event: error\ndata: {data}\n\n".encode()


class EventStream(Response):
    """A `text/event-stream` response that sends the frames of an async iterator.

    Args:
        frames: The encoded events; closed (detaching from the backend) when the
            client goes away or the server shuts down.
        ping_interval: Seconds without a frame before a `: ping` comment (0: never).
        registry: Where shutdown finds the stream.
        headers: Extra headers.
    """

    media_type = "text/event-stream"

    def __init__(
        self,
        frames: AsyncIterator[bytes],
        *,
        ping_interval: float,
        registry: StreamRegistry | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        self.status_code = 200
        self.background = None
        self._frames = frames
        self._ping_interval = ping_interval
        self._registry = registry
        self._last_send = 0.0
        self._ping_task: asyncio.Task[None] | None = None
        self._ping_timer: asyncio.TimerHandle | None = None
        self._ended = False
        self.init_headers(
            {
                "Cache-Control": "no-store",
                "Connection": "keep-alive",
                # nginx buffers proxied responses unless told not to.
                "X-Accel-Buffering": "no",
                **(headers or {}),
            }
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Send the head, then every frame until the end, a disconnect or shutdown."""
        await send(
            {
                "type": "http.response.start",
                "status": self.status_code,
                "headers": self.raw_headers,
            }
        )
        if scope.get("method") == "HEAD":
            await self._close_frames()
            await send({"type": "http.response.body", "body": b"", "more_body": False})
            return
        loop = asyncio.get_running_loop()
        self._last_send = loop.time()
        pump = loop.create_task(self._pump(send))
        listener = loop.create_task(_wait_for_disconnect(receive))
        self._arm_ping(loop, send)
        registry = self._registry

        def close() -> None:
            pump.cancel()

        if registry is not None:
            if registry.closing:
                pump.cancel()
            registry.add(close)
        disconnected = False
        try:
            done, _ = await asyncio.wait(
                {pump, listener}, return_when=asyncio.FIRST_COMPLETED
            )
            disconnected = listener in done
        finally:
            self._ended = True
            if registry is not None:
                registry.discard(close)
            if self._ping_timer is not None:
                self._ping_timer.cancel()
            for task in (pump, listener, self._ping_task):
                if task is not None and not task.done():
                    task.cancel()
            await asyncio.gather(pump, listener, return_exceptions=True)
            if self._ping_task is not None:
                await asyncio.gather(self._ping_task, return_exceptions=True)
        error = pump.exception() if pump.done() and not pump.cancelled() else None
        if error is not None:
            raise error
        if not disconnected:
            # The end of the reply, or a shutdown: end the chunked body cleanly.
            with contextlib.suppress(OSError):
                await send(
                    {"type": "http.response.body", "body": b"", "more_body": False}
                )

    async def _pump(self, send: Send) -> None:
        loop = asyncio.get_running_loop()
        try:
            async for frame in self._frames:
                self._last_send = loop.time()
                await send(
                    {"type": "http.response.body", "body": frame, "more_body": True}
                )
        finally:
            await self._close_frames()

    async def _close_frames(self) -> None:
        closer = getattr(self._frames, "aclose", None)
        if closer is not None:
            with anyio.move_on_after(5, shield=True):
                await closer()

    def _arm_ping(self, loop: asyncio.AbstractEventLoop, send: Send) -> None:
        """One timer per stream: it pings only after `ping_interval` without a frame."""
        interval = self._ping_interval
        if interval <= 0:
            return

        def due() -> None:
            if self._ended:
                return
            idle = loop.time() - self._last_send
            if idle >= interval and (self._ping_task is None or self._ping_task.done()):
                self._last_send = loop.time()
                self._ping_task = loop.create_task(self._send_ping(send))
                idle = 0.0
            self._ping_timer = loop.call_later(max(interval - idle, 0.01), due)

        self._ping_timer = loop.call_later(interval, due)

    async def _send_ping(self, send: Send) -> None:
        with contextlib.suppress(OSError):
            await send({"type": "http.response.body", "body": PING, "more_body": True})


async def _wait_for_disconnect(receive: Receive) -> None:
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return


def sse_response(
    started: Started,
    *,
    ping_interval: float,
    still_valid: Callable[[], Awaitable[bool]],
    valid_now: Callable[[], bool | None] | None = None,
    registry: StreamRegistry | None = None,
    stale_seconds: float = STALE_SECONDS,
    monotonic: Callable[[], float] = time.monotonic,
) -> Response:
    """Serve a started stream as Server-Sent Events.

    Args:
        started: The stream, first step taken.
        ping_interval: Seconds without an event before a keep-alive comment (0: none).
        still_valid: Asked before an event when no fresh answer is cached; False ends
            the stream with a 401 event.
        valid_now: The cached answer of `still_valid` when it is fresh (None: ask),
            so most events skip a coroutine.
        registry: The app's open streams (shutdown ends them).
        stale_seconds: After `valid_now` said True and then expired, how long events
            may go out on that answer while `still_valid` renews it in the
            background (see the module docstring); 0 waits for every renewal.
        monotonic: The clock of that bound (tests pass a fake).

    Returns:
        The streaming response.
    """
    check = _KeyCheck(still_valid, valid_now, stale_seconds, monotonic)

    async def frames() -> AsyncIterator[bytes]:
        try:
            while True:
                item = await _next(started)
                if not isinstance(item, StreamEvent):
                    return
                valid = check.now()
                if valid is None:
                    valid = await check.wait()
                if not valid:
                    yield _error_frame(Unauthorized(UNAUTHORIZED_MESSAGE))
                    return
                yield event_frame(item)
                if item.terminal:
                    return
        except TenexError as exc:
            yield _error_frame(exc)
        finally:
            check.close()
            await started.aclose()

    return EventStream(frames(), ping_interval=ping_interval, registry=registry)


class _KeyCheck:
    """The key check before each event of one stream, renewing in the background."""

    def __init__(
        self,
        still_valid: Callable[[], Awaitable[bool]],
        valid_now: Callable[[], bool | None] | None,
        stale_seconds: float,
        monotonic: Callable[[], float],
    ) -> None:
        self._still_valid = still_valid
        self._valid_now = valid_now
        self._stale_seconds = stale_seconds
        self._monotonic = monotonic
        self._cached_valid = False
        """The cache said valid before it expired: events may go on while it renews."""
        self._renewal: asyncio.Future[bool] | None = None
        self._renewal_started = 0.0

    def now(self) -> bool | None:
        """The answer without waiting, or None when it must be awaited (`wait`).

        Raises:
            TenexError: What a background renewal raised.
        """
        renewal = self._renewal
        if renewal is not None and renewal.done():
            self._renewal = None
            self._cached_valid = False
            return renewal.result()
        valid = self._valid_now() if self._valid_now is not None else None
        if valid is not None:
            self._cached_valid = valid
            return valid
        if not self._cached_valid:
            return None
        if renewal is None:
            self._renewal = asyncio.ensure_future(self._still_valid())
            self._renewal_started = self._monotonic()
        elif self._monotonic() - self._renewal_started >= self._stale_seconds:
            return None  # the renewal is slow: wait for it rather than go on
        return True

    async def wait(self) -> bool:
        """Await the answer (the pending renewal, or a new check)."""
        renewal, self._renewal = self._renewal, None
        self._cached_valid = False
        if renewal is not None:
            return await renewal
        return await self._still_valid()

    def close(self) -> None:
        """Drop a renewal still under way (the lookup it shares goes on)."""
        renewal, self._renewal = self._renewal, None
        if renewal is None:
            return
        if renewal.done():
            if not renewal.cancelled():
                renewal.exception()  # retrieved: nobody will read it now
        else:
            renewal.cancel()


async def collect(started: Started) -> tuple[Message | None, Message | None]:
    """Wait for the end of a reply (for clients that did not ask for a stream).

    Returns:
        The user message of `message.started` (None for a regenerate or a replay
        that did not carry it) and the assistant message of the terminal event.
    """
    user_message: Message | None = None
    assistant: Message | None = None
    try:
        while True:
            item = await _next(started)
            if not isinstance(item, StreamEvent):
                break
            if item.user_message is not None:
                user_message = item.user_message
            if item.message is not None:
                assistant = item.message
            if item.terminal:
                break
    finally:
        await started.aclose()
    return user_message, assistant


def json_response(data: Any, status: int = 200) -> JSONResponse:
    """A compact JSON answer."""
    return JSONResponse(data, status_code=status)
