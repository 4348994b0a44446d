"""The offline outbox of a mirror: queuing actions with their optimistic effect, and
settling them with the server's answer (see `store_mirror.py` for the whole model)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from tenex_tui.core.errors import NotFound
from tenex_tui.core.models import Attachment, Message, Thread
from tenex_tui.core.sync import MessageChange, OutboxEntry, OutboxKind, OutboxStatus
from tenex_tui.engine.store_base import (
    dumps,
    message_from_row,
    thread_from_row,
    validate_title,
)
from tenex_tui.engine.store_mirror_rows import (
    LOCAL_MESSAGE_PREFIX,
    LOCAL_THREAD_PREFIX,
    OUTBOX_COLUMNS,
    PLACEHOLDER_SEQ,
    UPDATE_FIELDS,
    MirrorRows,
    entry_from_row,
)


class OutboxMixin(MirrorRows):
    """Queuing and settling offline actions."""

    def _insert_op(
        self, kind: OutboxKind, thread_id: str, payload: dict[str, Any], key: str
    ) -> int:
        op_id = self._store.clock.new_id("op")
        row = self._conn.execute(
            "INSERT INTO outbox (workspace_id, user_id, id, kind, thread_id, payload, "
            "idempotency_key, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING num",
            (
                *self.scope.pair,
                op_id,
                kind,
                thread_id,
                dumps(payload),
                key,
                self._store.now(),
            ),
        ).fetchone()
        return int(row["num"])

    def _entry_by_num(self, num: int) -> OutboxEntry:
        row = self._conn.execute(
            f"SELECT {OUTBOX_COLUMNS} FROM outbox WHERE workspace_id = ? "
            "AND user_id = ? AND num = ?",
            (*self.scope.pair, num),
        ).fetchone()
        return entry_from_row(row)

    def enqueue_update(
        self, thread_id: str, fields: dict[str, Any], key: str
    ) -> tuple[OutboxEntry, Thread]:
        """Queue a rename/pin/archive and show it at once.

        Raises:
            NotFound: When the thread is not in the mirror.
            InvalidRequest: For a bad title.
        """
        fields = {
            k: v for k, v in fields.items() if k in UPDATE_FIELDS and v is not None
        }
        if "title" in fields:
            validate_title(str(fields["title"]))
        with self._store.sc.write():
            row = self._thread(thread_id)
            base = {
                "title": row["title"],
                "pinned": bool(row["pinned"]),
                "archived": bool(row["archived"]),
            }
            num = self._insert_op(
                "update",
                thread_id,
                {"fields": fields, "base": {k: base[k] for k in fields}},
                key,
            )
            self._set_fields(thread_id, fields, touch=True)
            return self._entry_by_num(num), thread_from_row(self._thread(thread_id))

    def enqueue_delete(self, thread_id: str, key: str) -> OutboxEntry | None:
        """Queue a deletion and remove the thread from the mirror at once.

        A thread that only exists locally (created offline, never replayed) is simply
        removed, with the actions queued for it; nothing is sent then.

        Returns:
            The queued action, or None when nothing needs sending.

        Raises:
            NotFound: When the thread is not in the mirror.
        """
        with self._store.sc.write() as conn:
            self._thread(thread_id)
            num: int | None = None
            if not thread_id.startswith(LOCAL_THREAD_PREFIX):
                num = self._insert_op("delete", thread_id, {}, key)
            conn.execute(
                "UPDATE outbox SET status = 'superseded', done_at = ?, "
                "last_error = 'the thread was deleted' WHERE workspace_id = ? "
                "AND user_id = ? AND thread_id = ? AND status = 'pending' "
                "AND kind != 'delete'",
                (self._store.now(), *self.scope.pair, thread_id),
            )
            conn.execute(
                "DELETE FROM threads WHERE workspace_id = ? AND user_id = ? AND id = ?",
                (*self.scope.pair, thread_id),
            )
            return self._entry_by_num(num) if num is not None else None

    def enqueue_create(
        self, fields: dict[str, Any], key: str
    ) -> tuple[OutboxEntry, Thread]:
        """Queue a new thread and show it at once under a `thr_local_…` id."""
        thread_id = self._store.clock.new_id(LOCAL_THREAD_PREFIX)
        now = self._store.now()
        context = fields.get("context") or {}
        with self._store.sc.write() as conn:
            conn.execute(
                """INSERT INTO threads (workspace_id, id, user_id, title, agent,
                    system_prompt, context, model, created_at, updated_at, sort_at)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
                (
                    self.scope.workspace_id,
                    thread_id,
                    self.scope.user_id,
                    fields.get("title") or "",
                    fields.get("agent"),
                    fields.get("system_prompt"),
                    dumps(context),
                    fields.get("model"),
                    now,
                    now,
                    now,
                ),
            )
            num = self._insert_op("create", thread_id, {"thread": fields}, key)
            return self._entry_by_num(num), thread_from_row(self._thread(thread_id))

    def enqueue_send(
        self,
        thread_id: str,
        payload: dict[str, Any],
        attachments: Sequence[Attachment],
        key: str,
    ) -> tuple[OutboxEntry, Message]:
        """Queue a message and show it at once as a placeholder after the thread's end.

        Queuing the same key twice in a thread (a retried send) returns the first one.

        Raises:
            NotFound: When the thread is not in the mirror.
        """
        message_id = self._store.clock.new_id(LOCAL_MESSAGE_PREFIX)
        now = self._store.now()
        with self._store.sc.write() as conn:
            self._thread(thread_id)
            again = conn.execute(
                f"SELECT {OUTBOX_COLUMNS} FROM outbox WHERE workspace_id = ? "
                "AND user_id = ? AND thread_id = ? AND kind = 'send' "
                "AND idempotency_key = ? AND status = 'pending'",
                (*self.scope.pair, thread_id, key),
            ).fetchone()
            if again is not None:
                first = entry_from_row(again)
                placeholder = str(first.payload.get("placeholder_id") or "")
                return first, message_from_row(
                    self._store.message_row(self.scope, thread_id, placeholder)
                )
            num = self._insert_op(
                "send", thread_id, {**payload, "placeholder_id": message_id}, key
            )
            conn.execute(
                """INSERT INTO messages (workspace_id, id, thread_id, user_id, seq,
                    role, content, status, attachments, created_at, completed_at)
                VALUES (?, ?, ?, ?, ?, 'user', ?, 'complete', ?, ?, ?)""",
                (
                    self.scope.workspace_id,
                    message_id,
                    thread_id,
                    self.scope.user_id,
                    PLACEHOLDER_SEQ + 2 * num,
                    str(payload.get("content") or ""),
                    dumps([a.model_dump(mode="json") for a in attachments]),
                    now,
                    now,
                ),
            )
            conn.execute(
                "UPDATE threads SET message_count = message_count + 1, "
                "last_message_at = ?1, sort_at = ?1, updated_at = ?1 "
                "WHERE workspace_id = ?2 AND user_id = ?3 AND id = ?4",
                (now, *self.scope.pair, thread_id),
            )
            message = message_from_row(
                self._store.message_row(self.scope, thread_id, message_id)
            )
            return self._entry_by_num(num), message

    def entries(
        self, statuses: Sequence[OutboxStatus] = ("pending",), limit: int = 10_000
    ) -> list[OutboxEntry]:
        """The mirror's outbox actions with these statuses, in replay order."""
        marks = ", ".join("?" for _ in statuses)
        rows = self._conn.execute(
            f"SELECT {OUTBOX_COLUMNS} FROM outbox WHERE workspace_id = ? "
            f"AND user_id = ? AND status IN ({marks}) ORDER BY num LIMIT ?",
            (*self.scope.pair, *statuses, limit),
        ).fetchall()
        return [entry_from_row(r) for r in rows]

    def counts(self) -> dict[str, int]:
        """How many actions are in each status."""
        rows = self._conn.execute(
            "SELECT status, count(*) AS n FROM outbox WHERE workspace_id = ? "
            "AND user_id = ? GROUP BY status",
            self.scope.pair,
        ).fetchall()
        return {str(r["status"]): int(r["n"]) for r in rows}

    def complete(
        self,
        entry_id: str,
        *,
        status: OutboxStatus = "done",
        thread: Thread | None = None,
        messages: Sequence[Message] = (),
        remap: tuple[str, str] | None = None,
        note: str | None = None,
    ) -> OutboxEntry:
        """Record an action's outcome and its effect on the mirror, atomically.

        Args:
            entry_id: The action.
            status: `done` (after a 2xx) or `superseded` (a remote change won).
            thread: The remote thread as the server answered (upserted, with the
                other pending actions re-applied on top).
            messages: The server's messages that replace a send's placeholder (at a
                provisional position after the thread's end when they carry none;
                the next pull brings the real one).
            remap: `(local id, remote id)`: the thread created offline (or recreated)
                now exists remotely under this id; its rows and later actions move.
            note: Why, for a superseded action.

        Raises:
            NotFound: When the action is not in this mirror's outbox.
        """
        with self._store.sc.write() as conn:
            row = conn.execute(
                f"SELECT {OUTBOX_COLUMNS} FROM outbox WHERE workspace_id = ? "
                "AND user_id = ? AND id = ?",
                (*self.scope.pair, entry_id),
            ).fetchone()
            if row is None:
                raise NotFound("outbox entry not found")
            entry = entry_from_row(row)
            if thread is not None:
                self._upsert_thread(thread)
            if remap is not None:
                self._remap(*remap)
            if entry.kind == "send":
                placeholder = str(entry.payload.get("placeholder_id") or "")
                conn.execute(
                    "DELETE FROM messages WHERE workspace_id = ? AND user_id = ? "
                    "AND id = ?",
                    (*self.scope.pair, placeholder),
                )
            present = self._present_threads(m.thread_id for m in messages)
            slot = PLACEHOLDER_SEQ + 2 * entry.num
            for index, message in enumerate(messages):
                if message.thread_id not in present:
                    continue
                if isinstance(message, MessageChange):
                    self._upsert_messages([message])
                else:
                    provisional = MessageChange.model_validate(
                        {**message.model_dump(), "seq": slot + index}
                    )
                    self._upsert_messages([provisional], keep_seq=True)
            if thread is not None:
                self._overlay(self._protected(), {thread.id}, skip=entry_id)
            conn.execute(
                "UPDATE outbox SET status = ?, done_at = ?, last_error = ?, "
                "next_attempt_at = NULL WHERE workspace_id = ? AND user_id = ? "
                "AND id = ?",
                (status, self._store.now(), note, *self.scope.pair, entry_id),
            )
            return entry_from_row(
                conn.execute(
                    f"SELECT {OUTBOX_COLUMNS} FROM outbox WHERE workspace_id = ? "
                    "AND user_id = ? AND id = ?",
                    (*self.scope.pair, entry_id),
                ).fetchone()
            )

    def _remap(self, local_id: str, remote_id: str) -> None:
        ws, user = self.scope.pair
        conn = self._conn
        conn.execute(
            "UPDATE messages SET thread_id = ? WHERE workspace_id = ? AND user_id = ? "
            "AND thread_id = ?",
            (remote_id, ws, user, local_id),
        )
        conn.execute(
            "DELETE FROM threads WHERE workspace_id = ? AND user_id = ? AND id = ?",
            (ws, user, local_id),
        )
        conn.execute(
            "UPDATE outbox SET thread_id = ? WHERE workspace_id = ? AND user_id = ? "
            "AND thread_id = ?",
            (remote_id, ws, user, local_id),
        )

    def defer(self, entry_id: str, error: str, next_attempt_at: str) -> OutboxEntry:
        """Record a failed attempt; the action is tried again after `next_attempt_at`.

        Raises:
            NotFound: When the action is not in this mirror's outbox.
        """
        with self._store.sc.write() as conn:
            row = conn.execute(
                "UPDATE outbox SET attempts = attempts + 1, last_error = ?, "
                "next_attempt_at = ? WHERE workspace_id = ? AND user_id = ? AND id = ? "
                f"RETURNING {OUTBOX_COLUMNS}",
                (error, next_attempt_at, *self.scope.pair, entry_id),
            ).fetchone()
            if row is None:
                raise NotFound("outbox entry not found")
            return entry_from_row(row)

    def fail(self, entry_id: str, error: str) -> OutboxEntry:
        """Give up on an action the remote refused for good; a placeholder message
        keeps its text and shows why it was not sent.

        Raises:
            NotFound: When the action is not in this mirror's outbox.
        """
        with self._store.sc.write() as conn:
            row = conn.execute(
                "UPDATE outbox SET status = 'failed', attempts = attempts + 1, "
                "last_error = ?, done_at = ? WHERE workspace_id = ? AND user_id = ? "
                f"AND id = ? RETURNING {OUTBOX_COLUMNS}",
                (error, self._store.now(), *self.scope.pair, entry_id),
            ).fetchone()
            if row is None:
                raise NotFound("outbox entry not found")
            entry = entry_from_row(row)
            if entry.kind == "send":
                conn.execute(
                    "UPDATE messages SET error = ? WHERE workspace_id = ? "
                    "AND user_id = ? AND id = ?",
                    (
                        f"Not sent: {error}",
                        *self.scope.pair,
                        str(entry.payload.get("placeholder_id") or ""),
                    ),
                )
            return entry
