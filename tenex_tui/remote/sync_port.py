"""The port through which sync reaches the local store (implemented by the engine).

The remote package may import only `core` (engine and remote are independent adapters),
so `SyncService`, the outbox replayer and `MirroredBackend` talk to the local mirror
through these protocols; `LocalEngine` implements `MirrorProvider`
(`engine/mirror_port.py`), and the CLI wiring connects the two. Only `core` types
cross the port.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, Protocol

from tenex_tui.core.backend import ChatBackend
from tenex_tui.core.models import Attachment, Message, Thread
from tenex_tui.core.sync import (
    ApplyResult,
    DeletedMessage,
    MessageChange,
    OutboxEntry,
    OutboxStatus,
    SyncState,
)


class MirrorPort(Protocol):
    """One mirrored remote workspace in the local store, and its outbox.

    Every write is one local transaction: a feed page with its cursor, an offline
    action with its optimistic effect, an action's outcome with its status.
    """

    @property
    def workspace_id(self) -> str:
        """The local workspace holding the mirror (`<remote workspace>@<host>`)."""
        ...

    @property
    def user_id(self) -> str:
        """The remote user whose threads are mirrored."""
        ...

    @property
    def backend(self) -> ChatBackend:
        """The mirror as a `ChatBackend`: reading and searching work offline."""
        ...

    async def ensure(
        self,
        *,
        remote_base: str,
        remote_workspace_id: str,
        workspace_name: str | None = None,
    ) -> SyncState:
        """Create the mirror's scope and sync state if missing."""
        ...

    async def state(self) -> SyncState | None:
        """The sync state, or None before the first sync."""
        ...

    async def record_outcome(
        self, error: str | None, *, pulled: bool = False
    ) -> SyncState:
        """Remember a sync attempt, its error (None: none), and whether the pull
        finished (then `last_sync_at` moves)."""
        ...

    async def reset_cursors(self) -> None:
        """Forget the feed positions: the next pull is a full one."""
        ...

    async def apply_threads(
        self, threads: Sequence[Thread], deleted: Sequence[str], cursor: str | None
    ) -> ApplyResult:
        """Apply a thread-feed page and store its cursor (None: keep the cursor)."""
        ...

    async def apply_messages(
        self,
        messages: Sequence[MessageChange],
        deleted: Sequence[DeletedMessage],
        cursor: str | None,
    ) -> ApplyResult:
        """Apply a message-feed page and store its cursor; nothing is written when a
        message names a thread the mirror lacks (see `ApplyResult.missing_threads`)."""
        ...

    async def prune(
        self, keep_threads: Iterable[str], keep_messages: Iterable[str]
    ) -> int:
        """After a full pull: delete mirrored rows the remote no longer has."""
        ...

    async def enqueue_update(
        self, thread_id: str, fields: dict[str, Any], key: str
    ) -> tuple[OutboxEntry, Thread]:
        """Queue a rename/pin/archive; the mirror shows it at once.

        Raises:
            NotFound: When the thread is not in the mirror.
            InvalidRequest: For a bad title.
        """
        ...

    async def enqueue_delete(self, thread_id: str, key: str) -> OutboxEntry | None:
        """Queue a deletion (None when the thread never reached the remote).

        Raises:
            NotFound: When the thread is not in the mirror.
        """
        ...

    async def enqueue_create(
        self, fields: dict[str, Any], key: str
    ) -> tuple[OutboxEntry, Thread]:
        """Queue a new thread; it shows at once under a local id."""
        ...

    async def enqueue_send(
        self,
        thread_id: str,
        payload: dict[str, Any],
        attachments: Sequence[Attachment],
        key: str,
    ) -> tuple[OutboxEntry, Message]:
        """Queue a message; a placeholder shows at once at the thread's end.

        Raises:
            NotFound: When the thread is not in the mirror.
        """
        ...

    async def entries(
        self, statuses: Sequence[OutboxStatus] = ("pending",), limit: int = 10_000
    ) -> list[OutboxEntry]:
        """Outbox actions with these statuses, in replay order (at most `limit`)."""
        ...

    async def counts(self) -> dict[str, int]:
        """Outbox actions per status."""
        ...

    async def complete(
        self,
        entry_id: str,
        *,
        status: OutboxStatus = "done",
        thread: Thread | None = None,
        messages: Sequence[Message] = (),
        remap: tuple[str, str] | None = None,
        note: str | None = None,
    ) -> OutboxEntry:
        """Settle an action and apply its outcome to the mirror, atomically."""
        ...

    async def defer(
        self, entry_id: str, error: str, next_attempt_at: str
    ) -> OutboxEntry:
        """Record a failed attempt; try again after `next_attempt_at` (RFC 3339)."""
        ...

    async def fail(self, entry_id: str, error: str) -> OutboxEntry:
        """Give up on an action the remote refused for good (kept, with the reason)."""
        ...

    async def get_thread(self, thread_id: str) -> Thread:
        """A mirrored thread.

        Raises:
            NotFound: When it is not in the mirror.
        """
        ...


class MirrorProvider(Protocol):
    """Where mirrors live (the local engine)."""

    def mirror(self, workspace_id: str, user_id: str) -> MirrorPort:
        """The mirror kept in local workspace `workspace_id` for remote `user_id`."""
        ...

    async def find_mirrors(self, remote_base: str) -> list[SyncState]:
        """The mirrors of a remote API base, most recently synced first."""
        ...
