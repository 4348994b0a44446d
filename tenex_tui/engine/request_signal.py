"""Telling a live reply that its model request has left the process.

A reply's first event waits (briefly) until its model request is on the wire, so that
what the caller does on `message.started` (the app mounting views, on the event loop
the engine shares) does not delay the request, and so the first token. The reply that
streams the model listens (`listen`, a context variable of its producer task); the code
that writes the request calls `request_sent()` from inside that same task.

An adapter that announces its requests this way says so with a true
`announces_requests` attribute; for any other adapter the reply takes its producer's
first suspension inside the stream as the moment the request left.
"""

from __future__ import annotations

from collections.abc import Callable
from contextvars import ContextVar

_LISTENER: ContextVar[Callable[[], None] | None] = ContextVar(
    "tenex_request_listener", default=None
)


def listen(callback: Callable[[], None]) -> None:
    """Call `callback` when a request is sent from the current task (or its context)."""
    _LISTENER.set(callback)


def request_sent() -> None:
    """Say that the request of the current task was just written to the network."""
    callback = _LISTENER.get()
    if callback is not None:
        callback()
