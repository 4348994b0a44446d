"""`MirroredBackend`: a remote workspace that keeps working offline, on its local mirror.

The `ChatBackend` the app uses for `tenex-tui --remote` when a local store is available.
While the remote answers, every call goes to it (and what it answers to a write is
written through to the mirror). When it does not (`RemoteUnavailable`: refused, timed
out, 5xx), the backend switches to the mirror that `SyncService` keeps:

- reading, listing and searching serve the mirror (remote threads stay readable and
  searchable offline);
- creating a thread, sending a message, renaming, pinning, archiving and deleting are
  queued in the outbox with an `Idempotency-Key` and shown at once (a sent message
  appears as a placeholder; the stream answers `message.started` then a
  `message.failed` whose `status` is `queued` and whose `extra` says `queued: True`);
- what needs the remote's model or live streams (regenerate, edit, cancel, resume,
  models, knowledge, leads) raises `RemoteUnavailable` with a sentence that says so.

It goes back to the remote as soon as a request succeeds again, which the app's
background sync (`SyncService.sync()`, on the same `RemoteBackend`) finds out; that
sync also replays the outbox. A write that failed with `RemoteUnavailable` is queued
with the key it was tried with, so if the remote had in fact committed it, the replay
gets the same result back instead of doing it twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from datetime import datetime
from typing import Any, Literal, TypeVar

from tenex_tui.core.backend import ChatBackend
from tenex_tui.core.errors import RemoteUnavailable, TenexError
from tenex_tui.core.events import StreamEvent
from tenex_tui.core.models import (
    Agent,
    Attachment,
    BackendInfo,
    Message,
    Page,
    SearchHit,
    Thread,
    ThreadContext,
)
from tenex_tui.core.payloads import AttachmentInput, CreateThreadBody
from tenex_tui.core.sync import SyncStatus
from tenex_tui.remote.http import new_idempotency_key
from tenex_tui.remote.mirror_online import RemoteOnlyOperations
from tenex_tui.remote.sync import SyncService
from tenex_tui.remote.sync_port import MirrorPort

log = logging.getLogger("tenex_tui.sync")

T = TypeVar("T")

PROBE_INTERVAL = 15.0
"""While offline, seconds between two background syncs started by calls."""
LOCAL_THREAD_PREFIX = "thr_local"
"""Threads created offline have local ids until their creation is replayed."""
QUEUED = (
    "Offline: the message is saved and will be sent when the remote workspace is back."
)
NEVER_SYNCED = (
    "The remote workspace cannot be reached, and it was never synced to this machine "
    "(run `tenex-tui sync` once while online)."
)


class MirroredBackend(RemoteOnlyOperations):
    """A remote workspace as a `ChatBackend`, falling back to its local mirror.

    Build it with `await MirroredBackend.open(service)`.

    Args:
        service: The sync service of the remote workspace (its `remote` is used for
            every online call, its mirror for offline ones).
        new_key: How idempotency keys are made (tests pin them).
    """

    def __init__(
        self,
        service: SyncService,
        *,
        new_key: Callable[[], str] = new_idempotency_key,
        on_close: Callable[[], Awaitable[None]] | None = None,
        probe_interval: float = PROBE_INTERVAL,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.service = service
        self._remote = service.remote
        self._new_key = new_key
        self._on_close = on_close
        self._probe_interval = probe_interval
        self._monotonic = monotonic
        self._last_probe = monotonic()
        self._probe: asyncio.Task[None] | None = None

    @classmethod
    async def open(
        cls,
        service: SyncService,
        *,
        on_close: Callable[[], Awaitable[None]] | None = None,
        probe_interval: float = PROBE_INTERVAL,
    ) -> MirroredBackend:
        """Find the mirror (asking the remote who the key is, else the last one used).

        Never raises for an unreachable remote: the backend starts offline.

        Args:
            service: The sync service of the remote workspace.
            on_close: Awaited by `aclose` after the remote client is closed (the
                wiring closes the local engine there).
            probe_interval: While offline, how often a call may start a background
                sync to find out whether the remote is back.
        """
        backend = cls(service, on_close=on_close, probe_interval=probe_interval)
        try:
            await service.connect()
        except RemoteUnavailable:
            await service.open_offline()
        return backend

    def _maybe_probe(self) -> None:
        # Offline, nothing else may ever ask the remote again: now and then a call
        # starts one background sync, which finds the remote back (and replays the
        # outbox and refreshes the mirror when it is).
        if self._probe is not None and not self._probe.done():
            return
        now = self._monotonic()
        if now - self._last_probe < self._probe_interval:
            return
        self._last_probe = now
        self._probe = asyncio.get_running_loop().create_task(self._run_probe())

    async def _run_probe(self) -> None:
        try:
            await self.service.sync()
        except TenexError as exc:
            log.info("background sync failed: %s", exc.message)
        except Exception:
            log.exception("background sync failed")

    def __repr__(self) -> str:
        return f"MirroredBackend({self._remote!r})"

    @property
    def offline(self) -> bool:
        """True when the last request to the remote failed: calls use the mirror."""
        if self._remote.online is False:
            self._maybe_probe()
            return True
        return False

    async def _port(self) -> MirrorPort:
        port = self.service.port or await self.service.open_offline()
        if port is None:
            raise RemoteUnavailable(NEVER_SYNCED)
        return port

    def _remote_ws(self) -> str | None:
        ids = self.service.port
        if ids is None:
            return None
        workspace, _, _ = ids.workspace_id.rpartition("@")
        return workspace or None

    def _as_remote(self, thread: Thread) -> Thread:
        # Mirrored rows live in `<ws>@<host>`; show them under the remote's id, so a
        # thread looks the same online and offline.
        workspace = self._remote_ws()
        if workspace is None or thread.workspace_id == workspace:
            return thread
        return thread.model_copy(update={"workspace_id": workspace})

    async def _read(
        self,
        online: Callable[[], Awaitable[T]],
        offline: Callable[[ChatBackend], Awaitable[T]],
    ) -> T:
        if not self.offline:
            try:
                return await online()
            except RemoteUnavailable as exc:
                log.info("remote unreachable, reading the mirror: %s", exc.message)
        return await offline((await self._port()).backend)

    async def _write_through(
        self, threads: Sequence[Thread] = (), deleted: Sequence[str] = ()
    ) -> None:
        port = self.service.port
        if port is None:
            return
        ours = [t for t in threads if t.user_id == port.user_id]
        await port.apply_threads(ours, deleted, None)

    # -- info ------------------------------------------------------------------------

    async def info(self) -> BackendInfo:
        """The remote's info when it answers; else the mirror's, marked offline."""
        if not self.offline:
            info = await self._remote.info()
            if info.online:
                return info
        port = self.service.port or await self.service.open_offline()
        if port is None:
            return BackendInfo(
                kind="remote",
                workspace=self._remote.http.host,
                online=False,
                model_problem=NEVER_SYNCED,
            )
        local = await port.backend.info()
        status = await self.service.status()
        when = (
            status.last_sync_at.astimezone().strftime("%Y-%m-%d %H:%M")
            if isinstance(status.last_sync_at, datetime)
            else "never"
        )
        waiting = (
            f"; {status.pending} change(s) wait to be sent" if status.pending else ""
        )
        return BackendInfo(
            kind="remote",
            workspace=local.workspace,
            online=False,
            model=None,
            model_problem=(
                f"Offline: showing this workspace as last synced ({when}){waiting}."
            ),
        )

    # -- threads ---------------------------------------------------------------------

    async def create_thread(
        self,
        *,
        title: str | None = None,
        system_prompt: str | None = None,
        agent: str | None = None,
        context: ThreadContext | None = None,
        model: str | None = None,
    ) -> Thread:
        """Create the thread remotely; offline, queue it (shown under a local id)."""
        body = CreateThreadBody(
            title=title,
            system_prompt=system_prompt,
            agent=agent,
            context=context,
            model=model,
        )
        fields = body.model_dump(mode="json", exclude_none=True)
        key = self._new_key()
        if not self.offline:
            try:
                answer = await self._remote.http.request(
                    "POST", "/threads", json_body=fields, idempotency_key=key
                )
                thread = Thread.model_validate(answer.data)
                await self._write_through([thread])
                return thread
            except RemoteUnavailable:
                pass
        port = await self._port()
        _entry, thread = await port.enqueue_create(fields, key)
        return self._as_remote(thread)

    async def list_threads(
        self,
        *,
        limit: int | None = None,
        cursor: str | None = None,
        archived: bool | None = False,
        pinned: bool | None = None,
        agent: str | None = None,
        q: str | None = None,
    ) -> Page[Thread]:
        """List threads (remote, else the mirror; cursors belong to one or the other)."""

        async def offline(backend: ChatBackend) -> Page[Thread]:
            page = await backend.list_threads(
                limit=limit,
                cursor=cursor,
                archived=archived,
                pinned=pinned,
                agent=agent,
                q=q,
            )
            return page.model_copy(
                update={"items": [self._as_remote(t) for t in page.items]}
            )

        return await self._read(
            lambda: self._remote.list_threads(
                limit=limit,
                cursor=cursor,
                archived=archived,
                pinned=pinned,
                agent=agent,
                q=q,
            ),
            offline,
        )

    async def get_thread(self, thread_id: str) -> Thread:
        """One thread (remote, else the mirror)."""
        if thread_id.startswith(LOCAL_THREAD_PREFIX):
            return self._as_remote(
                await (await self._port()).backend.get_thread(thread_id)
            )

        async def offline(backend: ChatBackend) -> Thread:
            return self._as_remote(await backend.get_thread(thread_id))

        return await self._read(lambda: self._remote.get_thread(thread_id), offline)

    async def update_thread(
        self,
        thread_id: str,
        *,
        title: str | None = None,
        pinned: bool | None = None,
        archived: bool | None = None,
        draft: str | None = None,
    ) -> Thread:
        """Rename, pin, archive (queued offline); a draft stays in the mirror offline."""
        fields = {"title": title, "pinned": pinned, "archived": archived}
        fields = {k: v for k, v in fields.items() if v is not None}
        local = thread_id.startswith(LOCAL_THREAD_PREFIX)
        if not self.offline and not local:
            try:
                thread = await self._remote.update_thread(
                    thread_id,
                    title=title,
                    pinned=pinned,
                    archived=archived,
                    draft=draft,
                )
                await self._write_through([thread])
                return thread
            except RemoteUnavailable:
                pass
        port = await self._port()
        thread = await port.get_thread(thread_id)
        if fields:
            _entry, thread = await port.enqueue_update(
                thread_id, fields, self._new_key()
            )
        if draft is not None:
            thread = await port.backend.update_thread(thread_id, draft=draft)
        return self._as_remote(thread)

    async def mark_read(self, thread_id: str) -> Thread:
        """Mark read (remote, else only in the mirror)."""

        async def offline(backend: ChatBackend) -> Thread:
            return self._as_remote(await backend.mark_read(thread_id))

        if thread_id.startswith(LOCAL_THREAD_PREFIX):
            return await offline((await self._port()).backend)
        return await self._read(lambda: self._remote.mark_read(thread_id), offline)

    async def delete_thread(self, thread_id: str) -> None:
        """Delete remotely; offline, remove it from the mirror and queue the deletion."""
        if not self.offline and not thread_id.startswith(LOCAL_THREAD_PREFIX):
            try:
                await self._remote.delete_thread(thread_id)
                await self._write_through(deleted=[thread_id])
                return
            except RemoteUnavailable:
                pass
        port = await self._port()
        await port.enqueue_delete(thread_id, self._new_key())

    # -- messages --------------------------------------------------------------------

    async def list_messages(
        self,
        thread_id: str,
        *,
        limit: int | None = None,
        cursor: str | None = None,
        order: Literal["asc", "desc"] = "asc",
    ) -> Page[Message]:
        """A thread's history (remote, else the mirror with its pending messages)."""

        async def offline(backend: ChatBackend) -> Page[Message]:
            return await backend.list_messages(
                thread_id, limit=limit, cursor=cursor, order=order
            )

        if thread_id.startswith(LOCAL_THREAD_PREFIX):
            return await offline((await self._port()).backend)
        return await self._read(
            lambda: self._remote.list_messages(
                thread_id, limit=limit, cursor=cursor, order=order
            ),
            offline,
        )

    async def get_message(self, thread_id: str, message_id: str) -> Message:
        """One message (remote, else the mirror)."""

        async def offline(backend: ChatBackend) -> Message:
            return await backend.get_message(thread_id, message_id)

        return await self._read(
            lambda: self._remote.get_message(thread_id, message_id), offline
        )

    def send_message(
        self,
        thread_id: str,
        content: str,
        *,
        attachments: Sequence[AttachmentInput] = (),
        knowledge: Sequence[str] = (),
        lead: str | None = None,
        client_request_id: str | None = None,
    ) -> AsyncIterator[StreamEvent]:
        """Send and stream the reply; offline (or before the remote took it), queue it.

        The queued case yields `message.started` (the placeholder as `user_message`)
        and a terminal `message.failed` with `status="queued"`.
        """
        return self._send(
            thread_id,
            content,
            attachments=attachments,
            knowledge=knowledge,
            lead=lead,
            key=client_request_id or self._new_key(),
        )

    async def _send(
        self,
        thread_id: str,
        content: str,
        *,
        attachments: Sequence[AttachmentInput],
        knowledge: Sequence[str],
        lead: str | None,
        key: str,
    ) -> AsyncIterator[StreamEvent]:
        if not self.offline and not thread_id.startswith(LOCAL_THREAD_PREFIX):
            started = False
            try:
                async for event in self._remote.send_message(
                    thread_id,
                    content,
                    attachments=attachments,
                    knowledge=knowledge,
                    lead=lead,
                    client_request_id=key,
                ):
                    started = True
                    yield event
                return
            except RemoteUnavailable:
                if started:
                    raise
        async for event in self._queue_send(
            thread_id, content, attachments, knowledge, lead, key
        ):
            yield event

    async def _queue_send(
        self,
        thread_id: str,
        content: str,
        attachments: Sequence[AttachmentInput],
        knowledge: Sequence[str],
        lead: str | None,
        key: str,
    ) -> AsyncIterator[StreamEvent]:
        port = await self._port()
        payload: dict[str, Any] = {
            "content": content,
            "attachments": [a.model_dump(mode="json") for a in attachments],
            "knowledge": list(knowledge),
            "lead": lead,
        }
        shown = [
            Attachment(
                id=f"att_local_{index}",
                kind=a.kind,
                name=a.name,
                media_type=a.media_type,
                size=a.size,
                sha256=a.sha256,
                truncated=a.truncated,
            )
            for index, a in enumerate(attachments)
        ]
        entry, placeholder = await port.enqueue_send(thread_id, payload, shown, key)
        pending = Message(
            id=f"{placeholder.id}.reply",
            thread_id=thread_id,
            role="assistant",
            status="error",
            error=QUEUED,
            created_at=placeholder.created_at,
        )
        yield StreamEvent(
            id=f"{pending.id}.1",
            type="message.started",
            message_id=pending.id,
            thread_id=thread_id,
            message=pending.model_copy(update={"status": "streaming", "error": None}),
            user_message=placeholder,
            extra={"queued": True, "outbox_id": entry.id},
        )
        yield StreamEvent(
            id=f"{pending.id}.2",
            type="message.failed",
            message_id=pending.id,
            thread_id=thread_id,
            error=QUEUED,
            status="queued",
            message=pending,
            extra={"queued": True, "outbox_id": entry.id},
        )

    async def search(
        self, q: str, *, limit: int | None = None, cursor: str | None = None
    ) -> Page[SearchHit]:
        """Full-text search (remote, else the mirror's index)."""

        async def offline(backend: ChatBackend) -> Page[SearchHit]:
            return await backend.search(q, limit=limit, cursor=cursor)

        return await self._read(
            lambda: self._remote.search(q, limit=limit, cursor=cursor), offline
        )

    async def list_agents(self) -> list[Agent]:
        """The remote's agents, else the built-in ones."""

        async def offline(backend: ChatBackend) -> list[Agent]:
            return await backend.list_agents()

        return await self._read(self._remote.list_agents, offline)

    # -- sync (core.sync.Syncable) ---------------------------------------------------

    async def sync_status(self) -> SyncStatus:
        """Online or offline, pending actions, the last sync (no network request)."""
        return await self.service.status()

    async def sync_now(self) -> SyncStatus:
        """Push the outbox and pull the feeds once; failures end up in the status."""
        try:
            await self.service.sync()
        except TenexError as exc:
            log.info("sync failed: %s", exc.message)
        return await self.service.status()

    async def aclose(self) -> None:
        """Stop a background sync, close the remote's connections, then `on_close`."""
        probe = self._probe
        if probe is not None and not probe.done():
            probe.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await probe
        await self._remote.aclose()
        if self._on_close is not None:
            await self._on_close()
