"""Starting replies in the store (send, regenerate, continue) and editing a message.

A reply is inserted `streaming`, together with the user message and its
`message.started` event, in one transaction before the model is called; the same
transaction checks that no other reply streams in the thread (ending one whose writer
died) and finds the reply of a repeated `client_request_id`. The rest of a reply's life
is in `store_events.py`.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Literal

from tenex_tui.core.errors import Conflict, InvalidRequest
from tenex_tui.core.events import StreamEvent
from tenex_tui.core.models import Attachment, Message, ToolCall
from tenex_tui.core.payloads import MAX_MESSAGE_CHARS
from tenex_tui.engine.prompt import AttachmentText, HistoryItem
from tenex_tui.engine.store_base import Scope, dumps, message_from_row
from tenex_tui.engine.store_events import INTERRUPTED_ERROR, EventsMixin, event_id
from tenex_tui.engine.writer_lock import writer_alive

HISTORY_MESSAGES = 500
"""Messages read for a prompt at most (the prompt builder trims further by size)."""

STREAMING_CONFLICT = (
    "A reply is already streaming in this thread; stop it or wait for it to finish."
)


def validate_content(content: str, has_attachments: bool = False) -> None:
    """Check a user message's text.

    Raises:
        InvalidRequest: When it is empty (and nothing is attached) or too long.
    """
    if len(content) > MAX_MESSAGE_CHARS:
        raise InvalidRequest(f"A message is at most {MAX_MESSAGE_CHARS} characters.")
    if not content.strip() and not has_attachments:
        raise InvalidRequest("A message needs some text.")


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


class RepliesMixin(EventsMixin):
    """Starting replies and editing the last user message."""

    # -- helpers ---------------------------------------------------------------------

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
