"""Full-text search (FTS5) over message content and thread titles (knowledge chunks:
`store_knowledge.py`).

User input is never FTS5 query syntax: every whitespace-separated word becomes a quoted
phrase (inner quotes doubled), so `fox" AND` or `NEAR(` search for those words instead
of raising (FACTS.md). FTS tables hold no scope of their own; every query joins back to
the base table and filters on its `workspace_id` (and `user_id` for chats).
"""

from __future__ import annotations

from typing import Any

from tenex_tui.core.errors import InvalidCursor, InvalidRequest
from tenex_tui.core.models import Page, SearchHit, clamp_limit
from tenex_tui.engine.store_base import Scope, StoreBase

TOTAL_CAP = 10_000
"""Matches counted at most for `total` (beyond it, `total` is None: best-effort)."""

HIGHLIGHT_OPEN = "«"
HIGHLIGHT_CLOSE = "»"


def fts_query(q: str) -> str:
    """Turn user text into an FTS5 query that matches all its words.

    Raises:
        InvalidRequest: When the text has no words.
    """
    words = q.split()
    if not words:
        raise InvalidRequest("Search for at least one word.")
    return " ".join('"' + word.replace('"', '""') + '"' for word in words)


_HITS = f"""
    SELECT 'message' AS kind, m.thread_id AS thread_id, m.id AS message_id,
        t.title AS thread_title, m.role AS role, m.created_at AS created_at,
        snippet(messages_fts, 0, '{HIGHLIGHT_OPEN}', '{HIGHLIGHT_CLOSE}', '…', 16)
            AS snippet,
        bm25(messages_fts) AS score
    FROM messages_fts
    JOIN messages m ON m.num = messages_fts.rowid
    JOIN threads t ON t.workspace_id = m.workspace_id AND t.id = m.thread_id
    WHERE messages_fts MATCH :match AND m.workspace_id = :ws AND m.user_id = :user
    UNION ALL
    SELECT 'thread', t.id, NULL, t.title, NULL, t.created_at,
        highlight(threads_fts, 0, '{HIGHLIGHT_OPEN}', '{HIGHLIGHT_CLOSE}'),
        bm25(threads_fts)
    FROM threads_fts
    JOIN threads t ON t.num = threads_fts.rowid
    WHERE threads_fts MATCH :match AND t.workspace_id = :ws AND t.user_id = :user
"""


class SearchMixin(StoreBase):
    """Search queries."""

    def search(
        self, scope: Scope, q: str, *, limit: int | None, cursor: str | None
    ) -> Page[SearchHit]:
        """Best matches first, each naming its thread and message (None: the title).

        Raises:
            InvalidRequest: When the query has no words or `limit` is below 1.
            InvalidCursor: When the cursor is not one of this query's.
        """
        match = fts_query(q)
        try:
            size = clamp_limit(limit)
        except ValueError as exc:
            raise InvalidRequest(str(exc)) from None
        filters = {"q": q, "limit": size}
        params: dict[str, Any] = {
            "match": match,
            "ws": scope.workspace_id,
            "user": scope.user_id,
        }
        total: int | None
        if cursor is None:
            offset = 0
            row = self.conn.execute(
                f"SELECT count(*) AS n FROM (SELECT 1 FROM ({_HITS}) LIMIT {TOTAL_CAP + 1})",
                params,
            ).fetchone()
            total = int(row["n"]) if row["n"] <= TOTAL_CAP else None
        else:
            position = self.signer.decode(cursor, "search", scope.pair, filters)
            try:
                offset = int(position["offset"])
                total = position.get("total")
            except (KeyError, TypeError, ValueError):
                raise InvalidCursor(
                    "The cursor is not valid for this search."
                ) from None
        rows = self.conn.execute(
            f"SELECT * FROM ({_HITS}) ORDER BY score, created_at DESC, thread_id, "
            "message_id LIMIT :limit OFFSET :offset",
            {**params, "limit": size + 1, "offset": offset},
        ).fetchall()
        next_cursor = None
        if len(rows) > size:
            rows = rows[:size]
            next_cursor = self.signer.encode(
                "search",
                scope.pair,
                filters,
                {"offset": offset + size, "total": total},
            )
        hits = [
            SearchHit(
                thread_id=r["thread_id"],
                message_id=r["message_id"],
                thread_title=r["thread_title"],
                role=r["role"],
                snippet=r["snippet"] or "",
                created_at=r["created_at"],
            )
            for r in rows
        ]
        return Page[SearchHit](items=hits, next_cursor=next_cursor, total=total)
