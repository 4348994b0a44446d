"""Serving a reply's events: as Server-Sent Events, or collected into one JSON answer.

The backend's event iterator is started *before* the response: errors that come at once
(an unknown thread, a reply already streaming, no model, a foreign event id) must be an
HTTP status with the error envelope, not a 200 stream. The first event is awaited for a
short time only, so a resume of a reply that is quiet right now still gets its headers
(and keep-alive pings) promptly.

On the wire every event is `id: <event id>`, `event: <type>`, `data: <json>`, with a
`: ping` comment every `ping_interval` seconds. When the client goes away the iterator is
closed, which only *detaches* it: the engine keeps generating (DESIGN.md §3). A key revoked
while its stream is open ends the stream at the next event with an `error` event carrying
the 401 envelope (T61).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import anyio
from sse_starlette import EventSourceResponse, ServerSentEvent
from starlette.responses import JSONResponse, Response

from tenex_tui.core.errors import TenexError, Unauthorized
from tenex_tui.core.events import StreamEvent
from tenex_tui.core.models import Message
from tenex_tui.server.auth import UNAUTHORIZED_MESSAGE

log = logging.getLogger("tenex_tui.server")

_END = object()
SEP = "\n"
"""Line separator on the wire (LF: the shortest form every SSE reader accepts)."""


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


def _error_event(error: TenexError) -> ServerSentEvent:
    return ServerSentEvent(
        data=json.dumps(error.to_wire(), separators=(",", ":")),
        event="error",
        sep=SEP,
    )


def sse_response(
    started: Started,
    *,
    ping_interval: float,
    still_valid: Callable[[], Awaitable[bool]],
) -> Response:
    """Serve a started stream as Server-Sent Events.

    Args:
        started: The stream, first step taken.
        ping_interval: Seconds between keep-alive comments (0: none).
        still_valid: Asked before every event; False ends the stream with a 401 event.

    Returns:
        The streaming response.
    """

    async def body() -> AsyncIterator[ServerSentEvent]:
        try:
            while True:
                item = await _next(started)
                if not isinstance(item, StreamEvent):
                    return
                if not await still_valid():
                    yield _error_event(Unauthorized(UNAUTHORIZED_MESSAGE))
                    return
                yield ServerSentEvent(
                    data=item.to_json(), event=item.type, id=item.id, sep=SEP
                )
                if item.terminal:
                    return
        except TenexError as exc:
            yield _error_event(exc)
        finally:
            await started.aclose()

    return EventSourceResponse(
        body(),
        ping=ping_interval,
        sep=SEP,
        headers={"Cache-Control": "no-store"},
    )


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
