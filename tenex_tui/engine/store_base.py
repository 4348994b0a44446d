"""What every store module shares: the scope, row mapping, and the store's base class.

The store is split by domain (threads and messages in `store.py`, replies and events in
`store_replies.py`, search in `store_search.py`, keys in `store_keys.py`); each part is
a mixin over `StoreBase`, and `store.Store` puts them together. Every method runs on the
DB thread and every statement that reads or writes workspace data binds the caller's
`workspace_id` (and `user_id` for thread data): isolation lives here, not in callers.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tenex_tui.core.errors import InvalidRequest, NotFound
from tenex_tui.core.models import (
    Message,
    Thread,
    ThreadContext,
    format_timestamp,
)
from tenex_tui.core.payloads import MAX_TITLE_CHARS
from tenex_tui.engine.clock import Clock
from tenex_tui.engine.cursors import CursorSigner
from tenex_tui.engine.store_db import StoreConnection

THREAD_NOT_FOUND = "thread not found"
MESSAGE_NOT_FOUND = "message not found"
EVENT_NOT_FOUND = "event not found"


@dataclass(frozen=True)
class Scope:
    """Whose data a call may see: one user in one workspace."""

    workspace_id: str
    user_id: str

    @property
    def pair(self) -> tuple[str, str]:
        """`(workspace_id, user_id)`, as cursors bind it."""
        return (self.workspace_id, self.user_id)


THREAD_COLUMNS = (
    "id, workspace_id, user_id, title, agent, system_prompt, context, model, pinned, "
    "archived, draft, created_at, updated_at, last_message_at, message_count, "
    "last_status, sort_at, "
    "(last_reply_at IS NOT NULL AND (read_at IS NULL OR last_reply_at > read_at)) "
    "AS unread"
)

MESSAGE_COLUMNS = (
    "id, thread_id, role, content, status, tool_calls, attachments, model, usage, "
    "error, created_at, completed_at, seq"
)


def thread_from_row(row: sqlite3.Row) -> Thread:
    """Build a `Thread` from a row selected with `THREAD_COLUMNS`."""
    return Thread.model_validate(
        {
            "id": row["id"],
            "workspace_id": row["workspace_id"],
            "user_id": row["user_id"],
            "title": row["title"],
            "agent": row["agent"],
            "system_prompt": row["system_prompt"],
            "context": ThreadContext.model_validate_json(row["context"] or "{}"),
            "model": row["model"],
            "pinned": bool(row["pinned"]),
            "archived": bool(row["archived"]),
            "draft": row["draft"],
            "created_at": row["created_at"],
            "updated_at": row["updated_at"],
            "last_message_at": row["last_message_at"],
            "message_count": row["message_count"],
            "last_status": row["last_status"],
            "unread": bool(row["unread"]),
        }
    )


def message_from_row(row: sqlite3.Row) -> Message:
    """Build a `Message` from a row selected with `MESSAGE_COLUMNS`."""
    usage = row["usage"]
    return Message.model_validate(
        {
            "id": row["id"],
            "thread_id": row["thread_id"],
            "role": row["role"],
            "content": row["content"],
            "status": row["status"],
            "tool_calls": json.loads(row["tool_calls"] or "[]"),
            "attachments": json.loads(row["attachments"] or "[]"),
            "model": row["model"],
            "usage": json.loads(usage) if usage else None,
            "error": row["error"],
            "created_at": row["created_at"],
            "completed_at": row["completed_at"],
        }
    )


def dumps(value: Any) -> str:
    """Compact JSON for a column."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def validate_title(title: str) -> str:
    """Check a thread title: stored as given, at most 200 characters, not blank.

    Raises:
        InvalidRequest: When it is too long or has no visible text.
    """
    if len(title) > MAX_TITLE_CHARS:
        raise InvalidRequest(f"A title is at most {MAX_TITLE_CHARS} characters.")
    if not title.strip():
        raise InvalidRequest("A title needs some visible text.")
    return title


class StoreBase:
    """State and helpers shared by the store's parts (one instance per connection)."""

    def __init__(
        self, connection: StoreConnection, clock: Clock, locks_dir: Path
    ) -> None:
        self.sc = connection
        self.clock = clock
        self.locks_dir = locks_dir
        self.conn.row_factory = sqlite3.Row
        row = self.conn.execute(
            "SELECT value FROM meta WHERE key = 'cursor_secret'"
        ).fetchone()
        self.signer = CursorSigner(bytes.fromhex(row["value"]))

    @property
    def conn(self) -> sqlite3.Connection:
        """The raw connection."""
        return self.sc.conn

    def now(self) -> str:
        """The current time as stored (RFC 3339, fixed width, sorts as text)."""
        return format_timestamp(self.clock.now())

    def thread_row(self, scope: Scope, thread_id: str) -> sqlite3.Row:
        """The thread's row, in scope.

        Raises:
            NotFound: When it is missing or belongs to another workspace or user.
        """
        row: sqlite3.Row | None = self.conn.execute(
            f"SELECT {THREAD_COLUMNS}, next_seq FROM threads "
            "WHERE workspace_id = ? AND user_id = ? AND id = ?",
            (scope.workspace_id, scope.user_id, thread_id),
        ).fetchone()
        if row is None:
            raise NotFound(THREAD_NOT_FOUND)
        return row

    def message_row(
        self, scope: Scope, thread_id: str, message_id: str, extra: str = ""
    ) -> sqlite3.Row:
        """The message's row (with `extra` columns), in scope and in that thread.

        Raises:
            NotFound: When it is missing, in another thread, or in another scope.
        """
        columns = MESSAGE_COLUMNS + (f", {extra}" if extra else "")
        row: sqlite3.Row | None = self.conn.execute(
            f"SELECT {columns} FROM messages "
            "WHERE workspace_id = ? AND user_id = ? AND thread_id = ? AND id = ?",
            (scope.workspace_id, scope.user_id, thread_id, message_id),
        ).fetchone()
        if row is None:
            raise NotFound(MESSAGE_NOT_FOUND)
        return row

    def refresh_thread_stats(self, scope: Scope, thread_id: str) -> None:
        """Recompute a thread's counters after messages were removed."""
        self.conn.execute(
            """UPDATE threads SET
                message_count = (SELECT count(*) FROM messages
                    WHERE workspace_id = ?1 AND thread_id = ?2),
                last_message_at = (SELECT max(created_at) FROM messages
                    WHERE workspace_id = ?1 AND thread_id = ?2),
                last_status = (SELECT status FROM messages
                    WHERE workspace_id = ?1 AND thread_id = ?2 AND role = 'assistant'
                    ORDER BY seq DESC LIMIT 1)
            WHERE workspace_id = ?1 AND id = ?2""",
            (scope.workspace_id, thread_id),
        )
        self.conn.execute(
            "UPDATE threads SET sort_at = coalesce(last_message_at, created_at) "
            "WHERE workspace_id = ? AND id = ?",
            (scope.workspace_id, thread_id),
        )
