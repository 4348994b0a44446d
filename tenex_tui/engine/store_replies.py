"""Replies in the store: starting one, checkpoints, the terminal commit, stored events,
cancel requests, edits, and the start-up reconciler.

The state machine of an assistant message (DESIGN.md §4):

    streaming → complete | stopped | error | interrupted

A reply is inserted `streaming` (with the user message and its `message.started` event)
in one transaction before the model is called. Checkpoints append text and events in
short transactions; the terminal state and its events are one durable transaction.
Every transition out of `streaming` is a conditional UPDATE (`AND status = 'streaming'`),
so whoever ends a message (its writer, a cancel, the reconciler) ends it exactly once.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any, Literal

from tenex_tui.core.errors import Conflict, InvalidRequest, NotFound
from tenex_tui.core.events import EventType, StreamEvent
from tenex_tui.core.models import Attachment, Message, ToolCall, Usage
from tenex_tui.core.payloads import MAX_MESSAGE_CHARS
from tenex_tui.engine.prompt import AttachmentText, HistoryItem
from tenex_tui.engine.store_base import (
    EVENT_NOT_FOUND,
    MESSAGE_NOT_FOUND,
    Scope,
    StoreBase,
    dumps,
    message_from_row,
)
from tenex_tui.engine.writer_lock import writer_alive

HISTORY_MESSAGES = 500
"""Messages read for a prompt at most (the prompt builder trims further by size)."""

INTERRUPTED_ERROR = (
    "The reply was interrupted: the process writing it stopped before it finished."
)
STREAMING_CONFLICT = (
    "A reply is already streaming in this thread; stop it or wait for it to finish."
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


def validate_content(content: str, has_attachments: bool = False) -> None:
    """Check a user message's text.

    Raises:
        InvalidRequest: When it is empty (and nothing is attached) or too long.
    """
    if len(content) > MAX_MESSAGE_CHARS:
        raise InvalidRequest(f"A message is at most {MAX_MESSAGE_CHARS} characters.")
    if not content.strip() and not has_attachments:
        raise InvalidRequest("A message needs some text.")


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


@dataclass(frozen=True)
class ReplyStart:
    """What starting a reply committed (or found, for a repeated request id)."""

    thread_id: str
    message: Message
    """The assistant message (streaming, unless `existing` found a finished one)."""
    user_message: Message | None = None
    started: StreamEvent | None = None
    """The `message.started` event; None when `existing`."""
    history: tuple[HistoryItem, ...] = ()
    system_prompt: str | None = None
    existing: bool = False
    """True when the request id was seen before: stream that reply, start nothing."""


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


class RepliesMixin(StoreBase):
    """Reply lifecycle queries."""

    # -- helpers ---------------------------------------------------------------------

    def _insert_events(
        self, scope: Scope, events: Sequence[StreamEvent], now: str
    ) -> None:
        if not events:
            return
        self.conn.executemany(
            "INSERT INTO events (workspace_id, message_id, seq, thread_id, type, delta, "
            "data, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [
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
            ],
        )

    def _history(
        self, scope: Scope, thread_id: str, upto_seq: int
    ) -> tuple[HistoryItem, ...]:
        rows = self.conn.execute(
            "SELECT role, content, status, attachment_text, tool_calls FROM messages "
            "WHERE workspace_id = ? AND user_id = ? AND thread_id = ? AND seq <= ? "
            "ORDER BY seq DESC LIMIT ?",
            (scope.workspace_id, scope.user_id, thread_id, upto_seq, HISTORY_MESSAGES),
        ).fetchall()
        items = []
        for row in reversed(rows):
            attachments = tuple(
                AttachmentText(**a) for a in json.loads(row["attachment_text"] or "[]")
            )
            calls = tuple(
                ToolCall.model_validate(c)
                for c in json.loads(row["tool_calls"] or "[]")
            )
            items.append(
                HistoryItem(
                    role=row["role"],
                    content=row["content"],
                    status=row["status"],
                    attachments=attachments,
                    tool_calls=calls,
                )
            )
        return tuple(items)

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

    def _check_no_stream(self, scope: Scope, thread_id: str, writer_id: str) -> None:
        rows = self.conn.execute(
            "SELECT id, writer_id FROM messages "
            "WHERE workspace_id = ? AND thread_id = ? AND status = 'streaming'",
            (scope.workspace_id, thread_id),
        ).fetchall()
        for row in rows:
            if row["writer_id"] == writer_id or writer_alive(
                self.locks_dir, row["writer_id"]
            ):
                raise Conflict(STREAMING_CONFLICT)
            self._end_orphan(
                scope, thread_id, row["id"], "interrupted", INTERRUPTED_ERROR
            )

    def _existing_reply(
        self, scope: Scope, thread_id: str, request_id: str
    ) -> Message | None:
        row = self.conn.execute(
            "SELECT id, role FROM messages WHERE workspace_id = ? AND user_id = ? "
            "AND thread_id = ? AND request_id = ?",
            (scope.workspace_id, scope.user_id, thread_id, request_id),
        ).fetchone()
        if row is None:
            return None
        target = row["id"]
        if row["role"] != "assistant":
            reply = self.conn.execute(
                "SELECT id FROM messages WHERE workspace_id = ? AND thread_id = ? "
                "AND reply_to = ? AND role = 'assistant' ORDER BY seq DESC LIMIT 1",
                (scope.workspace_id, thread_id, row["id"]),
            ).fetchone()
            if reply is None:
                raise Conflict(
                    "This request was already sent and its reply was removed."
                )
            target = reply["id"]
        return message_from_row(self.message_row(scope, thread_id, target))

    def _insert_assistant(
        self,
        scope: Scope,
        thread_id: str,
        seq: int,
        *,
        now: str,
        model: str,
        writer_id: str,
        reply_to: str | None,
        request_id: str | None,
    ) -> str:
        message_id = self.clock.new_id("msg")
        self.conn.execute(
            """INSERT INTO messages (workspace_id, id, thread_id, user_id, seq, role,
                content, status, model, created_at, reply_to, request_id, writer_id,
                event_seq)
            VALUES (?, ?, ?, ?, ?, 'assistant', '', 'streaming', ?, ?, ?, ?, ?, 1)""",
            (
                scope.workspace_id,
                message_id,
                thread_id,
                scope.user_id,
                seq,
                model,
                now,
                reply_to,
                request_id,
                writer_id,
            ),
        )
        return message_id

    def _started(
        self,
        scope: Scope,
        thread_id: str,
        message_id: str,
        seq: int,
        user_message: Message | None,
        now: str,
    ) -> tuple[Message, StreamEvent]:
        message = message_from_row(self.message_row(scope, thread_id, message_id))
        started = StreamEvent(
            id=event_id(message_id, seq),
            type="message.started",
            message_id=message_id,
            thread_id=thread_id,
            message=message,
            user_message=user_message,
        )
        self._insert_events(scope, [started], now)
        return message, started

    # -- starting a reply ------------------------------------------------------------

    def start_send(
        self,
        scope: Scope,
        thread_id: str,
        *,
        content: str,
        attachments: Sequence[Attachment],
        attachment_text: Sequence[AttachmentText],
        request_id: str | None,
        writer_id: str,
        model: str,
    ) -> ReplyStart:
        """Commit the user message, a streaming reply and its started event.

        Raises:
            NotFound: When the thread is not in scope.
            Conflict: When a reply is streaming in the thread.
        """
        validate_content(content, bool(attachments))
        with self.sc.write() as conn:
            thread = self.thread_row(scope, thread_id)
            if request_id is not None:
                existing = self._existing_reply(scope, thread_id, request_id)
                if existing is not None:
                    return ReplyStart(
                        thread_id=thread_id, message=existing, existing=True
                    )
            self._check_no_stream(scope, thread_id, writer_id)
            now = self.now()
            seq = int(thread["next_seq"])
            user_id = self.clock.new_id("msg")
            conn.execute(
                """INSERT INTO messages (workspace_id, id, thread_id, user_id, seq, role,
                    content, status, attachments, attachment_text, created_at,
                    completed_at, request_id)
                VALUES (?, ?, ?, ?, ?, 'user', ?, 'complete', ?, ?, ?, ?, ?)""",
                (
                    scope.workspace_id,
                    user_id,
                    thread_id,
                    scope.user_id,
                    seq,
                    content,
                    dumps([a.model_dump(mode="json") for a in attachments]),
                    dumps([asdict(a) for a in attachment_text]),
                    now,
                    now,
                    request_id,
                ),
            )
            message_id = self._insert_assistant(
                scope,
                thread_id,
                seq + 1,
                now=now,
                model=model,
                writer_id=writer_id,
                reply_to=user_id,
                request_id=None,
            )
            conn.execute(
                "UPDATE threads SET next_seq = ?, message_count = message_count + 2, "
                "last_message_at = ?, sort_at = ?, updated_at = ?, "
                "last_status = 'streaming' WHERE workspace_id = ? AND id = ?",
                (seq + 2, now, now, now, scope.workspace_id, thread_id),
            )
            user_message = message_from_row(self.message_row(scope, thread_id, user_id))
            message, started = self._started(
                scope, thread_id, message_id, 1, user_message, now
            )
            return ReplyStart(
                thread_id=thread_id,
                message=message,
                user_message=user_message,
                started=started,
                history=self._history(scope, thread_id, seq),
                system_prompt=thread["system_prompt"],
            )

    def start_regenerate(
        self,
        scope: Scope,
        thread_id: str,
        *,
        mode: Literal["regenerate", "continue"],
        request_id: str | None,
        writer_id: str,
        model: str,
    ) -> ReplyStart:
        """Start a new answer to the last user message, or continue the last reply.

        Raises:
            NotFound: When the thread is not in scope.
            Conflict: When a reply is streaming or there is nothing to answer.
        """
        with self.sc.write() as conn:
            thread = self.thread_row(scope, thread_id)
            if request_id is not None:
                existing = self._existing_reply(scope, thread_id, request_id)
                if existing is not None:
                    return ReplyStart(
                        thread_id=thread_id, message=existing, existing=True
                    )
            self._check_no_stream(scope, thread_id, writer_id)
            last_user = conn.execute(
                "SELECT id, seq FROM messages WHERE workspace_id = ? AND user_id = ? "
                "AND thread_id = ? AND role = 'user' ORDER BY seq DESC LIMIT 1",
                (scope.workspace_id, scope.user_id, thread_id),
            ).fetchone()
            if last_user is None:
                raise Conflict("There is no user message to answer in this thread.")
            user_message = message_from_row(
                self.message_row(scope, thread_id, last_user["id"])
            )
            now = self.now()
            if mode == "continue":
                return self._start_continue(
                    scope,
                    thread,
                    user_message,
                    int(last_user["seq"]),
                    request_id=request_id,
                    writer_id=writer_id,
                    model=model,
                    now=now,
                )
            if mode != "regenerate":
                raise InvalidRequest("mode is 'regenerate' or 'continue'.")
            conn.execute(
                "DELETE FROM messages WHERE workspace_id = ? AND thread_id = ? AND seq > ?",
                (scope.workspace_id, thread_id, last_user["seq"]),
            )
            seq = int(thread["next_seq"])
            message_id = self._insert_assistant(
                scope,
                thread_id,
                seq,
                now=now,
                model=model,
                writer_id=writer_id,
                reply_to=user_message.id,
                request_id=request_id,
            )
            conn.execute(
                "UPDATE threads SET next_seq = ?, last_message_at = ?, sort_at = ?, "
                "updated_at = ? WHERE workspace_id = ? AND id = ?",
                (seq + 1, now, now, now, scope.workspace_id, thread_id),
            )
            self.refresh_thread_stats(scope, thread_id)
            message, started = self._started(
                scope, thread_id, message_id, 1, user_message, now
            )
            return ReplyStart(
                thread_id=thread_id,
                message=message,
                user_message=user_message,
                started=started,
                history=self._history(scope, thread_id, int(last_user["seq"])),
                system_prompt=thread["system_prompt"],
            )

    def _start_continue(
        self,
        scope: Scope,
        thread: sqlite3.Row,
        user_message: Message,
        user_seq: int,
        *,
        request_id: str | None,
        writer_id: str,
        model: str,
        now: str,
    ) -> ReplyStart:
        thread_id = str(thread["id"])
        last = self.conn.execute(
            "SELECT id, seq, role, content, event_seq FROM messages "
            "WHERE workspace_id = ? AND user_id = ? AND thread_id = ? "
            "ORDER BY seq DESC LIMIT 1",
            (scope.workspace_id, scope.user_id, thread_id),
        ).fetchone()
        if last is None or last["role"] != "assistant" or not last["content"]:
            raise Conflict("There is no reply to continue in this thread.")
        message_id = str(last["id"])
        # Read before the message goes back to `streaming`: its text so far is the
        # last turn of the prompt.
        history = self._history(scope, thread_id, int(last["seq"]))
        # The old stream of this message ended; a continuation is a new stream of the
        # same message, numbered after the old one so old event ids are not reused.
        seq = int(last["event_seq"]) + 1
        self.conn.execute(
            "DELETE FROM events WHERE workspace_id = ? AND message_id = ?",
            (scope.workspace_id, message_id),
        )
        self.conn.execute(
            "UPDATE messages SET status = 'streaming', error = NULL, completed_at = NULL, "
            "usage = NULL, model = ?, writer_id = ?, event_seq = ?, cancel_requested = 0, "
            "request_id = coalesce(?, request_id) "
            "WHERE workspace_id = ? AND thread_id = ? AND id = ?",
            (
                model,
                writer_id,
                seq,
                request_id,
                scope.workspace_id,
                thread_id,
                message_id,
            ),
        )
        self.conn.execute(
            "UPDATE threads SET last_status = 'streaming', updated_at = ? "
            "WHERE workspace_id = ? AND id = ?",
            (now, scope.workspace_id, thread_id),
        )
        message, started = self._started(
            scope, thread_id, message_id, seq, user_message, now
        )
        return ReplyStart(
            thread_id=thread_id,
            message=message,
            user_message=user_message,
            started=started,
            history=history,
            system_prompt=thread["system_prompt"],
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

    # -- editing ---------------------------------------------------------------------

    def edit_message(
        self, scope: Scope, thread_id: str, message_id: str, content: str
    ) -> Message:
        """Replace the last user message's text and delete everything after it.

        Raises:
            NotFound: When the message is not in scope.
            Conflict: When it is not the last user message or a reply is streaming.
            InvalidRequest: When the text is empty or too long.
        """
        with self.sc.write() as conn:
            row = self.message_row(scope, thread_id, message_id, "seq AS position")
            if row["role"] != "user":
                raise Conflict("Only the last user message can be edited.")
            last_user = conn.execute(
                "SELECT id FROM messages WHERE workspace_id = ? AND user_id = ? "
                "AND thread_id = ? AND role = 'user' ORDER BY seq DESC LIMIT 1",
                (scope.workspace_id, scope.user_id, thread_id),
            ).fetchone()
            if last_user["id"] != message_id:
                raise Conflict("Only the last user message can be edited.")
            streaming = conn.execute(
                "SELECT 1 FROM messages WHERE workspace_id = ? AND thread_id = ? "
                "AND status = 'streaming'",
                (scope.workspace_id, thread_id),
            ).fetchone()
            if streaming is not None:
                raise Conflict(STREAMING_CONFLICT)
            validate_content(content, row["attachments"] not in (None, "", "[]"))
            conn.execute(
                "UPDATE messages SET content = ? "
                "WHERE workspace_id = ? AND thread_id = ? AND id = ?",
                (content, scope.workspace_id, thread_id, message_id),
            )
            conn.execute(
                "DELETE FROM messages WHERE workspace_id = ? AND thread_id = ? AND seq > ?",
                (scope.workspace_id, thread_id, row["position"]),
            )
            self.refresh_thread_stats(scope, thread_id)
            return message_from_row(self.message_row(scope, thread_id, message_id))


__all__ = [
    "INTERRUPTED_ERROR",
    "MESSAGE_NOT_FOUND",
    "CheckpointResult",
    "RepliesMixin",
    "ReplyStart",
    "StoredEvents",
    "event_id",
    "parse_event_id",
    "terminal_event_type",
    "validate_content",
]
