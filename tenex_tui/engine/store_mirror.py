"""The local mirror of a remote workspace, and its offline outbox (the client side of sync).

A mirror is an ordinary scope of the local store: its workspace id is
`<remote workspace>@<host>` (so it can never be one of this machine's own workspaces)
and its user is the remote user. Threads and messages keep their remote ids; the
composite `(workspace_id, id)` keys mean an id arriving from a remote can never
overwrite a row of another workspace. Reading and searching the mirror is reading and
searching that scope (`LocalEngine.for_scope`), so remote threads work offline.

Each page of a remote feed is applied in one write transaction together with the feed
position, so a sync killed at any point resumes at the last page it committed, and
applying a page twice changes nothing.

What the user does offline goes into `outbox` and is shown at once (optimistic): a
rename changes the mirrored title, a send adds a placeholder message
(`msg_local_…`, positioned after every remote message), a thread created offline gets
a `thr_local_…` id. While an action is pending, pulls keep it visible: a pending
rename is re-applied over the remote title, a thread deleted locally is not brought
back, a thread with an unsent message survives its remote deletion (the replay
recreates it). Completing an action swaps the placeholder for the server's rows and
marks the action done in the same transaction.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from tenex_tui.core.errors import NotFound
from tenex_tui.core.models import Thread
from tenex_tui.core.sync import ApplyResult, DeletedMessage, MessageChange, SyncState
from tenex_tui.engine.store_mirror_rows import (
    LOCAL_MESSAGE_PREFIX,
    LOCAL_THREAD_PREFIX,
    STATE_COLUMNS,
    state_from_row,
)
from tenex_tui.engine.store_outbox import OutboxMixin


class MirrorStore(OutboxMixin):
    """One mirrored remote workspace in the local store (runs on the DB thread)."""

    # -- state ---------------------------------------------------------------------

    def ensure(
        self,
        *,
        remote_base: str,
        remote_workspace_id: str,
        remote_user_id: str,
        workspace_name: str | None,
    ) -> SyncState:
        """Create the mirror's scope and state if missing (and name the workspace)."""
        now = self._store.now()
        ws, user = self.scope.pair
        with self._store.sc.write() as conn:
            conn.execute(
                "INSERT OR IGNORE INTO workspaces (id, name, created_at) VALUES (?, ?, ?)",
                (ws, workspace_name or "", now),
            )
            if workspace_name:
                conn.execute(
                    "UPDATE workspaces SET name = ? WHERE id = ?", (workspace_name, ws)
                )
            conn.execute(
                "INSERT OR IGNORE INTO users (workspace_id, id, name, created_at) "
                "VALUES (?, ?, '', ?)",
                (ws, user, now),
            )
            conn.execute(
                "INSERT OR IGNORE INTO sync_state (workspace_id, user_id, remote_base, "
                "remote_workspace_id, remote_user_id) VALUES (?, ?, ?, ?, ?)",
                (ws, user, remote_base, remote_workspace_id, remote_user_id),
            )
            row = conn.execute(
                f"SELECT {STATE_COLUMNS} FROM sync_state "
                "WHERE workspace_id = ? AND user_id = ?",
                (ws, user),
            ).fetchone()
            return state_from_row(row)

    def state(self) -> SyncState | None:
        """The mirror's sync state, or None before its first sync."""
        row = self._conn.execute(
            f"SELECT {STATE_COLUMNS} FROM sync_state "
            "WHERE workspace_id = ? AND user_id = ?",
            self.scope.pair,
        ).fetchone()
        return state_from_row(row) if row is not None else None

    def record_outcome(self, error: str | None, pulled: bool) -> SyncState:
        """Remember a sync attempt: its time, its error, and whether the pull finished
        (`last_sync_at` is when the mirror was last brought up to date).

        Raises:
            NotFound: When the mirror has no state yet (`ensure` first).
        """
        now = self._store.now()
        with self._store.sc.write() as conn:
            conn.execute(
                "UPDATE sync_state SET last_attempt_at = ?1, last_error = ?2, "
                "last_sync_at = CASE WHEN ?3 THEN ?1 ELSE last_sync_at END "
                "WHERE workspace_id = ?4 AND user_id = ?5",
                (now, error, int(pulled), *self.scope.pair),
            )
        state = self.state()
        if state is None:
            raise NotFound("this mirror has no sync state")
        return state

    def reset_cursors(self) -> None:
        """Forget the feed positions: the next sync starts over (a full resync)."""
        with self._store.sc.write() as conn:
            conn.execute(
                "UPDATE sync_state SET threads_cursor = NULL, messages_cursor = NULL "
                "WHERE workspace_id = ? AND user_id = ?",
                self.scope.pair,
            )

    def _save_cursor(self, column: str, cursor: str) -> None:
        self._conn.execute(
            f"UPDATE sync_state SET {column} = ? WHERE workspace_id = ? AND user_id = ?",
            (cursor, *self.scope.pair),
        )

    # -- pulling ---------------------------------------------------------------------

    def apply_threads(
        self, threads: Sequence[Thread], deleted: Sequence[str], cursor: str | None
    ) -> ApplyResult:
        """Apply one page of the thread feed and store its cursor, atomically."""
        result = ApplyResult()
        with self._store.sc.write():
            pending = self._protected()
            upserted: set[str] = set()
            skipped = 0
            for thread in threads:
                if thread.id in pending.deleting:
                    skipped += 1
                    continue
                self._upsert_thread(thread)
                upserted.add(thread.id)
            self._overlay(pending, upserted)
            removed = 0
            for thread_id in deleted:
                if thread_id in pending.sending:
                    # An unsent message lives here: keep the thread, the replay
                    # recreates it remotely (a message is never lost).
                    skipped += 1
                    continue
                removed += self._conn.execute(
                    "DELETE FROM threads WHERE workspace_id = ? AND user_id = ? "
                    "AND id = ?",
                    (*self.scope.pair, thread_id),
                ).rowcount
            if cursor is not None:
                self._save_cursor("threads_cursor", cursor)
            result = ApplyResult(
                upserted=len(upserted), deleted=removed, skipped=skipped
            )
        return result

    def apply_messages(
        self,
        messages: Sequence[MessageChange],
        deleted: Sequence[DeletedMessage],
        cursor: str | None,
    ) -> ApplyResult:
        """Apply one page of the message feed and store its cursor, atomically.

        Nothing is written when a message names a thread the mirror lacks: the
        result lists those threads, and the caller fetches them and applies the page
        again (so the cursor never passes a message that was not stored).
        """
        with self._store.sc.write():
            deleting = self._protected().deleting
            present = self._present_threads(m.thread_id for m in messages)
            missing = sorted({m.thread_id for m in messages} - present - deleting)
            if missing:
                return ApplyResult(missing_threads=missing)
            kept = [m for m in messages if m.thread_id in present]
            self._upsert_messages(kept)
            upserted, skipped = len(kept), len(messages) - len(kept)
            removed = 0
            for gone in deleted:
                removed += self._conn.execute(
                    "DELETE FROM messages WHERE workspace_id = ? AND user_id = ? "
                    "AND id = ?",
                    (*self.scope.pair, gone.id),
                ).rowcount
            if cursor is not None:
                self._save_cursor("messages_cursor", cursor)
            return ApplyResult(upserted=upserted, deleted=removed, skipped=skipped)

    def prune(self, keep_threads: Iterable[str], keep_messages: Iterable[str]) -> int:
        """After a full resync: delete mirrored rows the remote no longer has.

        Local placeholders (threads created offline, unsent messages) and threads
        with a pending action stay.

        Returns:
            How many threads and messages were removed.
        """
        with self._store.sc.write() as conn:
            pending = self._protected()
            conn.execute(
                "CREATE TEMP TABLE IF NOT EXISTS sync_keep (id TEXT PRIMARY KEY)"
            )
            conn.execute("DELETE FROM sync_keep")
            keep = set(keep_threads) | pending.sending | pending.deleting
            keep |= {thread_id for _, thread_id, _ in pending.updates}
            conn.executemany(
                "INSERT OR IGNORE INTO sync_keep (id) VALUES (?)", ((i,) for i in keep)
            )
            removed = conn.execute(
                "DELETE FROM threads WHERE workspace_id = ? AND user_id = ? "
                "AND id NOT IN (SELECT id FROM sync_keep) "
                f"AND id NOT LIKE '{LOCAL_THREAD_PREFIX}%'",
                self.scope.pair,
            ).rowcount
            conn.execute("DELETE FROM sync_keep")
            conn.executemany(
                "INSERT OR IGNORE INTO sync_keep (id) VALUES (?)",
                ((i,) for i in keep_messages),
            )
            removed += conn.execute(
                "DELETE FROM messages WHERE workspace_id = ? AND user_id = ? "
                "AND id NOT IN (SELECT id FROM sync_keep) "
                f"AND id NOT LIKE '{LOCAL_MESSAGE_PREFIX}%'",
                self.scope.pair,
            ).rowcount
            conn.execute("DELETE FROM sync_keep")
            return removed
