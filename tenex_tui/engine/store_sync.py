"""The change feeds a sync client reads (`GET /sync/threads`, `GET /sync/messages`).

Every thread and message row carries `change_seq`, set by triggers from one counter in
the same transaction as the change, and every deletion leaves a numbered tombstone
(migration m010). A feed page is the rows of the caller's scope whose
`(change_seq, num)` is past the cursor, oldest change first, plus the tombstones past
it, read in one snapshot. Writers are serialised, so the numbers follow commit order: a
client that resumes from the last position it stored misses nothing and never needs to
compare clocks.

Cursors are signed like list cursors (`cursors.py`), bound to the scope and the feed,
but not to the page size, so a client may change its page size between calls.
"""

from __future__ import annotations

import json
import sqlite3
from typing import Any

from tenex_tui.core.errors import InvalidCursor, InvalidRequest
from tenex_tui.core.sync import (
    DEFAULT_SYNC_LIMIT,
    MAX_SYNC_LIMIT,
    DeletedMessage,
    MessageChange,
    MessageChanges,
    ThreadChanges,
)
from tenex_tui.engine.store_base import (
    MESSAGE_COLUMNS,
    THREAD_COLUMNS,
    Scope,
    StoreBase,
    thread_from_row,
)

PAGE_CHAR_BUDGET = 3_000_000
"""A page stops growing past this many characters of text (the client reads at most
10 MB of JSON per answer), after at least one row."""


def sync_limit(limit: int | None) -> int:
    """The page size of a feed: 200 by default, at most 1000.

    Raises:
        InvalidRequest: When it is below 1.
    """
    if limit is None:
        return DEFAULT_SYNC_LIMIT
    if limit < 1:
        raise InvalidRequest("limit must be at least 1")
    return min(limit, MAX_SYNC_LIMIT)


def _position(
    store: StoreBase, cursor: str | None, kind: str, scope: Scope
) -> tuple[int, int, int]:
    if cursor is None:
        return (0, 0, 0)
    position = store.signer.decode(cursor, kind, scope.pair, {})
    try:
        return (int(position["c"]), int(position["n"]), int(position["d"]))
    except (KeyError, TypeError, ValueError):
        raise InvalidCursor("The cursor is not valid for this feed.") from None


def _encode(
    store: StoreBase, kind: str, scope: Scope, position: tuple[int, int, int]
) -> str:
    change, num, tomb = position
    return store.signer.encode(kind, scope.pair, {}, {"c": change, "n": num, "d": tomb})


def _read(
    conn: sqlite3.Connection, sql: str, params: tuple[Any, ...]
) -> list[sqlite3.Row]:
    return conn.execute(sql, params).fetchall()


class SyncFeeds:
    """The two feeds over one store (runs on the DB thread, like the store)."""

    def __init__(self, store: StoreBase) -> None:
        self._store = store

    def thread_changes(
        self, scope: Scope, cursor: str | None, limit: int | None
    ) -> ThreadChanges:
        """Threads of the scope changed or deleted after `cursor`.

        Raises:
            InvalidRequest: When `limit` is below 1.
            InvalidCursor: When the cursor is not one of this scope's thread feed.
        """
        size = sync_limit(limit)
        store = self._store
        change, num, tomb = _position(store, cursor, "sync_threads", scope)
        conn = store.conn
        conn.execute("BEGIN")
        try:
            rows = _read(
                conn,
                f"SELECT {THREAD_COLUMNS}, change_seq, num FROM threads "
                "WHERE workspace_id = ? AND user_id = ? AND (change_seq, num) > (?, ?) "
                "ORDER BY change_seq, num LIMIT ?",
                (*scope.pair, change, num, size + 1),
            )
            tombs = _read(
                conn,
                "SELECT seq, id FROM tombstones WHERE workspace_id = ? AND user_id = ? "
                "AND kind = 'thread' AND seq > ? ORDER BY seq LIMIT ?",
                (*scope.pair, tomb, size + 1),
            )
        finally:
            conn.execute("COMMIT")
        more = len(rows) > size or len(tombs) > size
        rows, tombs = rows[:size], tombs[:size]
        kept: list[sqlite3.Row] = []
        chars = 0
        for row in rows:
            chars += len(row["title"]) + len(row["system_prompt"] or "")
            chars += len(row["context"] or "")
            if kept and chars > PAGE_CHAR_BUDGET:
                more = True
                break
            kept.append(row)
        if kept:
            change, num = int(kept[-1]["change_seq"]), int(kept[-1]["num"])
        if tombs:
            tomb = int(tombs[-1]["seq"])
        return ThreadChanges(
            items=[thread_from_row(r) for r in kept],
            deleted=[str(t["id"]) for t in tombs],
            next_cursor=_encode(store, "sync_threads", scope, (change, num, tomb)),
            has_more=more,
        )

    def message_changes(
        self, scope: Scope, cursor: str | None, limit: int | None
    ) -> MessageChanges:
        """Messages of the scope's threads changed or deleted after `cursor`.

        Raises:
            InvalidRequest: When `limit` is below 1.
            InvalidCursor: When the cursor is not one of this scope's message feed.
        """
        size = sync_limit(limit)
        store = self._store
        change, num, tomb = _position(store, cursor, "sync_messages", scope)
        conn = store.conn
        conn.execute("BEGIN")
        try:
            rows = _read(
                conn,
                f"SELECT {MESSAGE_COLUMNS}, change_seq, num FROM messages "
                "WHERE workspace_id = ? AND user_id = ? AND (change_seq, num) > (?, ?) "
                "ORDER BY change_seq, num LIMIT ?",
                (*scope.pair, change, num, size + 1),
            )
            tombs = _read(
                conn,
                "SELECT seq, id, thread_id FROM tombstones WHERE workspace_id = ? "
                "AND user_id = ? AND kind = 'message' AND seq > ? ORDER BY seq LIMIT ?",
                (*scope.pair, tomb, size + 1),
            )
        finally:
            conn.execute("COMMIT")
        more = len(rows) > size or len(tombs) > size
        rows, tombs = rows[:size], tombs[:size]
        kept: list[sqlite3.Row] = []
        chars = 0
        for row in rows:
            chars += len(row["content"]) + len(row["tool_calls"] or "")
            chars += len(row["attachments"] or "") + len(row["error"] or "")
            if kept and chars > PAGE_CHAR_BUDGET:
                more = True
                break
            kept.append(row)
        if kept:
            change, num = int(kept[-1]["change_seq"]), int(kept[-1]["num"])
        if tombs:
            tomb = int(tombs[-1]["seq"])
        items = [_message_change(r) for r in kept]
        return MessageChanges(
            items=items,
            deleted=[
                DeletedMessage(id=str(t["id"]), thread_id=str(t["thread_id"]))
                for t in tombs
            ],
            next_cursor=_encode(store, "sync_messages", scope, (change, num, tomb)),
            has_more=more,
        )


def _message_change(row: sqlite3.Row) -> MessageChange:
    # The fields of `message_from_row` plus the position, validated once (a first sync
    # serialises every message of the workspace).
    usage = row["usage"]
    return MessageChange.model_validate(
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
            "seq": int(row["seq"]),
        }
    )
