"""The state of replies being streamed, independent of any widget.

A reply keeps streaming when the user switches to another thread (T24): the worker that
consumes the backend's events writes into a `ReplyState`, and whichever view shows that
thread reads from it. Returning to the thread shows everything that arrived meanwhile.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from tenex_tui.core.events import StreamEvent
from tenex_tui.core.models import Message, ToolCall, Usage


@dataclass(eq=False)
class ReplyState:
    """Everything known about one assistant reply while it streams."""

    thread_id: str
    """The thread the reply belongs to."""
    message_id: str | None = None
    """The assistant message (known from `message.started` on)."""
    status: str = "streaming"
    """`streaming` until a terminal event: then `complete`, `stopped`, `error`, …"""
    error: str | None = None
    """Why the reply failed (from `message.failed`)."""
    model: str | None = None
    """The model answering, when the backend said."""
    usage: Usage | None = None
    """Token counts from `message.completed`."""
    final: Message | None = None
    """The assistant message as stored, from the terminal event."""
    user_message: Message | None = None
    """The user message committed by a send (from `message.started`)."""
    started: Message | None = None
    """The assistant message as first stored (from `message.started`)."""
    last_event_id: str | None = None
    """The newest event seen, to resume after."""
    tool_calls: dict[str, ToolCall] = field(default_factory=dict)
    """Tool-call envelopes by id, in the order they appeared."""
    tools_version: int = 0
    """Bumped whenever a tool call changes, so views know to redraw them."""
    deltas: int = 0
    """How many text deltas arrived (for tests and benchmarks)."""
    held: Message | None = None
    """The user's message while a send waits for the database (shown, not stored)."""
    cancel: Callable[[], None] | None = None
    """Stops consuming this reply (set by the screen that consumes it)."""
    _chunks: list[str] = field(default_factory=list)
    _length: int = 0
    _listeners: list[Callable[[], None]] = field(default_factory=list)

    @property
    def text(self) -> str:
        """The reply text so far."""
        if len(self._chunks) > 1:
            self._chunks[:] = ["".join(self._chunks)]
        return self._chunks[0] if self._chunks else ""

    @property
    def length(self) -> int:
        """Length of `text`, without joining the chunks."""
        return self._length

    @property
    def done(self) -> bool:
        """True once a terminal event arrived."""
        return self.status != "streaming"

    def seed(self, text: str) -> None:
        """Start from text already stored (a reply resumed from the beginning is not)."""
        self._chunks = [text] if text else []
        self._length = len(text)

    def apply(self, event: StreamEvent) -> None:
        """Fold one stream event into the state and tell the listeners."""
        self.last_event_id = event.id
        if self.message_id is None:
            self.message_id = event.message_id
        match event.type:
            case "message.started":
                if event.message is not None:
                    self.started = event.message
                    self.model = event.message.model or self.model
                    if event.message.content and not self._length:
                        self.seed(event.message.content)
                if event.user_message is not None:
                    self.user_message = event.user_message
            case "message.delta":
                if event.delta:
                    self._chunks.append(event.delta)
                    self._length += len(event.delta)
                    self.deltas += 1
            case "message.tool_call":
                if event.tool_call is not None:
                    self.tool_calls[event.tool_call.id] = event.tool_call
                    self.tools_version += 1
            case "message.completed" | "message.failed" | "message.stopped":
                self.status = event.status or _STATUS_BY_EVENT[event.type]
                self.error = event.error
                self.usage = event.usage
                if event.message is not None:
                    self.final = event.message
                    self.model = event.message.model or self.model
                    for call in event.message.tool_calls:
                        self.tool_calls[call.id] = call
                    self.tools_version += 1
        self.notify()

    def fail(self, error: str, status: str = "error") -> None:
        """End the reply locally (the stream broke without a terminal event)."""
        self.status = status
        self.error = error
        self.notify()

    def add_listener(self, callback: Callable[[], None]) -> None:
        """Call `callback` after every change (a view schedules a repaint)."""
        self._listeners.append(callback)

    def remove_listener(self, callback: Callable[[], None]) -> None:
        """Stop calling `callback`."""
        if callback in self._listeners:
            self._listeners.remove(callback)

    def notify(self) -> None:
        """Tell every listener the state changed."""
        for callback in list(self._listeners):
            callback()


_STATUS_BY_EVENT = {
    "message.completed": "complete",
    "message.failed": "error",
    "message.stopped": "stopped",
}


class ReplyTracker:
    """The replies this app is streaming, by thread."""

    def __init__(self) -> None:
        self._by_thread: dict[str, ReplyState] = {}

    def start(self, thread_id: str) -> ReplyState:
        """Track a new reply in a thread (replacing a finished one)."""
        state = ReplyState(thread_id=thread_id)
        self._by_thread[thread_id] = state
        return state

    def get(self, thread_id: str | None) -> ReplyState | None:
        """The live (not finished) reply of a thread, if any."""
        if thread_id is None:
            return None
        state = self._by_thread.get(thread_id)
        return state if state is not None and not state.done else None

    def finish(self, state: ReplyState) -> None:
        """Forget a finished reply."""
        if self._by_thread.get(state.thread_id) is state:
            del self._by_thread[state.thread_id]

    def live(self) -> list[ReplyState]:
        """Every reply still streaming."""
        return [state for state in self._by_thread.values() if not state.done]
