"""The rows of a mirror: upserting remote threads and messages, and what pending
offline actions protect from a pull (the base of `store_mirror` and `store_outbox`).

See `store_mirror.py` for the storage model of a mirror.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from tenex_tui.core.models import Thread, format_timestamp
from tenex_tui.core.sync import MessageChange, OutboxEntry, SyncState
from tenex_tui.engine.store_base import Scope, StoreBase, dumps, thread_from_row

PLACEHOLDER_SEQ = 1 << 40
"""Placeholder messages sit at `PLACEHOLDER_SEQ + 2 × outbox number` (and the server's
answer to a replayed send at that slot and the next), after any position a server will
ever give (positions count from 1 per thread)."""
LOCAL_THREAD_PREFIX = "thr_local"
LOCAL_MESSAGE_PREFIX = "msg_local"
STILL_STREAMING = (
    "The reply was still being written on the remote workspace at the last sync."
)
UPDATE_FIELDS = ("title", "pinned", "archived")
"""What an offline update may change."""

STATE_COLUMNS = (
    "workspace_id, user_id, remote_base, remote_workspace_id, remote_user_id, "
    "threads_cursor, messages_cursor, last_sync_at, last_attempt_at, last_error"
)
OUTBOX_COLUMNS = (
    "id, num, kind, thread_id, payload, idempotency_key, status, attempts, "
    "next_attempt_at, last_error, created_at, done_at"
)


@dataclass
class Pending:
    """What the pending outbox actions of a mirror protect from a pull."""

    deleting: set[str] = field(default_factory=set)
    """Threads deleted offline: not brought back."""
    sending: set[str] = field(default_factory=set)
    """Threads with an unsent message: not removed."""
    updates: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)
    """`(entry id, thread id, fields)` of pending edits, in order."""


def entry_from_row(row: sqlite3.Row) -> OutboxEntry:
    return OutboxEntry.model_validate(
        {
            "id": row["id"],
            "num": row["num"],
            "kind": row["kind"],
            "thread_id": row["thread_id"],
            "payload": json.loads(row["payload"] or "{}"),
            "idempotency_key": row["idempotency_key"],
            "status": row["status"],
            "attempts": row["attempts"],
            "next_attempt_at": row["next_attempt_at"],
            "last_error": row["last_error"],
            "created_at": row["created_at"],
            "done_at": row["done_at"],
        }
    )


def state_from_row(row: sqlite3.Row) -> SyncState:
    return SyncState.model_validate(dict(row))


class MirrorRows:
    """One mirror's scope over the store, and the row-level helpers (DB thread)."""

    def __init__(self, store: StoreBase, scope: Scope) -> None:
        self._store = store
        self.scope = scope

    @property
    def _conn(self) -> sqlite3.Connection:
        return self._store.conn

    # -- what pending actions protect -------------------------------------------------

    def _pending_rows(self) -> list[sqlite3.Row]:
        return self._conn.execute(
            f"SELECT {OUTBOX_COLUMNS} FROM outbox WHERE workspace_id = ? "
            "AND user_id = ? AND status = 'pending' ORDER BY num",
            self.scope.pair,
        ).fetchall()

    def _protected(self) -> Pending:
        pending = Pending()
        for row in self._pending_rows():
            if row["kind"] == "delete":
                pending.deleting.add(row["thread_id"])
            elif row["kind"] == "send":
                pending.sending.add(row["thread_id"])
            elif row["kind"] == "update":
                payload = json.loads(row["payload"] or "{}")
                pending.updates.append(
                    (row["id"], row["thread_id"], dict(payload.get("fields") or {}))
                )
        return pending

    def _overlay(
        self, pending: Pending, thread_ids: set[str], *, skip: str | None = None
    ) -> None:
        # Pending offline edits stay visible over what the remote says, in the order
        # they were made, until their replay settles them.
        for entry_id, thread_id, fields in pending.updates:
            if thread_id in thread_ids and entry_id != skip:
                self._set_fields(thread_id, fields, touch=False)

    def _set_fields(
        self, thread_id: str, fields: dict[str, Any], *, touch: bool
    ) -> None:
        sets, values = [], []
        for name in UPDATE_FIELDS:
            if name in fields and fields[name] is not None:
                sets.append(f"{name} = ?")
                value = fields[name]
                values.append(int(value) if isinstance(value, bool) else value)
        if touch:
            sets.append("updated_at = ?")
            values.append(self._store.now())
        if sets:
            self._conn.execute(
                f"UPDATE threads SET {', '.join(sets)} "
                "WHERE workspace_id = ? AND user_id = ? AND id = ?",
                (*values, *self.scope.pair, thread_id),
            )

    # -- upserts ---------------------------------------------------------------------

    def _upsert_thread(self, thread: Thread) -> None:
        last_reply = (
            (thread.last_message_at or thread.updated_at) if thread.unread else None
        )
        sort_at = thread.last_message_at or thread.created_at
        self._conn.execute(
            """INSERT INTO threads (workspace_id, id, user_id, title, agent,
                system_prompt, context, model, pinned, archived, created_at, updated_at,
                last_message_at, sort_at, message_count, last_status, last_reply_at,
                read_at)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, NULL)
            ON CONFLICT (workspace_id, id) DO UPDATE SET
                title = excluded.title, agent = excluded.agent,
                system_prompt = excluded.system_prompt, context = excluded.context,
                model = excluded.model, pinned = excluded.pinned,
                archived = excluded.archived, created_at = excluded.created_at,
                updated_at = excluded.updated_at,
                last_message_at = excluded.last_message_at, sort_at = excluded.sort_at,
                message_count = excluded.message_count,
                last_status = excluded.last_status,
                last_reply_at = excluded.last_reply_at, read_at = NULL
            WHERE threads.user_id = excluded.user_id""",
            (
                self.scope.workspace_id,
                thread.id,
                self.scope.user_id,
                thread.title,
                thread.agent,
                thread.system_prompt,
                thread.context.model_dump_json(),
                thread.model,
                int(thread.pinned),
                int(thread.archived),
                format_timestamp(thread.created_at),
                format_timestamp(thread.updated_at),
                _ts(thread.last_message_at),
                format_timestamp(sort_at),
                thread.message_count,
                thread.last_status,
                _ts(last_reply),
            ),
        )

    def _upsert_messages(
        self, messages: Sequence[MessageChange], *, keep_seq: bool = False
    ) -> None:
        # One `executemany` per statement: a first sync writes 100,000 rows.
        conn = self._conn
        ws, user = self.scope.pair
        # The remote owns positions in its threads: a different row at a position
        # is stale (its deletion is on its way), and must not block the unique index.
        conn.executemany(
            "DELETE FROM messages WHERE workspace_id = ? AND thread_id = ? AND seq = ? "
            "AND id != ?",
            [(ws, m.thread_id, m.seq, m.id) for m in messages],
        )
        # A provisional position (a replayed send, before the feed brings the real
        # one) never moves a row that already has its real position.
        seq_update = "seq" if keep_seq else "excluded.seq"
        conn.executemany(
            f"""INSERT INTO messages (workspace_id, id, thread_id, user_id, seq, role,
                content, status, tool_calls, attachments, model, usage, error,
                created_at, completed_at)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
            ON CONFLICT (workspace_id, id) DO UPDATE SET
                seq = {seq_update}, role = excluded.role, content = excluded.content,
                status = excluded.status, tool_calls = excluded.tool_calls,
                attachments = excluded.attachments, model = excluded.model,
                usage = excluded.usage, error = excluded.error,
                created_at = excluded.created_at, completed_at = excluded.completed_at
            WHERE messages.thread_id = excluded.thread_id""",
            [_message_values(ws, user, m) for m in messages],
        )

    def _present_threads(self, thread_ids: Iterable[str]) -> set[str]:
        wanted = sorted(set(thread_ids))
        present: set[str] = set()
        for start in range(0, len(wanted), 500):
            chunk = wanted[start : start + 500]
            marks = ", ".join("?" for _ in chunk)
            rows = self._conn.execute(
                f"SELECT id FROM threads WHERE workspace_id = ? AND user_id = ? "
                f"AND id IN ({marks})",
                (*self.scope.pair, *chunk),
            ).fetchall()
            present.update(str(r["id"]) for r in rows)
        return present

    def _thread(self, thread_id: str) -> sqlite3.Row:
        return self._store.thread_row(self.scope, thread_id)

    def thread_row(self, thread_id: str) -> Thread:
        """A mirrored thread.

        Raises:
            NotFound: When it is not in the mirror.
        """
        return thread_from_row(self._thread(thread_id))


def _ts(value: Any) -> str | None:
    return format_timestamp(value) if value is not None else None


def _message_values(ws: str, user: str, message: MessageChange) -> tuple[Any, ...]:
    status, error = message.status, message.error
    if status == "streaming":
        # The mirror never streams: a reply unfinished at the last sync shows as such.
        status, error = "interrupted", STILL_STREAMING
    calls = message.tool_calls
    attachments = message.attachments
    return (
        ws,
        message.id,
        message.thread_id,
        user,
        message.seq,
        message.role,
        message.content,
        status,
        dumps([c.model_dump(mode="json") for c in calls]) if calls else "[]",
        dumps([a.model_dump(mode="json") for a in attachments])
        if attachments
        else "[]",
        message.model,
        message.usage.model_dump_json() if message.usage else None,
        error,
        format_timestamp(message.created_at),
        _ts(message.completed_at),
    )
