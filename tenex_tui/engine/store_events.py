"""Stored reply events and the end of a reply: checkpoints, the terminal commit,
reading events back, ending a reply from outside, and the start-up reconciler.

The state machine of an assistant message (DESIGN.md §4):

    streaming → complete | stopped | error | interrupted

Checkpoints append text and events in short transactions; the terminal state and its
events are one durable transaction. Every transition out of `streaming` is a
conditional UPDATE (`AND status = 'streaming'`), so whoever ends a message (its writer,
a cancel, the reconciler) ends it exactly once. Event ids are `<message_id>.<seq>`,
counted per message (test-plan T60).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from tenex_tui.core.errors import NotFound
from tenex_tui.core.events import EventType, StreamEvent
from tenex_tui.core.models import Message, Usage
from tenex_tui.engine.store_base import (
    EVENT_NOT_FOUND,
    Scope,
    StoreBase,
    dumps,
    message_from_row,
)
from tenex_tui.engine.writer_lock import writer_alive

INTERRUPTED_ERROR = (
    "The reply was interrupted: the process writing it stopped before it finished."
)

EndStatus = Literal["complete", "stopped", "error", "interrupted"]

_TERMINAL_TYPE: dict[str, EventType] = {
    "complete": "message.completed",
    "stopped": "message.stopped",
    "error": "message.failed",
    "interrupted": "message.failed",
}


def terminal_event_type(status: str) -> EventType:
    """The event that ends a reply with this status."""
    return _TERMINAL_TYPE[status]


def event_id(message_id: str, seq: int) -> str:
    """The opaque id of a message's `seq`-th event (ids embed the message, T60)."""
    return f"{message_id}.{seq}"


def parse_event_id(message_id: str, value: str) -> int:
    """The sequence number inside an event id of this message.

    Raises:
        NotFound: When the id is malformed or names another message.
    """
    prefix, dot, number = value.rpartition(".")
    if (
        not dot
        or prefix != message_id
        or not (number.isascii() and number.isdigit())
        or len(number) > 12
        or number != str(int(number))
    ):
        raise NotFound(EVENT_NOT_FOUND)
    return int(number)


def _event_data(event: StreamEvent) -> str | None:
    if event.type == "message.delta":
        return None
    data: dict[str, Any] = {}
    if event.tool_call is not None:
        data["tool_call"] = event.tool_call.model_dump(mode="json")
    if event.usage is not None:
        data["usage"] = event.usage.model_dump(mode="json")
    if event.error is not None:
        data["error"] = event.error
    if event.status is not None:
        data["status"] = event.status
    if event.type == "message.started":
        # The started event carries the message as it was when the reply began; a
        # terminal event's message is rebuilt from the final row when replayed.
        if event.message is not None:
            data["message"] = event.message.model_dump(mode="json")
        if event.user_message is not None:
            data["user_message"] = event.user_message.model_dump(mode="json")
    return dumps(data)


def event_from_row(
    row: sqlite3.Row, message_id: str, thread_id: str, final: Message | None
) -> StreamEvent:
    """Rebuild a stored event (terminal ones get the message's final row)."""
    data: dict[str, Any] = json.loads(row["data"]) if row["data"] else {}
    if row["type"] in ("message.completed", "message.failed", "message.stopped"):
        data["message"] = final
    return StreamEvent.model_validate(
        {
            "id": event_id(message_id, row["seq"]),
            "type": row["type"],
            "message_id": message_id,
            "thread_id": thread_id,
            "delta": row["delta"],
            **data,
        }
    )


_INSERT_EVENT = (
    "INSERT INTO events (workspace_id, message_id, seq, thread_id, type, delta, "
    "data, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
)


def _event_rows(
    scope: Scope, events: Sequence[StreamEvent], now: str
) -> list[tuple[Any, ...]]:
    return [
        (
            scope.workspace_id,
            e.message_id,
            int(e.id.rpartition(".")[2]),
            e.thread_id,
            e.type,
            e.delta,
            _event_data(e),
            now,
        )
        for e in events
    ]


@dataclass(frozen=True)
class CheckpointItem:
    """One reply's share of a batched checkpoint (`EventsMixin.checkpoint_many`)."""

    scope: Scope
    message_id: str
    writer_id: str
    text: str
    """Text to append."""
    tool_calls: str | None
    """The envelopes as JSON, when they changed."""
    events: Sequence[StreamEvent]


@dataclass(frozen=True)
class FlagCheck:
    """A quiet reply whose stop flag and liveness are read with a batch."""

    scope: Scope
    message_id: str
    writer_id: str


@dataclass(frozen=True)
class CheckpointResult:
    """What a checkpoint learned about its message."""

    alive: bool
    """False when the message was deleted or ended by someone else: stop quietly."""
    cancel_requested: bool = False
    """True when another process asked to stop this reply."""


@dataclass(frozen=True)
class StoredEvents:
    """A message's stored events after some id, and its state."""

    events: tuple[StreamEvent, ...]
    status: str
    writer_id: str | None
    last_seq: int
    first_seq: int


class EventsMixin(StoreBase):
    """Checkpoints, terminal commits, stored events and orphaned replies."""

    def _insert_events(
        self, scope: Scope, events: Sequence[StreamEvent], now: str
    ) -> None:
        if not events:
            return
        self.conn.executemany(_INSERT_EVENT, _event_rows(scope, events, now))

    def _end_orphan(
        self,
        scope: Scope,
        thread_id: str,
        message_id: str,
        status: EndStatus,
        error: str | None,
    ) -> bool:
        """End a streaming message whose writer is gone (inside a write transaction)."""
        now = self.now()
        row = self.conn.execute(
            "UPDATE messages SET status = ?, error = ?, completed_at = ?, "
            "event_seq = event_seq + 1 "
            "WHERE workspace_id = ? AND thread_id = ? AND id = ? AND status = 'streaming' "
            "RETURNING event_seq",
            (status, error, now, scope.workspace_id, thread_id, message_id),
        ).fetchone()
        if row is None:
            return False
        data: dict[str, Any] = {"status": status}
        if error is not None:
            data["error"] = error
        self.conn.execute(
            "INSERT INTO events (workspace_id, message_id, seq, thread_id, type, delta, "
            "data, created_at) VALUES (?, ?, ?, ?, ?, '', ?, ?)",
            (
                scope.workspace_id,
                message_id,
                row["event_seq"],
                thread_id,
                terminal_event_type(status),
                dumps(data),
                now,
            ),
        )
        self._after_end(scope, thread_id, status, now)
        return True

    def _after_end(self, scope: Scope, thread_id: str, status: str, now: str) -> None:
        self.conn.execute(
            "UPDATE threads SET last_status = (SELECT status FROM messages "
            "WHERE workspace_id = ?1 AND thread_id = ?2 AND role = 'assistant' "
            "ORDER BY seq DESC LIMIT 1), "
            "last_reply_at = CASE WHEN ?3 THEN ?4 ELSE last_reply_at END "
            "WHERE workspace_id = ?1 AND id = ?2",
            (scope.workspace_id, thread_id, int(status != "stopped"), now),
        )

    # -- while streaming -------------------------------------------------------------

    def checkpoint(
        self,
        scope: Scope,
        message_id: str,
        writer_id: str,
        *,
        text: str,
        tool_calls: str | None,
        events: Sequence[StreamEvent],
    ) -> CheckpointResult:
        """Append text and events of a streaming reply in one short transaction."""
        now = self.now()
        with self.sc.write():
            last_seq = int(events[-1].id.rpartition(".")[2]) if events else None
            row = self.conn.execute(
                "UPDATE messages SET content = content || ?, "
                "tool_calls = coalesce(?, tool_calls), "
                "event_seq = coalesce(?, event_seq) "
                "WHERE workspace_id = ? AND id = ? AND status = 'streaming' "
                "AND writer_id = ? RETURNING cancel_requested",
                (text, tool_calls, last_seq, scope.workspace_id, message_id, writer_id),
            ).fetchone()
            if row is None:
                return CheckpointResult(alive=False)
            self._insert_events(scope, events, now)
            return CheckpointResult(
                alive=True, cancel_requested=bool(row["cancel_requested"])
            )

    def checkpoint_many(
        self, items: Sequence[CheckpointItem], flag_checks: Sequence[FlagCheck] = ()
    ) -> tuple[list[CheckpointResult], list[CheckpointResult]]:
        """Checkpoint several streaming replies in ONE short transaction.

        The same writes as one `checkpoint` per item, but a busy server with hundreds
        of live replies commits a few times a second instead of hundreds of times.
        `flag_checks` also reads the flags of quiet replies (nothing to write) in the
        same trip to the DB thread.

        Returns:
            One result per item, then one per flag check, in order.
        """
        now = self.now()
        results: list[CheckpointResult] = []
        rows: list[tuple[Any, ...]] = []
        with self.sc.write():
            for item in items:
                events = item.events
                last_seq = int(events[-1].id.rpartition(".")[2]) if events else None
                row = self.conn.execute(
                    "UPDATE messages SET content = content || ?, "
                    "tool_calls = coalesce(?, tool_calls), "
                    "event_seq = coalesce(?, event_seq) "
                    "WHERE workspace_id = ? AND id = ? AND status = 'streaming' "
                    "AND writer_id = ? RETURNING cancel_requested",
                    (
                        item.text,
                        item.tool_calls,
                        last_seq,
                        item.scope.workspace_id,
                        item.message_id,
                        item.writer_id,
                    ),
                ).fetchone()
                if row is None:
                    results.append(CheckpointResult(alive=False))
                    continue
                rows.extend(_event_rows(item.scope, events, now))
                results.append(
                    CheckpointResult(
                        alive=True, cancel_requested=bool(row["cancel_requested"])
                    )
                )
            if rows:
                self.conn.executemany(_INSERT_EVENT, rows)
        flags = [
            self.reply_flags(check.scope, check.message_id, check.writer_id)
            for check in flag_checks
        ]
        return results, flags

    def finish(
        self,
        scope: Scope,
        thread_id: str,
        message_id: str,
        writer_id: str,
        *,
        status: EndStatus,
        text: str,
        error: str | None,
        usage: Usage | None,
        tool_calls: str | None,
        events: Sequence[StreamEvent],
    ) -> Message | None:
        """The terminal commit: remaining text and events, then the final state.

        `events` ends with the terminal event. Durable (`synchronous=FULL`).

        Returns:
            The final message, or None when the message was deleted or already ended
            by someone else (nothing is written then).
        """
        now = self.now()
        with self.sc.write(durable=True):
            last_seq = int(events[-1].id.rpartition(".")[2])
            row = self.conn.execute(
                "UPDATE messages SET content = content || ?, "
                "tool_calls = coalesce(?, tool_calls), event_seq = ?, status = ?, "
                "error = ?, usage = ?, completed_at = ? "
                "WHERE workspace_id = ? AND id = ? AND status = 'streaming' "
                "AND writer_id = ? RETURNING id",
                (
                    text,
                    tool_calls,
                    last_seq,
                    status,
                    error,
                    usage.model_dump_json() if usage is not None else None,
                    now,
                    scope.workspace_id,
                    message_id,
                    writer_id,
                ),
            ).fetchone()
            if row is None:
                return None
            self._insert_events(scope, events, now)
            self._after_end(scope, thread_id, status, now)
            return message_from_row(self.message_row(scope, thread_id, message_id))

    def reply_flags(
        self, scope: Scope, message_id: str, writer_id: str
    ) -> CheckpointResult:
        """Whether a streaming reply still exists and whether a stop was requested."""
        row = self.conn.execute(
            "SELECT cancel_requested FROM messages WHERE workspace_id = ? AND id = ? "
            "AND status = 'streaming' AND writer_id = ?",
            (scope.workspace_id, message_id, writer_id),
        ).fetchone()
        if row is None:
            return CheckpointResult(alive=False)
        return CheckpointResult(
            alive=True, cancel_requested=bool(row["cancel_requested"])
        )

    # -- reading events --------------------------------------------------------------

    def read_events(
        self,
        scope: Scope,
        thread_id: str,
        message_id: str,
        after_seq: int | None,
        *,
        strict: bool = True,
    ) -> StoredEvents:
        """The stored events after `after_seq` (all of them for None).

        Args:
            scope: The caller's scope.
            thread_id: The thread.
            message_id: The assistant message.
            after_seq: The last event seen.
            strict: Check that `after_seq` is one of the message's event ids. A
                follower that is already past the stored events (it saw them live)
                passes False, and gets the terminal event when the message ended.

        Raises:
            NotFound: When the message is not in scope, or (strict) `after_seq` is not
                one of its event ids (a streaming message may still be catching up).
        """
        row = self.message_row(scope, thread_id, message_id, "writer_id, event_seq")
        first = self.conn.execute(
            "SELECT min(seq) AS first FROM events WHERE workspace_id = ? AND message_id = ?",
            (scope.workspace_id, message_id),
        ).fetchone()
        first_seq = int(first["first"] or 1)
        last_seq = int(row["event_seq"])
        if (
            strict
            and after_seq is not None
            and (
                after_seq < first_seq
                or (after_seq > last_seq and row["status"] != "streaming")
            )
        ):
            raise NotFound(EVENT_NOT_FOUND)
        rows = self.conn.execute(
            "SELECT seq, type, delta, data FROM events "
            "WHERE workspace_id = ? AND message_id = ? AND seq > ? ORDER BY seq",
            (scope.workspace_id, message_id, after_seq or 0),
        ).fetchall()
        if not rows and not strict and row["status"] != "streaming":
            rows = self.conn.execute(
                "SELECT seq, type, delta, data FROM events "
                "WHERE workspace_id = ? AND message_id = ? AND seq = ?",
                (scope.workspace_id, message_id, last_seq),
            ).fetchall()
        final = None
        if row["status"] != "streaming":
            final = message_from_row(row)
        return StoredEvents(
            events=tuple(event_from_row(r, message_id, thread_id, final) for r in rows),
            status=row["status"],
            writer_id=row["writer_id"],
            last_seq=last_seq,
            first_seq=first_seq,
        )

    # -- ending from outside ---------------------------------------------------------

    def end_orphan(
        self, scope: Scope, thread_id: str, message_id: str, status: EndStatus
    ) -> Message:
        """End a streaming message whose writer is dead (or ask its writer to stop).

        `interrupted` records the standard error; `stopped` is a user's cancel.

        Raises:
            NotFound: When the message is not in scope.
        """
        with self.sc.write():
            self.message_row(scope, thread_id, message_id)
            error = INTERRUPTED_ERROR if status == "interrupted" else None
            self._end_orphan(scope, thread_id, message_id, status, error)
            return message_from_row(self.message_row(scope, thread_id, message_id))

    def request_cancel(
        self, scope: Scope, thread_id: str, message_id: str
    ) -> tuple[Message, str | None]:
        """Flag a streaming message so its writer (maybe another process) stops it.

        Returns:
            The message and the writer id (None when it is not streaming).

        Raises:
            NotFound: When the message is not in scope.
        """
        with self.sc.write() as conn:
            row = self.message_row(scope, thread_id, message_id, "writer_id")
            if row["status"] != "streaming":
                return message_from_row(row), None
            conn.execute(
                "UPDATE messages SET cancel_requested = 1 "
                "WHERE workspace_id = ? AND thread_id = ? AND id = ?",
                (scope.workspace_id, thread_id, message_id),
            )
            return message_from_row(row), row["writer_id"]

    def reconcile(self) -> int:
        """End every `streaming` message whose writer is dead as `interrupted`.

        Run at start-up; a second run finds nothing to do (exactly once), and nothing is
        regenerated.

        Returns:
            How many messages were ended.
        """
        workspaces = [r["id"] for r in self.conn.execute("SELECT id FROM workspaces")]
        candidates: list[tuple[str, str, str, str | None]] = []
        for workspace_id in workspaces:
            for r in self.conn.execute(
                "SELECT thread_id, id, user_id, writer_id FROM messages "
                "WHERE workspace_id = ? AND status = 'streaming'",
                (workspace_id,),
            ):
                candidates.append(
                    (workspace_id, r["thread_id"], r["id"], r["writer_id"])
                )
        if not candidates:
            return 0
        alive: dict[str | None, bool] = {}
        ended = 0
        with self.sc.write():
            for workspace_id, thread_id, message_id, writer in candidates:
                if writer not in alive:
                    alive[writer] = writer_alive(self.locks_dir, writer)
                if alive[writer]:
                    continue
                # The user id is not needed to end it: this is maintenance, scoped by
                # workspace and thread like every other statement.
                scope = Scope(workspace_id, "")
                if self._end_orphan(
                    scope, thread_id, message_id, "interrupted", INTERRUPTED_ERROR
                ):
                    ended += 1
        return ended
