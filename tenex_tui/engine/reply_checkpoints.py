"""Checkpoints of every live reply of one engine, batched into one transaction.

A reply streams in memory and its pending text and events are written in short
transactions (DESIGN.md §4: at most every ~250 ms). One transaction per reply per
interval is fine for a terminal with one reply, but a server with hundreds of live
replies then commits hundreds of times a second on one DB thread, and that thread's
Python work competes with the event loop for the GIL. `CheckpointBatcher` writes
every reply that has something pending in ONE transaction per interval instead:

- a reply marks itself dirty when it publishes an event (`mark`), or urgent when a lot
  of text is pending (`urgent`, 4 KiB): the batch then runs at once;
- a batch takes each dirty reply's pending data under that reply's `WriteGate` (a reply
  whose final commit holds the gate is left to it), writes them all with
  `Store.checkpoint_many`, and hands every reply its own result (deleted, or asked to
  stop by another process);
- a failed batch (disk full, busy) gives every reply its data back, and the next one is
  tried with backoff; the replies keep streaming in memory meanwhile;
- quiet replies (nothing pending) have their stop flag read every
  `CANCEL_CHECK_SECONDS`, in the same trip to the DB thread, so a cancel from another
  process reaches a reply that is waiting for its model.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Coroutine
from typing import TYPE_CHECKING, Any, Protocol

from tenex_tui.core.errors import StorageError
from tenex_tui.engine.store_events import CheckpointItem, CheckpointResult, FlagCheck

if TYPE_CHECKING:
    from tenex_tui.engine.store import Store
    from tenex_tui.engine.store_db import DbThread

CANCEL_CHECK_SECONDS = 1.0
"""How often a quiet reply looks for a stop request from another process."""
MAX_BACKOFF_SECONDS = 5.0
"""The longest wait between failed batches."""


class Checkpointable(Protocol):
    """What the batcher asks of a live reply (`replies.LiveReply`)."""

    message_id: str

    def batch_busy(self) -> bool:
        """Whether another write of this reply (its final commit) holds its lock."""
        ...

    def batch_take(self) -> CheckpointItem | None:
        """Lock the reply and take its pending data (None: nothing pending)."""
        ...

    def batch_flag_check(self) -> FlagCheck:
        """What to read for a quiet reply."""
        ...

    def batch_done(self, item: CheckpointItem, result: CheckpointResult) -> None:
        """The batch wrote the item; unlock."""
        ...

    def batch_failed(self, item: CheckpointItem, error: StorageError) -> None:
        """The batch failed; take the data back and unlock."""
        ...

    def batch_flags(self, result: CheckpointResult) -> None:
        """The flags of a quiet reply were read."""
        ...


class WriteGate:
    """Lets one write of a reply's data run at a time.

    Like an `asyncio.Lock`, plus `enter_now` for the batcher, which takes the gate of
    many replies synchronously while it builds one batch (it checks `busy` first).
    """

    def __init__(self) -> None:
        self._held: asyncio.Future[None] | None = None

    @property
    def busy(self) -> bool:
        """Whether a write holds the gate."""
        return self._held is not None

    def enter_now(self) -> None:
        """Take the free gate without waiting."""
        assert self._held is None, "the gate is held"
        self._held = asyncio.get_running_loop().create_future()

    def leave(self) -> None:
        """Give the gate back, waking whoever waits for it."""
        held, self._held = self._held, None
        if held is not None and not held.done():
            held.set_result(None)

    @contextlib.asynccontextmanager
    async def hold(self) -> AsyncIterator[None]:
        """Wait for the gate, hold it for the block."""
        while self._held is not None:
            # asyncio.wait never cancels the held future when this waiter is.
            await asyncio.wait({self._held})
        self.enter_now()
        try:
            yield
        finally:
            self.leave()


class CheckpointBatcher:
    """Writes the pending data of every live reply of one engine, one batch per tick.

    Args:
        db: The engine's DB thread.
        store: The store (its `checkpoint_many` runs on the DB thread).
        interval: Seconds between batches (the engine's checkpoint interval).
        spawn: Starts the batcher's task as an engine-owned task (cancelled when the
            engine closes).
    """

    def __init__(
        self,
        db: DbThread,
        store: Store,
        interval: float,
        spawn: Callable[[Coroutine[Any, Any, None]], asyncio.Task[None]],
    ) -> None:
        self._db = db
        self._store = store
        self._interval = interval
        self._spawn = spawn
        self._live: dict[str, Checkpointable] = {}
        self._dirty: dict[str, Checkpointable] = {}
        self._wakeup = asyncio.Event()
        self._urgent = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._observers: list[asyncio.Future[None]] = []
        self.batches = 0
        """How many batches were written (for tests and diagnostics)."""

    def register(self, reply: Checkpointable) -> None:
        """Follow a reply from its start; the batcher's task starts with the first."""
        self._live[reply.message_id] = reply
        if self._task is None or self._task.done():
            self._task = self._spawn(self._run())
        elif not self._wakeup.is_set():
            self._wakeup.set()  # Its flags are due from now on.

    def unregister(self, reply: Checkpointable) -> None:
        """Forget a reply (its final commit wrote what was left)."""
        self._live.pop(reply.message_id, None)
        self._dirty.pop(reply.message_id, None)

    def mark(self, reply: Checkpointable) -> None:
        """The reply has pending data for the next batch."""
        if reply.message_id not in self._dirty:
            self._dirty[reply.message_id] = reply
            if not self._wakeup.is_set():
                self._wakeup.set()

    def urgent(self, reply: Checkpointable) -> None:
        """The reply has a lot pending: write the batch now."""
        self.mark(reply)
        self._urgent.set()

    async def wait_for(self, predicate: Callable[[], bool]) -> None:
        """Wait until `predicate()` holds, looking after every batch attempt.

        For tests and diagnostics: "until these replies are written", "until a
        write failed". Bound it with a timeout; it waits as long as batches fail.
        """
        loop = asyncio.get_running_loop()
        while not predicate():
            waiter: asyncio.Future[None] = loop.create_future()
            self._observers.append(waiter)
            await waiter

    def _attempted(self) -> None:
        observers, self._observers = self._observers, []
        for waiter in observers:
            if not waiter.done():
                waiter.set_result(None)

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        last = loop.time()
        last_flags = last
        backoff = self._interval
        while True:
            if not self._dirty:
                self._wakeup.clear()
                with contextlib.suppress(TimeoutError):
                    # Quiet replies' flags are read every CANCEL_CHECK_SECONDS; with
                    # no live reply there is nothing to look at until one starts.
                    quiet = CANCEL_CHECK_SECONDS if self._live else None
                    async with asyncio.timeout(quiet):
                        await self._wakeup.wait()
                if not self._dirty:
                    if self._live:
                        await self._write(flags_only=True)
                        last_flags = loop.time()
                    continue
            delay = last + backoff - loop.time()
            if delay > 0 and not self._urgent.is_set():
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(delay):
                        await self._urgent.wait()
            with_flags = loop.time() - last_flags >= CANCEL_CHECK_SECONDS
            # Shielded: stopping the batcher mid-write must not lose the outcome (a
            # reply's final commit waits for the flush lock this batch holds).
            ok = await asyncio.shield(self._write(flags_only=False, flags=with_flags))
            last = loop.time()
            if with_flags:
                last_flags = last
            backoff = (
                self._interval
                if ok
                else min(max(backoff * 2, 0.1), MAX_BACKOFF_SECONDS)
            )

    async def _write(self, *, flags_only: bool, flags: bool = True) -> bool:
        """One batch: every dirty reply's data, and the flags of the quiet ones."""
        self._urgent.clear()
        taken: list[tuple[Checkpointable, CheckpointItem]] = []
        if not flags_only:
            dirty, self._dirty = self._dirty, {}
            busy: dict[str, Checkpointable] = {}
            for message_id, reply in dirty.items():
                if reply.batch_busy():
                    # Another write holds it (its final commit, or a direct
                    # checkpoint): look again next time; a finished reply leaves.
                    busy[message_id] = reply
                    continue
                item = reply.batch_take()
                if item is not None:
                    taken.append((reply, item))
            self._dirty.update(busy)
        written = {item.message_id for _, item in taken}
        quiet = (
            [
                r
                for m, r in self._live.items()
                if m not in written and m not in self._dirty
            ]
            if flags
            else []
        )
        if not taken and not quiet:
            self._attempted()
            return True
        try:
            results, flag_results = await self._db.run(
                self._store.checkpoint_many,
                [item for _, item in taken],
                [reply.batch_flag_check() for reply in quiet],
            )
        except StorageError as exc:
            for reply, item in taken:
                reply.batch_failed(item, exc)
            return False
        except BaseException:
            # Cancelled while shielded elsewhere, or a bug: never keep a lock held.
            for reply, item in taken:
                reply.batch_failed(item, StorageError("the checkpoint did not finish"))
            raise
        finally:
            self._attempted()
        self.batches += 1
        for (reply, item), result in zip(taken, results, strict=True):
            reply.batch_done(item, result)
        for reply, result in zip(quiet, flag_results, strict=True):
            reply.batch_flags(result)
        return True


__all__ = ["CANCEL_CHECK_SECONDS", "CheckpointBatcher", "Checkpointable", "WriteGate"]
