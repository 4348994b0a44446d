"""Sync on the engine's side: the change feeds it serves, and the mirrors it keeps.

`SyncOperations` is a mixin of `LocalEngine`:

- as a server, `sync_threads` / `sync_messages` read the change feeds of the view's
  scope (`store_sync.py`), for `GET /sync/threads` and `GET /sync/messages`;
- as a client, `mirror(...)` gives an `EngineMirrorPort`: one mirrored remote workspace
  in this database and its outbox (`store_mirror.py`). It has the shape of the
  `remote.sync_port.MirrorPort` protocol, which the remote package's `SyncService` and
  `MirroredBackend` use; engine and remote never import each other, and only `core`
  types cross between them.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from tenex_tui.core.backend import ChatBackend
from tenex_tui.core.models import Attachment, Message, Thread
from tenex_tui.core.sync import (
    ApplyResult,
    DeletedMessage,
    MessageChange,
    MessageChanges,
    OutboxEntry,
    OutboxStatus,
    SyncState,
    ThreadChanges,
)
from tenex_tui.engine.engine_core import EngineCore, EngineView
from tenex_tui.engine.store import Scope
from tenex_tui.engine.store_mirror import MirrorStore
from tenex_tui.engine.store_sync import SyncFeeds


class EngineMirrorPort:
    """One mirrored remote workspace in the local database, and its outbox.

    Every method runs its SQL on the engine's DB thread; each write is one
    transaction (see `store_mirror.py` for what each one guarantees).
    """

    def __init__(self, core: EngineCore, scope: Scope, backend: ChatBackend) -> None:
        self._core = core
        self._scope = scope
        self._mirror = MirrorStore(core.store, scope)
        self._backend = backend

    def __repr__(self) -> str:
        return f"EngineMirrorPort({self._scope.workspace_id!r})"

    @property
    def workspace_id(self) -> str:
        """The local workspace holding the mirror."""
        return self._scope.workspace_id

    @property
    def user_id(self) -> str:
        """The remote user the mirror belongs to."""
        return self._scope.user_id

    @property
    def backend(self) -> ChatBackend:
        """The mirror as a `ChatBackend` (reading and searching work offline)."""
        return self._backend

    async def ensure(
        self,
        *,
        remote_base: str,
        remote_workspace_id: str,
        workspace_name: str | None = None,
    ) -> SyncState:
        """Create the mirror's scope and sync state if missing."""
        return await self._core.db.run(
            self._mirror.ensure,
            remote_base=remote_base,
            remote_workspace_id=remote_workspace_id,
            remote_user_id=self._scope.user_id,
            workspace_name=workspace_name,
        )

    async def state(self) -> SyncState | None:
        """The sync state, or None before the first sync."""
        return await self._core.db.run(self._mirror.state)

    async def record_outcome(
        self, error: str | None, *, pulled: bool = False
    ) -> SyncState:
        """Remember a sync attempt, its error (None: none), and whether the pull
        finished (then `last_sync_at` moves)."""
        return await self._core.db.run(self._mirror.record_outcome, error, pulled)

    async def reset_cursors(self) -> None:
        """Forget the feed positions (the next sync is a full one)."""
        await self._core.db.run(self._mirror.reset_cursors)

    async def apply_threads(
        self, threads: Sequence[Thread], deleted: Sequence[str], cursor: str | None
    ) -> ApplyResult:
        """Apply a thread-feed page and its cursor in one transaction."""
        return await self._core.db.run(
            self._mirror.apply_threads, threads, deleted, cursor
        )

    async def apply_messages(
        self,
        messages: Sequence[MessageChange],
        deleted: Sequence[DeletedMessage],
        cursor: str | None,
    ) -> ApplyResult:
        """Apply a message-feed page and its cursor in one transaction."""
        return await self._core.db.run(
            self._mirror.apply_messages, messages, deleted, cursor
        )

    async def prune(
        self, keep_threads: Iterable[str], keep_messages: Iterable[str]
    ) -> int:
        """Delete mirrored rows a full resync did not see (placeholders stay)."""
        return await self._core.db.run(
            self._mirror.prune, list(keep_threads), list(keep_messages)
        )

    async def enqueue_update(
        self, thread_id: str, fields: dict[str, Any], key: str
    ) -> tuple[OutboxEntry, Thread]:
        """Queue a rename/pin/archive; the mirror shows it at once."""
        return await self._core.db.run(
            self._mirror.enqueue_update, thread_id, fields, key
        )

    async def enqueue_delete(self, thread_id: str, key: str) -> OutboxEntry | None:
        """Queue a deletion; the thread leaves the mirror at once."""
        return await self._core.db.run(self._mirror.enqueue_delete, thread_id, key)

    async def enqueue_create(
        self, fields: dict[str, Any], key: str
    ) -> tuple[OutboxEntry, Thread]:
        """Queue a new thread; it shows at once under a local id."""
        return await self._core.db.run(self._mirror.enqueue_create, fields, key)

    async def enqueue_send(
        self,
        thread_id: str,
        payload: dict[str, Any],
        attachments: Sequence[Attachment],
        key: str,
    ) -> tuple[OutboxEntry, Message]:
        """Queue a message; a placeholder shows at once at the thread's end."""
        return await self._core.db.run(
            self._mirror.enqueue_send, thread_id, payload, attachments, key
        )

    async def entries(
        self, statuses: Sequence[OutboxStatus] = ("pending",), limit: int = 10_000
    ) -> list[OutboxEntry]:
        """Outbox actions with these statuses, in replay order (at most `limit`)."""
        return await self._core.db.run(self._mirror.entries, tuple(statuses), limit)

    async def counts(self) -> dict[str, int]:
        """Outbox actions per status."""
        return await self._core.db.run(self._mirror.counts)

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
        return await self._core.db.run(
            self._mirror.complete,
            entry_id,
            status=status,
            thread=thread,
            messages=messages,
            remap=remap,
            note=note,
        )

    async def defer(
        self, entry_id: str, error: str, next_attempt_at: str
    ) -> OutboxEntry:
        """Record a failed attempt; try again after `next_attempt_at` (RFC 3339)."""
        return await self._core.db.run(
            self._mirror.defer, entry_id, error, next_attempt_at
        )

    async def fail(self, entry_id: str, error: str) -> OutboxEntry:
        """Give up on an action the remote refused for good."""
        return await self._core.db.run(self._mirror.fail, entry_id, error)

    async def get_thread(self, thread_id: str) -> Thread:
        """A mirrored thread (NotFound when absent)."""
        return await self._core.db.run(self._mirror.thread_row, thread_id)


def _find_mirrors(core: EngineCore, remote_base: str) -> list[SyncState]:
    rows = core.store.conn.execute(
        "SELECT workspace_id, user_id, remote_base, remote_workspace_id, "
        "remote_user_id, threads_cursor, messages_cursor, last_sync_at, "
        "last_attempt_at, last_error FROM sync_state WHERE remote_base = ? "
        "ORDER BY coalesce(last_sync_at, '') DESC, workspace_id",
        (remote_base,),
    ).fetchall()
    return [SyncState.model_validate(dict(r)) for r in rows]


class SyncOperations(EngineView):
    """The change feeds this engine serves, and the mirrors it keeps."""

    async def sync_threads(
        self, cursor: str | None = None, limit: int | None = None
    ) -> ThreadChanges:
        """Threads of this scope changed or deleted since `cursor` (`GET /sync/threads`).

        Raises:
            InvalidRequest: When `limit` is below 1.
            InvalidCursor: When the cursor is not this scope's thread feed.
        """
        feeds = SyncFeeds(self._core.store)
        return await self._run(feeds.thread_changes, self._scope, cursor, limit)

    async def sync_messages(
        self, cursor: str | None = None, limit: int | None = None
    ) -> MessageChanges:
        """Messages of this scope changed or deleted since `cursor` (`GET /sync/messages`).

        Raises:
            InvalidRequest: When `limit` is below 1.
            InvalidCursor: When the cursor is not this scope's message feed.
        """
        feeds = SyncFeeds(self._core.store)
        return await self._run(feeds.message_changes, self._scope, cursor, limit)

    def mirror(self, workspace_id: str, user_id: str) -> EngineMirrorPort:
        """The mirror kept in local workspace `workspace_id` for remote user `user_id`.

        Args:
            workspace_id: The local workspace of the mirror (`<remote ws>@<host>`).
            user_id: The remote user whose threads it mirrors.

        Returns:
            The port; call `ensure` before its first sync.
        """
        scope = Scope(workspace_id, user_id)
        view = type(self)(self._core, scope, owner=False)
        if not isinstance(view, ChatBackend):  # pragma: no cover - a wiring mistake
            raise TypeError("the engine view is not a ChatBackend")
        return EngineMirrorPort(self._core, scope, view)

    async def find_mirrors(self, remote_base: str) -> list[SyncState]:
        """The mirrors of a remote API base, most recently synced first."""
        return await self._run(_find_mirrors, self._core, remote_base)
