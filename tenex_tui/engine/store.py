"""The SQLite store of the local engine: threads and messages (the only SQL, with its
sibling `store_*.py` modules).

The storage model, in short (schema in `migrations.py`):

- `threads` rows are keyed by `(workspace_id, id)` and owned by a user; `sort_at` (last
  message, else creation) orders the sidebar, pinned first, in one index range scan.
- `messages` belong to a thread, ordered by a per-thread `seq`; an assistant reply is
  inserted `streaming` before the model is called and ends `complete`, `stopped`,
  `error` or `interrupted` (DESIGN.md §4).
- `events` keep every stream event of a reply, so a client can resume after any id.

`Store` methods are synchronous and run on the engine's DB thread (`store_db.DbThread`).
Writes go through `StoreConnection.write()` (`BEGIN IMMEDIATE`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from tenex_tui.core.errors import InvalidCursor, InvalidRequest
from tenex_tui.core.models import (
    Message,
    Page,
    Thread,
    ThreadContext,
    clamp_limit,
)
from tenex_tui.core.payloads import MAX_SYSTEM_PROMPT_CHARS
from tenex_tui.engine.store_base import (
    MESSAGE_COLUMNS,
    THREAD_COLUMNS,
    Scope,
    StoreBase,
    message_from_row,
    thread_from_row,
    validate_title,
)
from tenex_tui.engine.store_keys import (
    ApiKeyRecord,
    IdempotencyRecord,
    KeysMixin,
)
from tenex_tui.engine.store_knowledge import KnowledgeMixin
from tenex_tui.engine.store_replies import RepliesMixin
from tenex_tui.engine.store_search import SearchMixin

__all__ = ["ApiKeyRecord", "IdempotencyRecord", "Scope", "Store"]

COUNT_CAP = 10_000
"""Rows counted at most for the `total` of a filtered list (beyond it: None)."""


def _like_pattern(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _limit(limit: int | None) -> int:
    try:
        return clamp_limit(limit)
    except ValueError as exc:
        raise InvalidRequest(str(exc)) from None


@dataclass(frozen=True)
class ThreadFilters:
    """The filters of a thread list, as a cursor binds them."""

    archived: bool | None
    pinned: bool | None
    agent: str | None
    q: str | None
    limit: int

    def as_dict(self) -> dict[str, Any]:
        """Every parameter, for the cursor's filter digest."""
        return {
            "archived": self.archived,
            "pinned": self.pinned,
            "agent": self.agent,
            "q": self.q,
            "limit": self.limit,
        }


class Store(KnowledgeMixin, RepliesMixin, SearchMixin, KeysMixin, StoreBase):
    """Every query of the local engine, scoped by workspace and user."""

    # -- scope ---------------------------------------------------------------------

    def ensure_scope(
        self, scope: Scope, workspace_name: str | None, user_name: str | None
    ) -> None:
        """Create the workspace and user rows if missing; rename them when names are given."""
        now = self.now()
        with self.sc.write() as conn:
            self._ensure_scope_rows(scope, now)
            if workspace_name is not None:
                conn.execute(
                    "UPDATE workspaces SET name = ? WHERE id = ?",
                    (workspace_name, scope.workspace_id),
                )
            if user_name is not None:
                conn.execute(
                    "UPDATE users SET name = ? WHERE workspace_id = ? AND id = ?",
                    (user_name, scope.workspace_id, scope.user_id),
                )

    def name_workspace_if_unnamed(self, scope: Scope, name: str) -> None:
        """Give the workspace a display name unless it already has one."""
        with self.sc.write() as conn:
            conn.execute(
                "UPDATE workspaces SET name = ? WHERE id = ? AND name = ''",
                (name, scope.workspace_id),
            )

    def _ensure_scope_rows(self, scope: Scope, now: str) -> None:
        self.conn.execute(
            "INSERT OR IGNORE INTO workspaces (id, name, created_at) VALUES (?, ?, ?)",
            (scope.workspace_id, "", now),
        )
        self.conn.execute(
            "INSERT OR IGNORE INTO users (workspace_id, id, name, created_at) "
            "VALUES (?, ?, ?, ?)",
            (scope.workspace_id, scope.user_id, "", now),
        )

    def workspace_name(self, scope: Scope) -> str:
        """The workspace's display name (its id when it has none)."""
        row = self.conn.execute(
            "SELECT name FROM workspaces WHERE id = ?", (scope.workspace_id,)
        ).fetchone()
        name = row["name"] if row is not None else ""
        return str(name) or scope.workspace_id

    # -- threads -------------------------------------------------------------------

    def _check_context(self, scope: Scope, context: ThreadContext) -> None:
        for doc_id in context.knowledge:
            found = self.conn.execute(
                "SELECT 1 FROM knowledge_docs WHERE workspace_id = ? AND id = ?",
                (scope.workspace_id, doc_id),
            ).fetchone()
            if found is None:
                raise InvalidRequest(
                    f"No knowledge document {doc_id!r} in this workspace."
                )
        if context.lead is not None:
            found = self.conn.execute(
                "SELECT 1 FROM leads WHERE workspace_id = ? AND id = ?",
                (scope.workspace_id, context.lead),
            ).fetchone()
            if found is None:
                raise InvalidRequest(f"No lead {context.lead!r} in this workspace.")

    def create_thread(
        self,
        scope: Scope,
        *,
        title: str | None,
        system_prompt: str | None,
        agent: str | None,
        context: ThreadContext | None,
        model: str | None,
    ) -> Thread:
        """Insert a thread and return it.

        Raises:
            InvalidRequest: For a bad title, an oversized system prompt, or a context
                id that is not in the workspace.
        """
        if title is not None and title != "":
            validate_title(title)
        if system_prompt is not None and len(system_prompt) > MAX_SYSTEM_PROMPT_CHARS:
            raise InvalidRequest(
                f"A system prompt is at most {MAX_SYSTEM_PROMPT_CHARS} characters."
            )
        context = context or ThreadContext()
        thread_id = self.clock.new_id("thr")
        now = self.now()
        with self.sc.write() as conn:
            self._check_context(scope, context)
            self._ensure_scope_rows(scope, now)
            conn.execute(
                """INSERT INTO threads (workspace_id, id, user_id, title, agent,
                    system_prompt, context, model, created_at, updated_at, sort_at)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
                (
                    scope.workspace_id,
                    thread_id,
                    scope.user_id,
                    title or "",
                    agent,
                    system_prompt,
                    context.model_dump_json(),
                    model,
                    now,
                    now,
                    now,
                ),
            )
            return thread_from_row(self.thread_row(scope, thread_id))

    def get_thread(self, scope: Scope, thread_id: str) -> Thread:
        """Return one thread.

        Raises:
            NotFound: When it is not in scope.
        """
        return thread_from_row(self.thread_row(scope, thread_id))

    def update_thread(
        self,
        scope: Scope,
        thread_id: str,
        *,
        title: str | None,
        pinned: bool | None,
        archived: bool | None,
        draft: str | None,
    ) -> Thread:
        """Change the given fields; a draft alone leaves `updated_at` and recency be.

        Raises:
            NotFound: When the thread is not in scope.
            InvalidRequest: For a bad title.
        """
        sets: list[str] = []
        values: list[Any] = []
        if title is not None:
            sets.append("title = ?")
            values.append(validate_title(title))
        if pinned is not None:
            sets.append("pinned = ?")
            values.append(int(pinned))
        if archived is not None:
            sets.append("archived = ?")
            values.append(int(archived))
        touched = bool(sets)
        if draft is not None:
            sets.append("draft = ?")
            values.append(draft)
        with self.sc.write() as conn:
            self.thread_row(scope, thread_id)
            if sets:
                if touched:
                    sets.append("updated_at = ?")
                    values.append(self.now())
                conn.execute(
                    f"UPDATE threads SET {', '.join(sets)} "
                    "WHERE workspace_id = ? AND user_id = ? AND id = ?",
                    (*values, scope.workspace_id, scope.user_id, thread_id),
                )
            return thread_from_row(self.thread_row(scope, thread_id))

    def mark_read(self, scope: Scope, thread_id: str) -> Thread:
        """Record that the user saw the latest reply.

        Raises:
            NotFound: When the thread is not in scope.
        """
        with self.sc.write() as conn:
            self.thread_row(scope, thread_id)
            # Never before the last reply, whatever the clock says: reading a thread
            # clears its unread mark.
            conn.execute(
                "UPDATE threads SET read_at = max(coalesce(last_reply_at, ''), ?) "
                "WHERE workspace_id = ? AND user_id = ? AND id = ?",
                (self.now(), scope.workspace_id, scope.user_id, thread_id),
            )
            return thread_from_row(self.thread_row(scope, thread_id))

    def delete_thread(self, scope: Scope, thread_id: str) -> None:
        """Delete the thread; its messages and events go with it (foreign keys).

        Raises:
            NotFound: When the thread is not in scope.
        """
        with self.sc.write() as conn:
            self.thread_row(scope, thread_id)
            conn.execute(
                "DELETE FROM threads WHERE workspace_id = ? AND user_id = ? AND id = ?",
                (scope.workspace_id, scope.user_id, thread_id),
            )

    def list_threads(
        self,
        scope: Scope,
        *,
        limit: int | None,
        cursor: str | None,
        archived: bool | None,
        pinned: bool | None,
        agent: str | None,
        q: str | None,
    ) -> Page[Thread]:
        """One page of threads: pinned first, then newest activity first.

        Raises:
            InvalidRequest: When `limit` is below 1.
            InvalidCursor: When the cursor is not one of this list's.
        """
        filters = ThreadFilters(archived, pinned, agent, q or None, _limit(limit))
        where = ["workspace_id = ?", "user_id = ?"]
        params: list[Any] = [scope.workspace_id, scope.user_id]
        if filters.archived is not None:
            where.append("archived = ?")
            params.append(int(filters.archived))
        if filters.pinned is not None:
            where.append("pinned = ?")
            params.append(int(filters.pinned))
        if filters.agent is not None:
            where.append("agent = ?")
            params.append(filters.agent)
        if filters.q is not None:
            where.append("title LIKE ? ESCAPE '\\'")
            params.append(_like_pattern(filters.q))
        total: int | None
        if cursor is None:
            total = self._count_threads(scope, filters, where, params)
        else:
            position = self.signer.decode(
                cursor, "threads", scope.pair, filters.as_dict()
            )
            try:
                keyset = (
                    int(position["pinned"]),
                    str(position["sort_at"]),
                    str(position["id"]),
                )
                total = position.get("total")
            except (KeyError, TypeError, ValueError):
                raise InvalidCursor("The cursor is not valid for this list.") from None
            where.append("(pinned, sort_at, id) < (?, ?, ?)")
            params.extend(keyset)
        rows = self.conn.execute(
            f"SELECT {THREAD_COLUMNS} FROM threads WHERE {' AND '.join(where)} "
            "ORDER BY pinned DESC, sort_at DESC, id DESC LIMIT ?",
            (*params, filters.limit + 1),
        ).fetchall()
        next_cursor = None
        if len(rows) > filters.limit:
            rows = rows[: filters.limit]
            last = rows[-1]
            next_cursor = self.signer.encode(
                "threads",
                scope.pair,
                filters.as_dict(),
                {
                    "pinned": int(last["pinned"]),
                    "sort_at": last["sort_at"],
                    "id": last["id"],
                    "total": total,
                },
            )
        return Page[Thread](
            items=[thread_from_row(r) for r in rows],
            next_cursor=next_cursor,
            total=total,
        )

    def _count_threads(
        self,
        scope: Scope,
        filters: ThreadFilters,
        where: list[str],
        params: list[Any],
    ) -> int | None:
        if filters.agent is None and filters.q is None:
            # Kept by triggers (m008): one indexed read, whatever the thread count.
            flags = ["workspace_id = ?", "user_id = ?"]
            values: list[object] = [*scope.pair]
            if filters.archived is not None:
                flags.append("archived = ?")
                values.append(int(filters.archived))
            if filters.pinned is not None:
                flags.append("pinned = ?")
                values.append(int(filters.pinned))
            row = self.conn.execute(
                f"SELECT coalesce(sum(n), 0) AS n FROM thread_counts "
                f"WHERE {' AND '.join(flags)}",
                values,
            ).fetchone()
            return int(row["n"])
        # Filtered by agent or title: count, but not past the cap (best-effort total).
        row = self.conn.execute(
            f"SELECT count(*) AS n FROM (SELECT 1 FROM threads "
            f"WHERE {' AND '.join(where)} LIMIT {COUNT_CAP + 1})",
            params,
        ).fetchone()
        return int(row["n"]) if row["n"] <= COUNT_CAP else None

    # -- messages ------------------------------------------------------------------

    def list_messages(
        self,
        scope: Scope,
        thread_id: str,
        *,
        limit: int | None,
        cursor: str | None,
        order: Literal["asc", "desc"],
    ) -> Page[Message]:
        """One page of a thread's history, oldest or newest first.

        Raises:
            NotFound: When the thread is not in scope.
            InvalidCursor: When the cursor is not one of this thread's lists.
        """
        if order not in ("asc", "desc"):
            raise InvalidRequest("order is 'asc' or 'desc'.")
        size = _limit(limit)
        thread = self.thread_row(scope, thread_id)
        filters = {"thread": thread_id, "order": order, "limit": size}
        params: list[Any] = [scope.workspace_id, scope.user_id, thread_id]
        keyset = ""
        if cursor is not None:
            position = self.signer.decode(cursor, "messages", scope.pair, filters)
            try:
                after = int(position["seq"])
            except (KeyError, TypeError, ValueError):
                raise InvalidCursor("The cursor is not valid for this list.") from None
            keyset = "AND seq > ?" if order == "asc" else "AND seq < ?"
            params.append(after)
        direction = "ASC" if order == "asc" else "DESC"
        rows = self.conn.execute(
            f"SELECT {MESSAGE_COLUMNS} FROM messages "
            f"WHERE workspace_id = ? AND user_id = ? AND thread_id = ? {keyset} "
            f"ORDER BY seq {direction} LIMIT ?",
            (*params, size + 1),
        ).fetchall()
        next_cursor = None
        if len(rows) > size:
            rows = rows[:size]
            next_cursor = self.signer.encode(
                "messages", scope.pair, filters, {"seq": rows[-1]["seq"]}
            )
        return Page[Message](
            items=[message_from_row(r) for r in rows],
            next_cursor=next_cursor,
            total=int(thread["message_count"]),
        )

    def get_message(self, scope: Scope, thread_id: str, message_id: str) -> Message:
        """Return one message.

        Raises:
            NotFound: When it is not in scope or not in that thread.
        """
        return message_from_row(self.message_row(scope, thread_id, message_id))

    def workspace_rows(self, scope: Scope) -> dict[str, list[tuple[Any, ...]]]:
        """Every row of the scope's workspace, table by table (tests compare them)."""
        tables = {
            "threads": "SELECT * FROM threads WHERE workspace_id = ? ORDER BY id",
            "messages": "SELECT * FROM messages WHERE workspace_id = ? ORDER BY id",
            "events": "SELECT * FROM events WHERE workspace_id = ? "
            "ORDER BY message_id, seq",
        }
        return {
            name: [tuple(r) for r in self.conn.execute(sql, (scope.workspace_id,))]
            for name, sql in tables.items()
        }
