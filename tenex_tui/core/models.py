"""The API resources of `/api/v1/chat`, as pydantic models.

Field names are the hosted API's wire names, verbatim, so that the remote client is a
mapping and not a translation (DESIGN.md §3). Every model is frozen: a value read from a
backend is a snapshot, and the UI never mutates one in place.

Timestamps are timezone-aware UTC datetimes that serialise as RFC 3339 with a `Z`.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, PlainSerializer, field_validator

Role = Literal["user", "assistant", "system", "tool"]
"""Who wrote a message."""

MessageStatus = Literal["complete", "streaming", "stopped", "interrupted", "error"]
"""Where a message is in its lifecycle (DESIGN.md §4).

`streaming` while a reply is generated; `complete` when the model finished; `stopped`
when the user cancelled; `error` when the provider or a tool failed; `interrupted` when
the message was found `streaming` with no live writer (a killed process, a lost
connection, a stall).
"""

TERMINAL_STATUSES: frozenset[str] = frozenset(
    {"complete", "stopped", "interrupted", "error"}
)
"""Statuses after which a message never changes again unless the user acts."""

ToolCallStatus = Literal["requested", "running", "completed", "failed"]
"""Lifecycle of one tool call envelope."""

AgentLevel = Literal["junior", "manager", "associate"]
"""Seniority of an agent, as the 10ex agent store names it."""


def format_timestamp(value: datetime) -> str:
    """Render a datetime as RFC 3339 UTC with microseconds and a `Z` suffix.

    Args:
        value: An aware datetime (naive values are taken to be UTC).

    Returns:
        A fixed-width string such as `2026-11-26T17:35:36.123456Z`, which also sorts
        lexicographically in time order.
    """
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_timestamp(value: str) -> datetime:
    """Parse an RFC 3339 timestamp into an aware UTC datetime.

    Raises:
        ValueError: When the text is not a timestamp.
    """
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


Timestamp = Annotated[datetime, PlainSerializer(format_timestamp, return_type=str)]
"""A UTC datetime that serialises as RFC 3339 with a `Z`."""


class ApiModel(BaseModel):
    """Base for every resource: frozen, and strict about unknown fields on input."""

    model_config = ConfigDict(frozen=True, extra="ignore", populate_by_name=True)


class Usage(ApiModel):
    """Token counts the provider reported for one reply."""

    prompt_tokens: int | None = None
    """Tokens of the prompt, when the server reported them."""
    completion_tokens: int | None = None
    """Tokens of the reply, when the server reported them."""


class ToolCall(ApiModel):
    """One tool call envelope on an assistant message."""

    id: str
    """The provider's call id (or a generated one when the provider gave none)."""
    name: str
    """The tool's name as the model asked for it."""
    arguments: dict[str, Any] = Field(default_factory=dict)
    """The parsed JSON arguments (empty when they could not be parsed)."""
    status: ToolCallStatus = "requested"
    """`requested → running → completed | failed`."""
    result: Any = None
    """The tool's result: text or JSON."""
    error: str | None = None
    """Why the call failed, in a sentence, when `status` is `failed`."""
    raw_arguments: str | None = None
    """The argument text exactly as the model sent it, kept when it was not valid JSON."""
    started_at: Timestamp | None = None
    """When the tool began to run."""
    completed_at: Timestamp | None = None
    """When the tool finished or failed."""


class Attachment(ApiModel):
    """A file, knowledge document or lead attached to a message."""

    id: str
    """`att_…`."""
    kind: Literal["file", "knowledge", "lead"] = "file"
    """What was attached."""
    name: str
    """A display name (the file's base name, the document title, the lead's name)."""
    media_type: str = "text/plain"
    """The detected type, such as `text/markdown` or `application/pdf`."""
    size: int = 0
    """Size in bytes of the original."""
    sha256: str | None = None
    """Digest of the original bytes at attach time."""
    truncated: bool = False
    """True when the extracted text was cut at the size budget."""
    ref_id: str | None = None
    """The knowledge document or lead id, for those kinds."""


class ThreadContext(ApiModel):
    """System context a thread carries into every request."""

    knowledge: list[str] = Field(default_factory=list)
    """Brand-knowledge document ids (`doc_…`)."""
    lead: str | None = None
    """A lead id (`lead_…`), given to the model as data."""


class Thread(ApiModel):
    """A conversation that belongs to one user inside one workspace."""

    id: str
    """`thr_…`."""
    workspace_id: str
    user_id: str
    title: str = ""
    agent: str | None = None
    """The slug of the agent the thread is bound to, or None for the open assistant."""
    system_prompt: str | None = None
    context: ThreadContext = Field(default_factory=ThreadContext)
    model: str | None = None
    """The model this thread asks for (None: the configured default)."""
    pinned: bool = False
    archived: bool = False
    created_at: Timestamp
    updated_at: Timestamp
    last_message_at: Timestamp | None = None
    message_count: int = 0
    last_status: MessageStatus | None = None
    """Status of the newest assistant message, for sidebar markers (an extension)."""
    unread: bool = False
    """A reply finished after the user last opened the thread (an extension)."""
    draft: str = ""
    """The composer's unsent text for this thread (an extension)."""


class Message(ApiModel):
    """One message of a thread."""

    id: str
    """`msg_…`."""
    thread_id: str
    role: Role
    content: str = ""
    status: MessageStatus = "complete"
    tool_calls: list[ToolCall] = Field(default_factory=list)
    attachments: list[Attachment] = Field(default_factory=list)
    model: str | None = None
    usage: Usage | None = None
    error: str | None = None
    """Why the message ended in `error` or `interrupted`, redacted of secrets."""
    created_at: Timestamp
    completed_at: Timestamp | None = None


class SearchHit(ApiModel):
    """One full-text search result."""

    thread_id: str
    message_id: str | None
    """The matching message, or None when only the thread's title matched."""
    thread_title: str = ""
    role: Role | None = None
    snippet: str = ""
    """An excerpt around the match, with `[` `]` removed from the highlight markers."""
    created_at: Timestamp | None = None


class KnowledgeDoc(ApiModel):
    """A brand-knowledge document stored in the workspace."""

    id: str
    """`doc_…`."""
    title: str
    media_type: str = "text/plain"
    size: int = 0
    chunk_count: int = 0
    source: str | None = None
    """Where it was added from (a path), for display only."""
    created_at: Timestamp
    sha256: str | None = None
    """Digest of the document's text (UTF-8); adding the same text again returns this
    document instead of a copy."""
    text: str | None = None
    """The full text, only when asked for (`get_knowledge(..., with_text=True)`); None
    in lists."""


class KnowledgeHit(ApiModel):
    """A chunk of a knowledge document that matched a search."""

    doc_id: str
    title: str
    chunk: int
    text: str


class Lead(ApiModel):
    """An inbound lead: structured context the model sees as data."""

    id: str
    """`lead_…`."""
    name: str
    fields: dict[str, Any] = Field(default_factory=dict)
    """The imported record, verbatim."""
    created_at: Timestamp


class Agent(ApiModel):
    """An agent a thread can be bound to."""

    slug: str
    name: str
    level: AgentLevel = "associate"
    description: str = ""
    system_prompt: str = ""
    tools: list[str] = Field(default_factory=list)
    """Names of the local tools the agent may call."""
    model: str | None = None
    builtin: bool = True


class BackendInfo(ApiModel):
    """What a front end shows about the backend it talks to (header, no-model panel)."""

    kind: Literal["local", "remote"]
    workspace: str
    """A display name for the workspace."""
    online: bool = True
    model: str | None = None
    """The default model, or None when no model is configured."""
    model_problem: str | None = None
    """Why chatting is not possible right now, in a sentence (None when it is)."""
    read_only: bool = False
    """True when the store cannot be written (read-only file, corrupt database)."""


ItemT = TypeVar("ItemT")


class Page(BaseModel, Generic[ItemT]):
    """One page of a list: `{"items": [...], "next_cursor": …, "total": n}`."""

    model_config = ConfigDict(frozen=True)

    items: list[ItemT]
    next_cursor: str | None = None
    """Opaque; pass it back to get the next page. None on the last page."""
    total: int | None = None
    """Best-effort count of all matching items."""

    @field_validator("items", mode="before")
    @classmethod
    def _listify(cls, value: Any) -> Any:
        return list(value) if isinstance(value, tuple) else value


DEFAULT_PAGE_LIMIT = 50
"""The page size when the caller gives none."""
MAX_PAGE_LIMIT = 200
"""The hard cap on a page size; larger values are coerced to it."""


def clamp_limit(limit: int | None) -> int:
    """Apply the list contract to a requested page size.

    Args:
        limit: The size asked for, or None for the default.

    Returns:
        The default (50) for None, the cap (200) for anything larger.

    Raises:
        ValueError: When the limit is below 1.
    """
    if limit is None:
        return DEFAULT_PAGE_LIMIT
    if limit < 1:
        raise ValueError("limit must be at least 1")
    return min(limit, MAX_PAGE_LIMIT)
