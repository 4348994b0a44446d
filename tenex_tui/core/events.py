"""The stream event: one type used in-process and on the SSE wire.

A reply is a sequence of events for one assistant message:

    message.started  → message.delta* / message.tool_call* →
        message.completed | message.failed | message.stopped

Every event has an opaque `id` that a client can hand back to resume after it (SSE
`Last-Event-ID`). The last event is *terminal*; clients wait for it. On the wire an event
is `id: <id>`, `event: <type>`, `data: <json of to_wire()>`.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from tenex_tui.core.models import ApiModel, Message, ToolCall, Usage

EventType = Literal[
    "message.started",
    "message.delta",
    "message.tool_call",
    "message.completed",
    "message.failed",
    "message.stopped",
]
"""The event types of DESIGN.md §3."""

TERMINAL_EVENT_TYPES: frozenset[str] = frozenset(
    {"message.completed", "message.failed", "message.stopped"}
)
"""Event types after which a stream ends."""


class StreamEvent(ApiModel):
    """One event of a streamed reply."""

    id: str
    """Opaque and resumable; it embeds the message it belongs to."""
    type: EventType
    message_id: str
    """The assistant message this event belongs to."""
    thread_id: str
    delta: str = ""
    """Text appended to the reply (may be empty)."""
    tool_call: ToolCall | None = None
    """The full, current envelope of a tool call that changed."""
    usage: Usage | None = None
    """On `message.completed`: the token counts, when the provider gave them."""
    error: str | None = None
    """On `message.failed`: why, in a sentence, redacted."""
    status: str | None = None
    """On terminal events: the message's final status (`complete`, `stopped`, …)."""
    message: Message | None = None
    """On `message.started` and terminal events: the assistant message as stored."""
    user_message: Message | None = None
    """On `message.started` of a send: the user message that was committed."""
    extra: dict[str, Any] = Field(default_factory=dict)
    """Room for additive fields from newer servers (ignored by older clients)."""

    @property
    def terminal(self) -> bool:
        """True for the event that ends the stream."""
        return self.type in TERMINAL_EVENT_TYPES

    def to_wire(self) -> dict[str, Any]:
        """The JSON object sent as an SSE event's `data:`."""
        return self.model_dump(mode="json", exclude_none=False, exclude={"extra"})

    def to_json(self) -> str:
        """`to_wire()` as compact JSON (one line, suitable for `data:` or JSON lines).

        Serialised by pydantic-core in one step: the same text as `json.dumps` of
        `to_wire()` (a test pins it), about 8x cheaper, which matters on the server at
        thousands of events per second.
        """
        return self.model_dump_json(exclude={"extra"})

    @classmethod
    def from_wire(cls, data: dict[str, Any]) -> StreamEvent:
        """Decode an event from its wire JSON.

        Raises:
            pydantic.ValidationError: When the object is not an event.
        """
        return cls.model_validate(data)
