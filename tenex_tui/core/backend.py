"""The `ChatBackend` protocol: the one port between every front end and every store.

It is shaped after the hosted `/api/v1/chat` routes (DESIGN.md §3): each method is one
operation of that table, plus a few documented extensions the terminal app needs
(regenerate, edit, mark-read, models, agents). `LocalEngine` implements it on SQLite,
`RemoteBackend` over HTTP; the app, the CLI, the HTTP server and the MCP tools use only
this protocol, so one behavioural suite can run against both implementations.

Every method raises only `tenex_tui.core.errors.TenexError` subclasses on purpose; a thread
or message of another workspace or user is `NotFound`, exactly as for an id that does not
exist.

Brand knowledge and leads belong to the workspace, not to one user: every user of a
workspace sees (and may change) the same documents and leads, and no other workspace
sees them; an id of another workspace is `NotFound`.

Streams: `send_message`, `regenerate` and `stream_events` return async iterators of
`StreamEvent`. Leaving the iteration early *detaches* the caller; it does not stop the
reply (the engine keeps generating, as the hosted API does when a client drops). To stop
a reply, call `cancel_message`; the stream then ends with `message.stopped`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any, Literal, Protocol, runtime_checkable

from tenex_tui.core.events import StreamEvent
from tenex_tui.core.models import (
    Agent,
    BackendInfo,
    KnowledgeDoc,
    KnowledgeHit,
    Lead,
    Message,
    Page,
    SearchHit,
    Thread,
    ThreadContext,
)
from tenex_tui.core.payloads import AttachmentInput


@runtime_checkable
class ChatBackend(Protocol):
    """Threads, messages, streaming and search for one user in one workspace."""

    async def info(self) -> BackendInfo:
        """Describe the backend for the header and the no-model panel.

        Returns:
            The kind, the workspace's display name, whether it is online, the default
            model (None when none is configured) and why chatting is impossible, if so.

        Raises:
            Nothing: problems are reported in the returned value.
        """
        ...

    async def create_thread(
        self,
        *,
        title: str | None = None,
        system_prompt: str | None = None,
        agent: str | None = None,
        context: ThreadContext | None = None,
        model: str | None = None,
    ) -> Thread:
        """Create a thread (`POST /threads`).

        Args:
            title: A title; empty when None (the app shows "New thread").
            system_prompt: Extra system instructions for every request of the thread.
            agent: The slug of an agent to bind the thread to.
            context: Knowledge document ids and a lead to carry into every request.
            model: A model for this thread (None: the configured default).

        Returns:
            The new thread.

        Raises:
            InvalidRequest: When the agent or a context id does not exist.
            StorageError: When the store cannot be written.
        """
        ...

    async def list_threads(
        self,
        *,
        limit: int | None = None,
        cursor: str | None = None,
        archived: bool | None = False,
        pinned: bool | None = None,
        agent: str | None = None,
        q: str | None = None,
    ) -> Page[Thread]:
        """List the user's threads, pinned first, then by recency (`GET /threads`).

        Args:
            limit: Page size; default 50, capped at 200.
            cursor: The `next_cursor` of the previous page, with the same filters.
            archived: False for live threads (the default), True for the archive,
                None for both.
            pinned: Only pinned (True) or only unpinned (False) threads; None for both.
            agent: Only threads bound to this agent slug.
            q: Only threads whose title contains this text (case-insensitive).

        Returns:
            A page whose cursor stays valid while new threads arrive.

        Raises:
            InvalidRequest: When `limit` is below 1.
            InvalidCursor: When the cursor was tampered with or belongs to another scope
                or other filters.
        """
        ...

    async def get_thread(self, thread_id: str) -> Thread:
        """Return one thread (`GET /threads/{id}`).

        Raises:
            NotFound: When it does not exist in the caller's scope.
        """
        ...

    async def update_thread(
        self,
        thread_id: str,
        *,
        title: str | None = None,
        pinned: bool | None = None,
        archived: bool | None = None,
        draft: str | None = None,
    ) -> Thread:
        """Rename, pin/unpin, archive/unarchive, or save a draft (`PATCH /threads/{id}`).

        Only the arguments that are not None change. `draft` (an extension) is the
        composer's unsent text, kept so it survives thread switches and restarts; saving
        a draft does not change the thread's recency.

        Returns:
            The updated thread.

        Raises:
            NotFound: When the thread is not in the caller's scope.
            InvalidRequest: When the title is too long or has no visible text.
        """
        ...

    async def mark_read(self, thread_id: str) -> Thread:
        """Record that the user has seen the thread's latest reply (an extension).

        Returns:
            The thread, with `unread` False.

        Raises:
            NotFound: When the thread is not in the caller's scope.
        """
        ...

    async def delete_thread(self, thread_id: str) -> None:
        """Delete a thread and all its messages (`DELETE /threads/{id}`).

        A reply streaming in the thread is stopped first.

        Raises:
            NotFound: When the thread is not in the caller's scope.
        """
        ...

    async def list_messages(
        self,
        thread_id: str,
        *,
        limit: int | None = None,
        cursor: str | None = None,
        order: Literal["asc", "desc"] = "asc",
    ) -> Page[Message]:
        """Page through a thread's history (`GET /threads/{id}/messages`).

        Args:
            thread_id: The thread.
            limit: Page size; default 50, capped at 200.
            cursor: The previous page's `next_cursor`.
            order: `asc` from the oldest message; `desc` from the newest (what a chat
                view loads first, an extension).

        Returns:
            Messages with timestamps, status, tool-call envelopes and usage.

        Raises:
            NotFound: When the thread is not in the caller's scope.
            InvalidCursor: When the cursor is not one of this thread's.
        """
        ...

    async def get_message(self, thread_id: str, message_id: str) -> Message:
        """Return one message (`GET /threads/{id}/messages/{message_id}`).

        Raises:
            NotFound: When either is not in the caller's scope.
        """
        ...

    def send_message(
        self,
        thread_id: str,
        content: str,
        *,
        attachments: Sequence[AttachmentInput] = (),
        knowledge: Sequence[str] = (),
        lead: str | None = None,
        client_request_id: str | None = None,
    ) -> AsyncIterator[StreamEvent]:
        """Append a user message and stream the reply (`POST /threads/{id}/messages`).

        The user message and a `streaming` assistant message are committed before the
        model is called; the first event is `message.started` carrying both.

        Args:
            thread_id: The thread.
            content: The user's text.
            attachments: Files already loaded into text by the attachment loader.
            knowledge: Knowledge document ids to attach to this message.
            lead: A lead id to attach to this message.
            client_request_id: Makes the send idempotent: a second send with the same id
                in the same thread returns the first send's stream instead of a new one.

        Yields:
            The reply's events, ending with a terminal one.

        Raises:
            NotFound: When the thread is not in the caller's scope.
            Conflict: When a reply is already streaming in the thread.
            InvalidRequest: When the content is empty or too large.
            ModelNotConfigured: When no model is configured (nothing is stored then).
            StorageError: When the user message cannot be stored.
        """
        ...

    def regenerate(
        self,
        thread_id: str,
        *,
        mode: Literal["regenerate", "continue"] = "regenerate",
        client_request_id: str | None = None,
    ) -> AsyncIterator[StreamEvent]:
        """Answer the last user message again (an extension: retry, regenerate, continue).

        `regenerate` replaces the assistant messages after the last user message with a
        new reply (also how a failed send is retried). `continue` keeps the last
        assistant message's text and appends the model's continuation to it.

        Yields:
            The new reply's events.

        Raises:
            NotFound: When the thread is not in the caller's scope.
            Conflict: When a reply is streaming, or there is nothing to answer.
            ModelNotConfigured: When no model is configured.
        """
        ...

    async def edit_message(
        self, thread_id: str, message_id: str, content: str
    ) -> Message:
        """Replace the text of the thread's last user message (an extension).

        Every message after it is deleted; call `regenerate` to get a new reply.

        Returns:
            The edited message.

        Raises:
            NotFound: When the message is not in the caller's scope.
            Conflict: When it is not the last user message, or a reply is streaming.
        """
        ...

    def stream_events(
        self, thread_id: str, message_id: str, *, after: str | None = None
    ) -> AsyncIterator[StreamEvent]:
        """Resume a reply's stream (`GET /threads/{id}/messages/{message_id}/events`).

        Args:
            thread_id: The thread.
            message_id: The assistant message.
            after: The last event id the caller saw (`Last-Event-ID`); None replays all.

        Yields:
            Exactly the events after `after`, then the live tail, ending with the
            terminal event. A finished message yields its stored events and ends.

        Raises:
            NotFound: When the message, or the event id, is not in the caller's scope.
        """
        ...

    async def cancel_message(self, thread_id: str, message_id: str) -> Message:
        """Stop a streaming reply (`POST /threads/{id}/messages/{message_id}/cancel`).

        The partial text is kept and the message ends `stopped`. Cancelling a message
        that already finished returns it unchanged.

        Raises:
            NotFound: When the message is not in the caller's scope.
        """
        ...

    async def search(
        self, q: str, *, limit: int | None = None, cursor: str | None = None
    ) -> Page[SearchHit]:
        """Full-text search over message content and thread titles (`GET /search`).

        The query is taken as words to find, never as query syntax.

        Returns:
            Hits naming their thread and message, best first.

        Raises:
            InvalidRequest: When the query has no words.
            InvalidCursor: When the cursor is not one of this query's.
        """
        ...

    async def list_models(self) -> list[str]:
        """Return the model ids the provider offers (`tenex-tui models`).

        Raises:
            ModelNotConfigured: When no provider is configured.
            ModelUnavailable: When the provider cannot be reached.
        """
        ...

    async def list_agents(self) -> list[Agent]:
        """Return the agents a thread can be bound to, built-in ones first."""
        ...

    # -- brand knowledge (an extension: the seed's "knowledge documents") ----------

    async def list_knowledge(
        self,
        *,
        limit: int | None = None,
        cursor: str | None = None,
        q: str | None = None,
    ) -> Page[KnowledgeDoc]:
        """List the workspace's knowledge documents, newest first (`GET /knowledge`).

        Args:
            limit: Page size; default 50, capped at 200.
            cursor: The `next_cursor` of the previous page, with the same filters.
            q: Only documents whose title contains this text (case-insensitive).

        Returns:
            Documents without their text.

        Raises:
            InvalidRequest: When `limit` is below 1.
            InvalidCursor: When the cursor is not one of this list's.
        """
        ...

    async def get_knowledge(
        self, doc_id: str, *, with_text: bool = False
    ) -> KnowledgeDoc:
        """Return one knowledge document (`GET /knowledge/{id}`).

        Args:
            doc_id: The document (`doc_…`).
            with_text: Include the full text.

        Raises:
            NotFound: When it is not in the caller's workspace.
        """
        ...

    async def add_knowledge(
        self,
        title: str,
        text: str,
        *,
        media_type: str = "text/plain",
        source: str | None = None,
    ) -> KnowledgeDoc:
        """Store a document, split into chunks and indexed (`POST /knowledge`).

        Adding text that the workspace already has (same SHA-256) returns the existing
        document instead of a copy.

        Args:
            title: A title (at most 200 characters, some visible text).
            text: The document's text (at most 1,000,000 characters).
            media_type: The type it was extracted from (`text/markdown`, …).
            source: Where it came from, for display only.

        Returns:
            The document (without its text).

        Raises:
            InvalidRequest: When the title or text is empty or too long.
            StorageError: When the store cannot be written.
        """
        ...

    async def remove_knowledge(self, doc_id: str) -> None:
        """Delete a document and its chunks (`DELETE /knowledge/{id}`).

        Threads that name it in their context simply stop receiving it.

        Raises:
            NotFound: When it is not in the caller's workspace.
        """
        ...

    async def search_knowledge(
        self, q: str, limit: int | None = None
    ) -> list[KnowledgeHit]:
        """The chunks that best match `q`, best first (`GET /knowledge/search`).

        The query is taken as words to find (any of them), never as query syntax.

        Args:
            q: The words.
            limit: Hits wanted; default 8, at most 50.

        Raises:
            InvalidRequest: When the query has no words or `limit` is below 1.
        """
        ...

    # -- leads (an extension: the seed's "lead context") ----------------------------

    async def import_leads(self, records: Sequence[Mapping[str, Any]]) -> list[Lead]:
        """Import lead records (`POST /leads`).

        Each record is one lead's fields, kept verbatim; its name is guessed from a
        name, company or email field. A record identical to one already imported is
        not stored twice: the existing lead is returned in its place.

        Args:
            records: At most 10,000 JSON objects of scalar (or small nested) values.

        Returns:
            One lead per record, in order.

        Raises:
            InvalidRequest: When a record is not an object, is empty, or breaks a
                size cap (the message names the record).
        """
        ...

    async def list_leads(
        self,
        *,
        limit: int | None = None,
        cursor: str | None = None,
        q: str | None = None,
    ) -> Page[Lead]:
        """List the workspace's leads, newest first (`GET /leads`).

        Args:
            limit: Page size; default 50, capped at 200.
            cursor: The `next_cursor` of the previous page, with the same filters.
            q: Only leads whose name contains this text (case-insensitive).

        Raises:
            InvalidRequest: When `limit` is below 1.
            InvalidCursor: When the cursor is not one of this list's.
        """
        ...

    async def get_lead(self, lead_id: str) -> Lead:
        """Return one lead with its fields (`GET /leads/{id}`).

        Raises:
            NotFound: When it is not in the caller's workspace.
        """
        ...

    async def aclose(self) -> None:
        """Release the backend: stop live replies (they end `stopped`), close files."""
        ...
