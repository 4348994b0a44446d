"""The sync feeds of `/api/v1/chat/sync/…` and the records of the offline outbox.

Shared by the server (which serves the feeds from the engine), the remote client (which
reads them and mirrors a remote workspace into the local store) and the engine (which
keeps the mirror and the outbox): engine and remote never import each other, so the
types they exchange through the mirror port live here.

A feed is a list of changes in commit order. Each page carries the rows that changed
(their current state), the ids deleted, and an opaque `next_cursor` that the client
stores and sends back next time; unlike a list's cursor it is never null, because "where
I stopped" is exactly what an incremental sync needs to remember.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, Protocol, runtime_checkable

from pydantic import Field

from tenex_tui.core.models import ApiModel, Message, Thread, Timestamp

DEFAULT_SYNC_LIMIT = 200
"""Changes per page when the client asks for no size."""
MAX_SYNC_LIMIT = 1000
"""The largest sync page (the server may also stop early to stay under a byte budget)."""


class ThreadChanges(ApiModel):
    """`GET /sync/threads`: threads created, changed or deleted since a cursor."""

    items: list[Thread]
    """The current state of each thread that changed, oldest change first."""
    deleted: list[str] = Field(default_factory=list)
    """Ids of threads deleted since the cursor."""
    next_cursor: str
    """Where the next call starts (store it: it is the sync position)."""
    has_more: bool = False
    """True when more changes are waiting: call again with `next_cursor` now."""


class MessageChange(Message):
    """A message as the sync feed carries it: with its position in the thread."""

    seq: int
    """The message's position in its thread (1 for the first; never reused)."""


class DeletedMessage(ApiModel):
    """A message deleted since the cursor (an edit or a regenerate removed it)."""

    id: str
    thread_id: str


class MessageChanges(ApiModel):
    """`GET /sync/messages`: messages created, changed or deleted since a cursor.

    Messages of a deleted thread are not listed one by one: the thread's deletion in
    the thread feed covers them.
    """

    items: list[MessageChange]
    deleted: list[DeletedMessage] = Field(default_factory=list)
    next_cursor: str
    has_more: bool = False


OutboxKind = Literal["create", "send", "update", "delete"]
"""What an offline action asks of the remote workspace."""

OutboxStatus = Literal["pending", "done", "superseded", "failed"]
"""`pending` until replayed; `done` after a 2xx; `superseded` when a remote change won
the conflict (see `remote/sync.py`); `failed` when the remote refused it for good."""


class OutboxEntry(ApiModel):
    """One action the user took offline on a remote workspace, waiting to be replayed."""

    id: str
    """`op_…`, local."""
    num: int
    """Replay order (ascending)."""
    kind: OutboxKind
    thread_id: str
    """The mirrored thread it acts on (a local `thr_local_…` id for a thread created
    offline, rewritten to the remote id once that thread exists remotely)."""
    payload: dict[str, Any] = Field(default_factory=dict)
    """What to send: `fields` and their `base` values for updates, `content` (and
    attachments) plus the placeholder message id for sends, the thread for creates."""
    idempotency_key: str
    """Sent with every attempt of this action (persisted, so it survives a restart)."""
    status: OutboxStatus = "pending"
    attempts: int = 0
    next_attempt_at: Timestamp | None = None
    """Not before this time (backoff after a failed attempt)."""
    last_error: str | None = None
    created_at: Timestamp
    done_at: Timestamp | None = None


class SyncState(ApiModel):
    """What the local store remembers about one mirrored remote workspace."""

    workspace_id: str
    """The local workspace holding the mirror (`<remote workspace>@<host>`)."""
    user_id: str
    """The local user of the mirror (the remote user's id)."""
    remote_base: str
    remote_workspace_id: str
    remote_user_id: str
    threads_cursor: str | None = None
    messages_cursor: str | None = None
    last_sync_at: Timestamp | None = None
    """When a sync last finished without error."""
    last_attempt_at: Timestamp | None = None
    last_error: str | None = None
    """Why the last sync failed (None after a success)."""


class ApplyResult(ApiModel):
    """What applying one page of a feed to the mirror did."""

    upserted: int = 0
    deleted: int = 0
    skipped: int = 0
    """Rows kept as they are because a pending offline action owns them."""
    missing_threads: list[str] = Field(default_factory=list)
    """Threads that messages named but the mirror lacks (not applied; fetch them and
    apply the page again)."""


@dataclass(frozen=True)
class SyncStatus:
    """What the app's status line shows about a remote workspace and its mirror."""

    online: bool | None
    """The outcome of the last request to the remote; None before any."""
    pending: int
    """Offline actions waiting to be replayed."""
    failed: int
    """Offline actions the remote refused (kept, with their reason)."""
    last_sync_at: datetime | None
    """When the mirror was last brought up to date."""
    last_error: str | None
    """Why the last sync failed, or what it could not send (None when all went well)."""
    syncing: bool
    """True while a sync runs."""
    workspace_id: str | None
    """The local workspace holding the mirror, once known."""


@runtime_checkable
class Syncable(Protocol):
    """A backend that keeps a local mirror of a remote workspace (`MirroredBackend`).

    The app checks `isinstance(backend, Syncable)` to show the sync status and to run
    a background sync, without knowing the remote package.
    """

    async def sync_status(self) -> SyncStatus:
        """The status, from the local store only (no network request)."""
        ...

    async def sync_now(self) -> SyncStatus:
        """Run one sync (push the outbox, pull the feeds); never raises: a failure
        is in the returned status's `last_error`."""
        ...
