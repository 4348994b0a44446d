"""Live replies: the engine-owned task that streams a model's answer, its event fan-out,
and its checkpoints.

One `LiveReply` per streaming assistant message in this process:

- The producer task iterates `LLMAdapter.stream`, turns each item into a `StreamEvent`
  (ids `"<message_id>.<seq>"`, per message, sequential), appends it to the in-memory
  list every follower reads, and marks it pending. The per-delta path does no SQL.
- The engine's `CheckpointBatcher` writes the pending text and events of every live
  reply in one short `BEGIN IMMEDIATE` transaction at most every `checkpoint_interval`
  seconds, or at once when 4 KiB of text is pending. A failed checkpoint (disk full,
  busy) keeps its data pending and is retried with backoff; the reply keeps streaming
  in memory meanwhile.
- The end is one durable transaction holding the last text, the last events and the
  terminal state; only then is the terminal event published, so a follower that sees
  `message.completed` can read the finished message.
- Followers (`follow`) read the list from any position and wait for more; leaving the
  iteration detaches a follower and never stops the reply. `cancel` stops it.
- When the model finishes a round by asking for tools, the reply runs them
  (`tool_loop`), records every envelope change as a `message.tool_call` event, and
  streams the model again with the results; all rounds write into this one message.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from tenex_tui.core.errors import ModelError, StorageError, StorageGone
from tenex_tui.core.events import EventType, StreamEvent
from tenex_tui.core.models import Message, ToolCall, Usage
from tenex_tui.core.secrets import redact
from tenex_tui.engine import request_signal
from tenex_tui.engine.llm import (
    ChatTurn,
    Finished,
    LLMAdapter,
    StreamBroken,
    TextDelta,
    ToolCallProgress,
    ToolSpec,
)
from tenex_tui.engine.reply_calls import Clock, ReplyCalls
from tenex_tui.engine.reply_checkpoints import CheckpointBatcher, WriteGate
from tenex_tui.engine.store_base import Scope
from tenex_tui.engine.store_events import (
    CheckpointItem,
    CheckpointResult,
    EndStatus,
    FlagCheck,
    event_id,
    terminal_event_type,
)
from tenex_tui.engine.tool_loop import (
    ToolSession,
    add_usage,
    continuation,
    refuse,
    round_cap_error,
    round_cap_note,
    run_round,
    unfinished_error,
)

if TYPE_CHECKING:
    from tenex_tui.engine.store import Store
    from tenex_tui.engine.store_db import DbThread

logger = logging.getLogger("tenex_tui.engine")

MAX_REPLY_BYTES = 1024 * 1024
"""Text a reply may hold (UTF-8 bytes); beyond it the reply is cut and ends `error`."""
CUT_MESSAGE = "reply cut at 1 MiB"
URGENT_PENDING_CHARS = 4096
"""Pending text that triggers a checkpoint before the interval is up."""
STOP_WAIT_SECONDS = 10.0
"""How long a cancel waits for the reply's final commit."""
ENDED_EARLY = "The model's reply ended before it finished (no finish reason)."


@dataclass(frozen=True)
class _Round:
    """How one streaming round of the model ended."""

    text: str
    """The text the round added."""
    finished: Finished | None
    """The model's end, or None when the stream ended without one."""
    cut: bool = False
    """The reply reached its size cap during the round."""


class LiveReply:
    """One reply being streamed by this process, and everyone following it."""

    def __init__(
        self,
        *,
        db: DbThread,
        store: Store,
        scope: Scope,
        started: StreamEvent,
        writer_id: str,
        checkpoints: CheckpointBatcher,
        initial_bytes: int = 0,
        initial_calls: Sequence[ToolCall] = (),
    ) -> None:
        self.db = db
        self.store = store
        self.scope = scope
        self.thread_id = started.thread_id
        self.message_id = started.message_id
        self.writer_id = writer_id
        self.first_seq = int(started.id.rpartition(".")[2])
        self.events: list[StreamEvent] = [started]
        self.final: Message | None = None
        self.done = asyncio.Event()
        self.requested = asyncio.Event()
        """Set once the model request is on its way (the adapter announced it, see
        `request_signal`, or else the producer first waited inside the stream), or
        the reply ended without one."""
        self.stop_reason: Literal["stopped"] | None = None
        self.save_error: StorageError | None = None
        self.task: asyncio.Task[None] | None = None
        self._checkpoints = checkpoints
        self._next_seq = self.first_seq + 1
        self._bytes = initial_bytes
        self._waiters: list[asyncio.Future[None]] = []
        self._pending_events: list[StreamEvent] = []
        self._pending_text: list[str] = []
        self._pending_chars = 0
        self._marked = False
        """True while the batcher has this reply in its next batch."""
        self._gate = WriteGate()
        """One write of this reply's data at a time (a batch, a checkpoint, the end)."""
        self._calls = ReplyCalls(initial_calls, self._publish_call)
        self._tools: ToolSession | None = None
        self._text_tail = ""
        self._rounds_streamed = 0
        self._usage: Usage | None = None
        self._answered = False
        self._orphaned = False
        self._closing = False
        self._finishing = False

    # -- followers -------------------------------------------------------------------

    @property
    def pending(self) -> int:
        """Events published but not written to the database yet."""
        return len(self._pending_events)

    @property
    def last_seq(self) -> int:
        """The sequence number of the newest event published."""
        return self._next_seq - 1

    async def follow(self, after_seq: int | None = None) -> AsyncIterator[StreamEvent]:
        """The events after `after_seq` (all for None), then the live tail.

        Ends after the terminal event. Leaving early detaches only this follower.
        """
        index = 0 if after_seq is None else after_seq - self.first_seq + 1
        while True:
            while index < len(self.events):
                event = self.events[index]
                index += 1
                yield event
                if event.terminal:
                    return
            if self.events[-1].terminal:
                return  # resumed after the terminal event: nothing more will come
            waiter = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            await waiter

    def _publish(self, event: StreamEvent) -> None:
        self.events.append(event)
        # Followers wait on plain futures: cheaper than a fresh asyncio.Event per
        # event, and every follower waiting now wakes once for all events published
        # before it runs.
        waiters = self._waiters
        if waiters:
            self._waiters = []
            for waiter in waiters:
                if not waiter.done():
                    waiter.set_result(None)

    def _event(self, type_: EventType, **fields: object) -> StreamEvent:
        seq = self._next_seq
        self._next_seq += 1
        return StreamEvent.model_validate(
            {
                "id": event_id(self.message_id, seq),
                "type": type_,
                "message_id": self.message_id,
                "thread_id": self.thread_id,
                **fields,
            }
        )

    def _delta_event(self, text: str) -> StreamEvent:
        # The hot path (one per model read). Keyword construction is the cheapest
        # way to a validated event (~2 µs; `model_validate` of a dict ~3.5 µs, and
        # `model_construct` ~25 µs: it inspects the `extra` default factory's
        # signature on every call).
        seq = self._next_seq
        self._next_seq += 1
        return StreamEvent(
            id=event_id(self.message_id, seq),
            type="message.delta",
            message_id=self.message_id,
            thread_id=self.thread_id,
            delta=text,
        )

    def _publish_call(self, call: ToolCall) -> None:
        self._emit(self._event("message.tool_call", tool_call=call))

    def _clock(self) -> Clock | None:
        # Envelopes get completion times from the tools' clock (none without tools).
        return self._tools.clock.now if self._tools is not None else None

    def _emit(self, event: StreamEvent) -> None:
        self._pending_events.append(event)
        self._publish(event)
        if not self._marked:
            self._marked = True
            self._checkpoints.mark(self)

    # -- the producer ----------------------------------------------------------------

    def start(
        self,
        llm: LLMAdapter,
        turns: Sequence[ChatTurn],
        model: str,
        tools: ToolSession | None = None,
    ) -> None:
        """Start the producer as an engine-owned task (the batcher checkpoints it).

        Args:
            llm: The model.
            turns: The prompt.
            model: The model id.
            tools: The tools the reply may run (None: tools are neither offered nor
                run, and calls stay `requested`).
        """
        self._tools = tools
        self._checkpoints.register(self)
        self.task = asyncio.get_running_loop().create_task(
            self._run(llm, turns, model), name=f"reply-{self.message_id}"
        )
        # Its end wrote everything left: the batcher forgets it (also if the task
        # never ran).
        self.task.add_done_callback(lambda _task: self._checkpoints.unregister(self))
        self.task.add_done_callback(lambda _task: self.requested.set())

    async def cancel(self) -> None:
        """Stop the reply; it ends `stopped` with its partial text. Idempotent."""
        if self.task is None or self.done.is_set():
            return
        if not self._finishing:
            self.stop_reason = "stopped"
            self.task.cancel()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(STOP_WAIT_SECONDS):
                await self.done.wait()

    def _add_text(self, text: str) -> bool:
        """Append reply text; True when the size cap was reached (text cut to fit)."""
        size = len(text.encode("utf-8"))
        cut = False
        if self._bytes + size > MAX_REPLY_BYTES:
            room = MAX_REPLY_BYTES - self._bytes
            text = text.encode("utf-8")[:room].decode("utf-8", "ignore")
            size = len(text.encode("utf-8"))
            cut = True
        self._bytes += size
        if text:
            self._text_tail = (self._text_tail + text)[-2:]
            self._pending_text.append(text)
            self._pending_chars += len(text)
            self._emit(self._delta_event(text))
            if self._pending_chars >= URGENT_PENDING_CHARS:
                self._checkpoints.urgent(self)
        return cut

    def _separator(self) -> str:
        # A later round's text starts a new paragraph after the earlier rounds' text.
        if not self._text_tail or self._text_tail.endswith("\n\n"):
            return ""
        return "\n" if self._text_tail.endswith("\n") else "\n\n"

    # -- the producer ----------------------------------------------------------------

    async def _stream_round(
        self,
        llm: LLMAdapter,
        turns: Sequence[ChatTurn],
        model: str,
        specs: Sequence[ToolSpec],
    ) -> _Round:
        parts: list[str] = []
        separator = self._separator() if self._rounds_streamed else ""
        self._rounds_streamed += 1
        stream = llm.stream(turns, model=model, tools=specs)
        if not self.requested.is_set():
            if getattr(llm, "announces_requests", False):
                request_signal.listen(self.requested.set)
            else:
                # Runs when this task first suspends inside the stream.
                asyncio.get_running_loop().call_soon(self.requested.set)
        try:
            async for item in stream:
                if isinstance(item, TextDelta):
                    if not item.text:
                        continue
                    text = item.text if parts else separator + item.text
                    parts.append(item.text)
                    if self._add_text(text):
                        return _Round("".join(parts), None, cut=True)
                elif isinstance(item, ToolCallProgress):
                    self._calls.progress(item)
                elif isinstance(item, Finished):
                    self._usage = add_usage(self._usage, item.usage)
                    # A round without calls ends the reply: a cancel that lands
                    # while the stream closes no longer changes its outcome.
                    self._answered = not item.tool_calls
                    return _Round("".join(parts), item)
        finally:
            # Closing the adapter's iterator closes the HTTP stream, so the server
            # stops generating (a cut reply, a cancel, or an error alike).
            closer = getattr(stream, "aclose", None)
            if closer is not None:
                with contextlib.suppress(Exception):
                    await closer()
        return _Round("".join(parts), None)

    async def _rounds(
        self, llm: LLMAdapter, turns: Sequence[ChatTurn], model: str
    ) -> tuple[EndStatus, str | None]:
        """Stream the model, running tools between rounds (see `tool_loop`)."""
        tools = self._tools
        conversation = list(turns)
        specs = tools.specs if tools is not None else ()
        rounds = 0
        while True:
            result = await self._stream_round(llm, conversation, model, specs)
            if result.cut:
                return "error", CUT_MESSAGE
            if result.finished is None:
                raise StreamBroken(ENDED_EARLY)
            calls = self._calls.finished(result.finished.tool_calls, self._clock())
            if tools is None or not calls:
                return "complete", None
            if result.finished.finish_reason != "tool_calls":
                reason = unfinished_error(result.finished.finish_reason)
                refuse(tools, calls, reason, self._calls.set)
                return "complete", None
            if rounds >= tools.max_rounds:
                refuse(tools, calls, round_cap_error(tools.max_rounds), self._calls.set)
                self._add_text(self._separator() + round_cap_note(tools.max_rounds))
                return "complete", None
            done = await run_round(tools, calls, self._calls.set)
            conversation += continuation(result.text, done)
            rounds += 1

    async def _run(
        self, llm: LLMAdapter, turns: Sequence[ChatTurn], model: str
    ) -> None:
        status: EndStatus = "complete"
        error: str | None = None
        try:
            status, error = await self._rounds(llm, turns, model)
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if current is not None:
                current.uncancel()
            if not self._answered:
                status, error = "stopped", None
        except StreamBroken as exc:
            status, error = "interrupted", redact(str(exc))
        except ModelError as exc:
            status, error = "error", redact(str(exc))
        except Exception as exc:
            logger.exception("reply %s failed", self.message_id)
            status, error = (
                "error",
                redact(f"internal error: {type(exc).__name__}: {exc}"),
            )
        # From here on the reply is ending: a cancel can no longer interrupt the save.
        self._finishing = True
        if status != "complete":
            self._calls.close_open(self._clock())
        await self._finish(status, error, self._usage)

    # -- persistence -----------------------------------------------------------------

    def _take_pending(self) -> tuple[str, str | None, list[StreamEvent]]:
        text = "".join(self._pending_text)
        calls = self._calls.take_json()
        events = self._pending_events
        self._pending_text, self._pending_chars = [], 0
        self._pending_events = []
        self._marked = False
        return text, calls, events

    def _restore_pending(
        self, text: str, calls: str | None, events: list[StreamEvent]
    ) -> None:
        self._pending_text.insert(0, text)
        self._pending_chars += len(text)
        self._pending_events[:0] = events
        if calls is not None:
            self._calls.dirty = True
        if not self._finishing:
            self._marked = True
            self._checkpoints.mark(self)

    # -- the batcher's side (see reply_checkpoints.CheckpointBatcher) ----------------

    def batch_busy(self) -> bool:
        """Whether another write of this reply holds its flush lock."""
        return self._gate.busy

    def batch_take(self) -> CheckpointItem | None:
        """Lock the reply and take its pending data for a batch (None: nothing)."""
        if not self._pending_events and not self._calls.dirty:
            self._marked = False
            return None
        self._gate.enter_now()
        text, calls, events = self._take_pending()
        return CheckpointItem(
            scope=self.scope,
            message_id=self.message_id,
            writer_id=self.writer_id,
            text=text,
            tool_calls=calls,
            events=events,
        )

    def batch_flag_check(self) -> FlagCheck:
        """The read a batch does for this reply while it is quiet."""
        return FlagCheck(self.scope, self.message_id, self.writer_id)

    def batch_done(self, item: CheckpointItem, result: CheckpointResult) -> None:
        """A batch wrote this reply's data."""
        self._gate.leave()
        self.save_error = None
        self.batch_flags(result)

    def batch_failed(self, item: CheckpointItem, error: StorageError) -> None:
        """A batch failed: the data is pending again, for the next one."""
        self._restore_pending(item.text, item.tool_calls, list(item.events))
        self._gate.leave()
        if self.save_error is None:
            logger.warning("reply %s not saved yet: %s", self.message_id, error)
        self.save_error = error

    def batch_flags(self, result: CheckpointResult) -> None:
        """What a batch learned about this reply: deleted, or asked to stop."""
        if not result.alive:
            self._abandon()
        elif result.cancel_requested:
            self._stop_from_flag()

    async def checkpoint(self) -> bool:
        """Write pending text and events now; False when the write failed (kept)."""
        async with self._gate.hold():
            if not self._pending_events and not self._calls.dirty:
                self._marked = False
                return True
            text, calls, events = self._take_pending()
            try:
                result = await self.db.run(
                    self.store.checkpoint,
                    self.scope,
                    self.message_id,
                    self.writer_id,
                    text=text,
                    tool_calls=calls,
                    events=events,
                )
            except StorageError as exc:
                self._restore_pending(text, calls, events)
                if self.save_error is None:
                    logger.warning("reply %s not saved yet: %s", self.message_id, exc)
                self.save_error = exc
                return False
            self.save_error = None
        self.batch_flags(result)
        return True

    def _abandon(self) -> None:
        # The message was deleted (its thread too, perhaps): stop quietly.
        self._orphaned = True
        if self.task is not None and not self._finishing:
            self.task.cancel()

    def _stop_from_flag(self) -> None:
        if self.task is not None and not self._finishing:
            self.stop_reason = "stopped"
            self.task.cancel()

    async def _finish(
        self, status: EndStatus, error: str | None, usage: Usage | None
    ) -> None:
        fields: dict[str, object] = {"status": status}
        if error is not None:
            fields["error"] = error
        if status == "complete":
            fields["usage"] = usage
        terminal = self._event(terminal_event_type(status), **fields)
        final: Message | None = None
        async with self._gate.hold():
            text, calls, events = self._take_pending()
            events.append(terminal)
            delay = 0.05
            while not self._orphaned:
                try:
                    final = await self.db.run(
                        self.store.finish,
                        self.scope,
                        self.thread_id,
                        self.message_id,
                        self.writer_id,
                        status=status,
                        text=text,
                        error=error,
                        usage=usage if status == "complete" else None,
                        tool_calls=calls,
                        events=events,
                    )
                    self.save_error = None
                    break
                except StorageGone as exc:
                    # The file is gone (T10): retrying cannot save the reply, and
                    # followers must not be told it completed.
                    self.save_error = exc
                    logger.error("reply %s not saved: %s", self.message_id, exc)
                    if not self.events[-1].terminal:
                        self._publish(self._unsaved(exc))
                    break
                except StorageError as exc:
                    self.save_error = exc
                    if self._closing or delay > 30:
                        logger.error(
                            "reply %s could not be saved: %s", self.message_id, exc
                        )
                        break
                    if delay == 0.05:
                        logger.warning(
                            "reply %s not saved yet: %s", self.message_id, exc
                        )
                        # Followers learn the outcome now; the save keeps trying.
                        self._publish(terminal)
                    await asyncio.sleep(delay)
                    delay *= 2
        self.final = final
        if not self.events[-1].terminal:
            self._publish(terminal.model_copy(update={"message": final}))
        self.done.set()

    def _unsaved(self, error: StorageGone) -> StreamEvent:
        # The terminal event of a reply that could not be saved at all.
        reason = f"The reply could not be saved. {error.message}"
        return self._event(terminal_event_type("error"), status="error", error=reason)

    def closing(self) -> None:
        """The engine is shutting down: stop retrying failed saves after this one."""
        self._closing = True
