"""`SyncService`: mirror a remote workspace into the local store, and replay the outbox.

`sync()` does, in this order:

1. **Who am I.** `GET /me` names the key's workspace and user. The mirror lives in the
   local workspace `<remote workspace>@<host[:port]>` for that user, so it can never be
   one of this machine's own workspaces, and two remotes never share rows.
2. **Push.** Pending offline actions are replayed in order, exactly once (`outbox.py`).
   Pushing first means the pull that follows already reflects them.
3. **Pull.** The thread feed, then the message feed (`GET /sync/threads`,
   `GET /sync/messages`), each from its stored cursor until `has_more` is false. Each page
   is applied in one local transaction together with its cursor, so the sync is
   incremental (only what changed since the last run travels) and resumable (a run
   killed at any point restarts from the last page it committed; applying a page twice
   changes nothing).

Deletions reach the mirror two ways: incrementally through the feeds' tombstones, and,
on a full pull (the first one, or after the server refused a stored cursor, e.g. because
its database was replaced), through a full id reconciliation: mirrored rows the full
pull did not see are removed.

A hostile or buggy remote cannot corrupt other data (T62): rows naming another
workspace or user than the key's are dropped and logged; the mirror's composite keys
mean a colliding id never touches another workspace's row; a `next_cursor` already seen
in this run stops the pagination; answers are size-capped and validated by the HTTP
layer.

`status()` is what the app shows: online or offline, pending actions, the last sync time
and error.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import AsyncGenerator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar

import pydantic

from tenex_tui.core.errors import (
    InvalidCursor,
    NotFound,
    RemoteUnavailable,
    TenexError,
    Unauthorized,
)
from tenex_tui.core.models import Thread
from tenex_tui.core.sync import MessageChanges, SyncState, SyncStatus, ThreadChanges
from tenex_tui.remote.client import RemoteBackend
from tenex_tui.remote.outbox import (
    OutboxPolicy,
    OutboxReplayer,
    ReplayReport,
    Sleep,
    utc_now,
)
from tenex_tui.remote.sync_port import MirrorPort, MirrorProvider

__all__ = [
    "SyncPolicy",
    "SyncReport",
    "SyncService",
    "SyncStatus",
    "describe",
    "mirror_workspace_id",
    "run_periodically",
]

log = logging.getLogger("tenex_tui.sync")

ModelT = TypeVar("ModelT", bound=pydantic.BaseModel)
FeedT = TypeVar("FeedT", ThreadChanges, MessageChanges)


@dataclass(frozen=True)
class SyncPolicy:
    """Page sizes and bounds of a pull."""

    page_limit: int = 500
    """Changes asked for per page (the server caps it at 1000)."""
    max_pages: int = 100_000
    """Pages read per feed in one run at most (a bound on the loop)."""
    outbox: OutboxPolicy = field(default_factory=OutboxPolicy)


@dataclass
class SyncReport:
    """What one `sync()` did."""

    threads: int = 0
    """Threads created or updated in the mirror."""
    threads_deleted: int = 0
    messages: int = 0
    messages_deleted: int = 0
    dropped: int = 0
    """Rows refused because they named another workspace or user (T62)."""
    pruned: int = 0
    """Rows removed by a full reconciliation."""
    full: bool = False
    """True when this pull started from scratch."""
    pages: int = 0
    push: ReplayReport = field(default_factory=ReplayReport)
    pending: int = 0
    """Offline actions still waiting after this run."""
    failed: int = 0
    """Offline actions the remote refused for good (kept, visible)."""
    warnings: list[str] = field(default_factory=list)
    seconds: float = 0.0


def mirror_workspace_id(remote: RemoteBackend, remote_workspace_id: str) -> str:
    """The local workspace of a remote's mirror: `<remote workspace>@<host[:port]>`."""
    url = remote.http.base_url
    netloc = url.host if url.port is None else f"{url.host}:{url.port}"
    return f"{remote_workspace_id}@{netloc}"


class SyncService:
    """Keeps the local mirror of one remote workspace and replays its outbox.

    Args:
        remote: The remote workspace.
        mirrors: The local store (`LocalEngine`).
        policy: Page sizes, bounds, outbox pacing.
        sleep: How waits happen (a fake in tests).
        rng: The jitter source (seeded in tests).
        now: The clock that dates backoffs.
    """

    def __init__(
        self,
        remote: RemoteBackend,
        mirrors: MirrorProvider,
        *,
        policy: SyncPolicy | None = None,
        sleep: Sleep | None = None,
        rng: random.Random | None = None,
        now: Callable[[], datetime] = utc_now,
    ) -> None:
        self.remote = remote
        self._mirrors = mirrors
        self._policy = policy or SyncPolicy()
        self._sleep: Sleep = sleep or asyncio.sleep
        self._rng = rng or random.Random()
        self._now = now
        self._lock = asyncio.Lock()
        self._port: MirrorPort | None = None
        self._remote_ids: tuple[str, str] | None = None
        self._online: bool | None = None

    @property
    def remote_base(self) -> str:
        """The API base, as `sync_state` records it."""
        return str(self.remote.http.base_url)

    @property
    def port(self) -> MirrorPort | None:
        """The mirror, once `connect()` or `open_offline()` found it."""
        return self._port

    @property
    def online(self) -> bool | None:
        """The outcome of the last request to the remote (None before any)."""
        return self._online

    async def connect(self) -> MirrorPort:
        """Ask the remote who the key is, and open (creating) its mirror.

        Raises:
            Unauthorized: When the key is refused.
            RemoteUnavailable: When the remote cannot be reached.
        """
        try:
            answer = await self.remote.http.request("GET", "/me")
        except RemoteUnavailable:
            self._online = False
            raise
        self._online = True
        data = answer.data if isinstance(answer.data, dict) else {}
        workspace = str(data.get("workspace_id") or "")
        user = str(data.get("user_id") or "")
        if not workspace or not user:
            raise RemoteUnavailable(
                f"GET /me on {self.remote.http.host} did not name a workspace and user."
            )
        info = data.get("info") if isinstance(data.get("info"), dict) else {}
        name = str((info or {}).get("workspace") or workspace)
        port = self._mirrors.mirror(mirror_workspace_id(self.remote, workspace), user)
        await port.ensure(
            remote_base=self.remote_base,
            remote_workspace_id=workspace,
            workspace_name=name,
        )
        self._port = port
        self._remote_ids = (workspace, user)
        return port

    async def open_offline(self) -> MirrorPort | None:
        """Open the most recently synced mirror of this remote without asking it.

        Returns:
            The mirror, or None when this remote was never synced here.
        """
        if self._port is not None:
            return self._port
        states = await self._mirrors.find_mirrors(self.remote_base)
        if not states:
            return None
        state = states[0]
        self._port = self._mirrors.mirror(state.workspace_id, state.user_id)
        self._remote_ids = (state.remote_workspace_id, state.remote_user_id)
        return self._port

    async def sync(self) -> SyncReport:
        """Push the outbox, then pull both feeds (one run at a time).

        Returns:
            Counts of what changed, and what is still pending.

        Raises:
            RemoteUnavailable: When the remote cannot be reached (recorded in the
                status; pending actions stay queued).
            Unauthorized: When the key is refused.
            TenexError: Any other failure of the remote or the store.
        """
        async with self._lock:
            started = time.perf_counter()
            report = SyncReport()
            port: MirrorPort | None = None
            try:
                port = await self.connect()
                report.push = await self._push(port)
                await self._pull(port, report)
            except TenexError as exc:
                if isinstance(exc, RemoteUnavailable):
                    self._online = False
                elif isinstance(exc, Unauthorized):
                    self._online = True
                port = port or self._port or await self.open_offline()
                if port is not None:
                    await port.record_outcome(exc.message)
                raise
            error = report.push.error
            state = await port.record_outcome(error, pulled=True)
            counts = await port.counts()
            report.pending = counts.get("pending", 0)
            report.failed = counts.get("failed", 0)
            report.seconds = time.perf_counter() - started
            log.info(
                "synced %s: %d threads, %d messages, %d pushed, %d pending (%.2fs)",
                state.workspace_id,
                report.threads,
                report.messages,
                report.push.done,
                report.pending,
                report.seconds,
            )
            return report

    async def status(self) -> SyncStatus:
        """What the app shows (reads the local store only, never the remote)."""
        port = self._port or await self.open_offline()
        state: SyncState | None = None
        counts: dict[str, int] = {}
        if port is not None:
            state = await port.state()
            counts = await port.counts()
        online = self.remote.online if self.remote.online is not None else self._online
        return SyncStatus(
            online=online,
            pending=counts.get("pending", 0),
            failed=counts.get("failed", 0),
            last_sync_at=state.last_sync_at if state else None,
            last_error=state.last_error if state else None,
            syncing=self._lock.locked(),
            workspace_id=port.workspace_id if port else None,
        )

    # -- push ------------------------------------------------------------------------

    async def _push(self, port: MirrorPort) -> ReplayReport:
        replayer = OutboxReplayer(
            self.remote,
            port,
            policy=self._policy.outbox,
            sleep=self._sleep,
            rng=self._rng,
            now=self._now,
        )
        return await replayer.replay()

    # -- pull ------------------------------------------------------------------------

    async def _feed(self, path: str, model: type[ModelT], cursor: str | None) -> ModelT:
        params = {"limit": str(self._policy.page_limit)}
        if cursor is not None:
            params["cursor"] = cursor
        try:
            answer = await self.remote.http.request("GET", path, params=params)
        except NotFound:
            raise RemoteUnavailable(
                f"{self.remote.http.host} does not offer incremental sync "
                f"(GET {path} is not a route there): its threads can be used online "
                "only."
            ) from None
        try:
            return model.model_validate(answer.data)
        except pydantic.ValidationError:
            raise RemoteUnavailable(
                f"GET {path} on {self.remote.http.host} answered with something that "
                "is not a sync page."
            ) from None

    def _ours(self, thread: Thread, report: SyncReport) -> bool:
        assert self._remote_ids is not None
        workspace, user = self._remote_ids
        if thread.workspace_id == workspace and thread.user_id == user:
            return True
        report.dropped += 1
        log.warning(
            "sync dropped thread %r: it names workspace %r / user %r, not the key's",
            thread.id[:80],
            thread.workspace_id[:80],
            thread.user_id[:80],
        )
        return False

    async def _pull(self, port: MirrorPort, report: SyncReport) -> None:
        state = await port.state()
        if state is None:  # pragma: no cover - connect() always ensures it
            raise NotFound("the mirror has no sync state")
        try:
            await self._pull_feeds(port, state, report)
        except InvalidCursor:
            # The server no longer knows our position (its database was replaced or
            # its secret rotated): start over, and reconcile ids at the end.
            log.warning("the remote refused the stored sync cursor; resyncing in full")
            report.warnings.append("the remote refused the stored cursor: full resync")
            await port.reset_cursors()
            state = await port.state()
            assert state is not None
            await self._pull_feeds(port, state, report)

    async def _pull_feeds(
        self, port: MirrorPort, state: SyncState, report: SyncReport
    ) -> None:
        full = state.threads_cursor is None or state.messages_cursor is None
        report.full = report.full or full
        seen_threads: set[str] | None = set() if full else None
        seen_messages: set[str] | None = set() if full else None
        threads_done = await self._pull_threads(
            port, state.threads_cursor, report, seen_threads
        )
        messages_done = await self._pull_messages(
            port, state.messages_cursor, report, seen_messages
        )
        if (
            full
            and threads_done
            and messages_done
            and seen_threads is not None
            and seen_messages is not None
        ):
            report.pruned = await port.prune(seen_threads, seen_messages)

    async def _pages(
        self, path: str, model: type[FeedT], cursor: str | None, report: SyncReport
    ) -> AsyncGenerator[tuple[FeedT, bool], None]:
        """The pages of a feed from `cursor`, with whether each one repeats a cursor.

        The next page is fetched while the caller applies this one (the server and
        the network overlap the local writes); a page whose `next_cursor` was already
        seen in this run is the last one (T62).
        """
        cursors: set[str | None] = {cursor}
        pending: asyncio.Future[FeedT] | None = asyncio.ensure_future(
            self._feed(path, model, cursor)
        )
        try:
            for _ in range(self._policy.max_pages):
                assert pending is not None
                page = await pending
                pending = None
                report.pages += 1
                repeated = page.next_cursor in cursors
                if page.has_more and not repeated:
                    cursors.add(page.next_cursor)
                    pending = asyncio.ensure_future(
                        self._feed(path, model, page.next_cursor)
                    )
                yield page, repeated
                if not page.has_more or repeated:
                    return
            report.warnings.append(f"GET {path}: page bound reached")
        finally:
            if pending is not None and not pending.done():
                pending.cancel()
                with contextlib.suppress(asyncio.CancelledError, TenexError):
                    await pending

    async def _pull_threads(
        self,
        port: MirrorPort,
        cursor: str | None,
        report: SyncReport,
        seen: set[str] | None,
    ) -> bool:
        complete = False
        pages = self._pages("/sync/threads", ThreadChanges, cursor, report)
        async with contextlib.aclosing(pages):
            async for page, repeated in pages:
                kept = [t for t in page.items if self._ours(t, report)]
                if seen is not None:
                    seen.update(t.id for t in kept)
                result = await port.apply_threads(
                    kept, page.deleted, None if repeated else page.next_cursor
                )
                report.threads += result.upserted
                report.threads_deleted += result.deleted
                if repeated and page.has_more:
                    return self._loop_detected("/sync/threads", report)
                complete = not page.has_more
        return complete

    def _loop_detected(self, path: str, report: SyncReport) -> bool:
        message = f"GET {path} repeated a cursor: pagination stopped"
        log.warning("%s", message)
        report.warnings.append(message)
        return False

    async def _pull_messages(
        self,
        port: MirrorPort,
        cursor: str | None,
        report: SyncReport,
        seen: set[str] | None,
    ) -> bool:
        complete = False
        pages = self._pages("/sync/messages", MessageChanges, cursor, report)
        async with contextlib.aclosing(pages):
            async for page, repeated in pages:
                upserted, deleted = await self._apply_messages(
                    port, page, None if repeated else page.next_cursor, report
                )
                if seen is not None:
                    seen.update(m.id for m in page.items)
                report.messages += upserted
                report.messages_deleted += deleted
                if repeated and page.has_more:
                    return self._loop_detected("/sync/messages", report)
                complete = not page.has_more
        return complete

    async def _apply_messages(
        self,
        port: MirrorPort,
        page: MessageChanges,
        cursor: str | None,
        report: SyncReport,
    ) -> tuple[int, int]:
        items = list(page.items)
        result = await port.apply_messages(items, page.deleted, cursor)
        if not result.missing_threads:
            return result.upserted, result.deleted
        # Threads created after the thread feed was read (or not ours): fetch each
        # one; a thread that is gone, or not ours, takes its messages with it.
        unknown: set[str] = set()
        for thread_id in result.missing_threads:
            try:
                thread = await self.remote.get_thread(thread_id)
            except NotFound:
                unknown.add(thread_id)
                continue
            if self._ours(thread, report):
                await port.apply_threads([thread], [], None)
            else:
                unknown.add(thread_id)
        if unknown:
            dropped = [m for m in items if m.thread_id in unknown]
            if dropped:
                log.info("sync skipped %d messages of unknown threads", len(dropped))
            items = [m for m in items if m.thread_id not in unknown]
        retry = await port.apply_messages(items, page.deleted, cursor)
        if retry.missing_threads:
            raise RemoteUnavailable(
                "The remote's message feed names threads it does not serve."
            )
        return retry.upserted, retry.deleted


async def run_periodically(
    service: SyncService,
    interval: float,
    *,
    stop: asyncio.Event,
    on_result: Callable[[SyncReport | TenexError], Awaitable[None]] | None = None,
    max_runs: int | None = None,
) -> None:
    """Sync every `interval` seconds until `stop` is set (the app's background sync).

    Failures are reported to `on_result` and never end the loop; the remote being
    offline is the normal case this exists for.
    """
    runs = 0
    while not stop.is_set() and (max_runs is None or runs < max_runs):
        runs += 1
        outcome: SyncReport | TenexError
        try:
            outcome = await service.sync()
        except TenexError as exc:
            outcome = exc
        if on_result is not None:
            await on_result(outcome)
        try:
            async with asyncio.timeout(interval):
                await stop.wait()
        except TimeoutError:
            pass


def describe(report: SyncReport) -> dict[str, Any]:
    """A JSON-ready summary of a report (`tenex-tui sync --json`)."""
    return {
        "threads": report.threads,
        "threads_deleted": report.threads_deleted,
        "messages": report.messages,
        "messages_deleted": report.messages_deleted,
        "dropped": report.dropped,
        "pruned": report.pruned,
        "full": report.full,
        "pages": report.pages,
        "pushed": report.push.done,
        "superseded": report.push.superseded,
        "refused": report.push.failed,
        "pending": report.pending,
        "failed": report.failed,
        "push_error": report.push.error,
        "warnings": list(report.warnings),
        "seconds": round(report.seconds, 3),
    }
