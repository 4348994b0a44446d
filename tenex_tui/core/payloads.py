"""Request bodies of `/api/v1/chat`, shared by the server (to validate) and the client.

They are the write side of the resources in `models.py`; keeping them in `core` means the
HTTP server and the remote client cannot drift apart.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from tenex_tui.core.models import ThreadContext

MAX_TITLE_CHARS = 200
"""Longest thread title accepted."""
MAX_MESSAGE_CHARS = 200_000
"""Longest user message accepted (the attachment budget is separate)."""
MAX_SYSTEM_PROMPT_CHARS = 50_000
"""Longest system prompt accepted."""
MAX_KNOWLEDGE_CHARS = 1_000_000
"""Longest brand-knowledge document accepted (about a 400-page book)."""
MAX_LEADS_PER_IMPORT = 10_000
"""Records accepted in one lead import."""


class BodyModel(BaseModel):
    """Base for request bodies: unknown fields are an error, not silently dropped."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class AttachmentInput(BodyModel):
    """A file already turned into text by the attachment loader, ready to send."""

    name: str = Field(max_length=255)
    """Display name (a base name, never a path)."""
    kind: Literal["file", "knowledge", "lead"] = "file"
    media_type: str = "text/plain"
    size: int = Field(default=0, ge=0)
    """Size of the original in bytes."""
    sha256: str | None = None
    """Digest of the original bytes at attach time."""
    text: str
    """The extracted text, already cut to the budget (see `truncated`)."""
    truncated: bool = False


class CreateThreadBody(BodyModel):
    """`POST /threads`."""

    title: str | None = Field(default=None, max_length=MAX_TITLE_CHARS)
    system_prompt: str | None = Field(default=None, max_length=MAX_SYSTEM_PROMPT_CHARS)
    agent: str | None = None
    context: ThreadContext | None = None
    model: str | None = None


class UpdateThreadBody(BodyModel):
    """`PATCH /threads/{id}`: any of title, pinned, archived (and draft, an extension)."""

    title: str | None = Field(default=None, max_length=MAX_TITLE_CHARS)
    pinned: bool | None = None
    archived: bool | None = None
    draft: str | None = Field(default=None, max_length=MAX_MESSAGE_CHARS)


class SendMessageBody(BodyModel):
    """`POST /threads/{id}/messages`."""

    content: str = Field(max_length=MAX_MESSAGE_CHARS)
    attachments: list[AttachmentInput] = Field(default_factory=list)
    knowledge: list[str] = Field(default_factory=list)
    lead: str | None = None
    client_request_id: str | None = Field(default=None, max_length=255)


class EditMessageBody(BodyModel):
    """`PATCH /threads/{id}/messages/{message_id}` (an extension)."""

    content: str = Field(max_length=MAX_MESSAGE_CHARS)


class RegenerateBody(BodyModel):
    """`POST /threads/{id}/regenerate` (an extension)."""

    mode: Literal["regenerate", "continue"] = "regenerate"
    client_request_id: str | None = Field(default=None, max_length=255)


class AddKnowledgeBody(BodyModel):
    """`POST /knowledge` (an extension): add a brand-knowledge document."""

    title: str = Field(max_length=MAX_TITLE_CHARS)
    text: str = Field(max_length=MAX_KNOWLEDGE_CHARS)
    """The document's text (already extracted from its file by the loader)."""
    media_type: str = Field(default="text/plain", max_length=100)
    source: str | None = Field(default=None, max_length=1000)
    """Where it came from (a path), shown to people only."""


class ImportLeadsBody(BodyModel):
    """`POST /leads` (an extension): import lead records (one object per lead)."""

    records: list[dict[str, Any]] = Field(max_length=MAX_LEADS_PER_IMPORT)
