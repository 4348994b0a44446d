"""Replaying the offline outbox against the remote workspace, exactly once, in order.

What the user did offline on a remote workspace (create a thread, send a message,
rename / pin / archive, delete) was queued in the local store with an
`Idempotency-Key` (see `sync_port.MirrorPort`). `OutboxReplayer.replay()` sends the
pending actions one at a time, oldest first:

- **Exactly once.** Creates and sends are POSTs carrying the action's persisted key, so a
  retry after a lost answer, a 500 after the server committed, or a restart after a
  SIGKILL gets the first result back instead of a second thread or message (the server
  also dedupes a send by its `client_request_id`, which is the same key). Renames are
  PATCHes of absolute values and deletions treat `404` as done: both are safe to repeat.
  An action is marked done only after a 2xx, in the same local transaction that applies
  the server's answer to the mirror.
- **In order, no burst.** Actions are never sent in parallel; consecutive requests are
  spaced by `spacing` plus random jitter; a failed action waits an exponential backoff
  with full jitter (or the server's `Retry-After`), and later actions wait behind it, so
  a rename never overtakes the create it depends on.
- **Conflicts resolve predictably** (also in the README):
  - *rename / pin / archive*: a three-way merge per field. If the remote value still
    equals the value the user saw when they changed it, the change applies. If someone
    changed the same field remotely too, the later change wins: the remote's when the
    thread's `updated_at` is after the moment the user acted offline, else the user's
    (last writer wins). A field the remote already holds is not sent.
  - *a remote delete wins* over a pending rename, pin or archive (the action is marked
    `superseded`); a local delete of a thread already gone remotely is simply done.
  - *a message is never lost*: a send to a thread deleted remotely recreates the thread
    (same title, prompt and agent; its own idempotency key) and sends there; a send the
    remote refuses for good (`4xx`) stays in the thread with a visible "Not sent" error
    and its text, and the action is `failed`.
"""

from __future__ import annotations

import contextlib
import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from tenex_tui.core.errors import (
    Conflict,
    NotFound,
    RateLimited,
    RemoteUnavailable,
    TenexError,
    Unauthorized,
)
from tenex_tui.core.models import Message, Thread, ThreadContext, format_timestamp
from tenex_tui.core.payloads import AttachmentInput, CreateThreadBody
from tenex_tui.core.sync import OutboxEntry
from tenex_tui.remote.client import RemoteBackend
from tenex_tui.remote.sync_port import MirrorPort

log = logging.getLogger("tenex_tui.sync")

Sleep = Callable[[float], Awaitable[None]]
Now = Callable[[], datetime]


@dataclass(frozen=True)
class OutboxPolicy:
    """How patiently the outbox is replayed."""

    spacing: float = 0.05
    """Seconds between two consecutive requests (plus up to as much jitter)."""
    backoff_base: float = 1.0
    """The backoff ceiling after an action's first failed attempt; it doubles."""
    backoff_max: float = 300.0
    """No action waits longer than this between attempts."""
    max_actions: int = 10_000
    """Actions replayed in one run at most (a bound on the loop)."""

    def backoff(self, attempts: int, rng: random.Random) -> float:
        """Full jitter: uniform in `[0, min(max, base · 2^attempts)]`."""
        ceiling = min(self.backoff_max, self.backoff_base * (2.0 ** min(attempts, 30)))
        return rng.uniform(0.0, ceiling)


@dataclass
class ReplayReport:
    """What one replay run did."""

    done: int = 0
    superseded: int = 0
    failed: int = 0
    deferred: int = 0
    """Actions that failed for now and wait their backoff."""
    waiting: int = 0
    """Actions not tried because an earlier one is still waiting its backoff."""
    error: str | None = None
    """Why the run stopped early (the remote unreachable, the key refused)."""
    notes: list[str] = field(default_factory=list)


class Deferred(Exception):
    """The action failed for now; the run stops (later actions keep their order)."""


def merge_update(
    fields: dict[str, Any], base: dict[str, Any], remote: Thread, queued_at: datetime
) -> dict[str, Any]:
    """The fields of an offline edit that should still be sent (see the module doc).

    Args:
        fields: What the user set offline.
        base: The values the user saw before changing them.
        remote: The thread as the remote has it now.
        queued_at: When the user made the change.

    Returns:
        The fields to PATCH (empty when the remote already has them, or won).
    """
    send: dict[str, Any] = {}
    for name, mine in fields.items():
        theirs = getattr(remote, name)
        if theirs == mine:
            continue
        changed_remotely = name in base and theirs != base[name]
        if not changed_remotely or remote.updated_at <= queued_at:
            send[name] = mine
    return send


class OutboxReplayer:
    """Sends a mirror's pending offline actions to the remote workspace.

    Args:
        remote: The remote workspace.
        port: The mirror and its outbox.
        policy: Spacing and backoff.
        sleep: The wait between requests (a fake in tests).
        rng: The jitter source (seeded in tests).
        now: The clock that dates backoffs.
    """

    def __init__(
        self,
        remote: RemoteBackend,
        port: MirrorPort,
        *,
        policy: OutboxPolicy | None = None,
        sleep: Sleep,
        rng: random.Random,
        now: Now,
    ) -> None:
        self._remote = remote
        self._port = port
        self._policy = policy or OutboxPolicy()
        self._sleep = sleep
        self._rng = rng
        self._now = now

    async def replay(self) -> ReplayReport:
        """Replay pending actions in order until done, or until one must wait.

        Returns:
            What happened; `error` says why the run stopped early, if it did.

        Raises:
            Unauthorized: When the remote refuses the key (nothing is marked).
        """
        report = ReplayReport()
        sent_any = False
        for _ in range(self._policy.max_actions):
            # Re-read the head each time: settling one action can rewrite the later
            # ones (a thread created offline gets its remote id).
            head = await self._port.entries(("pending",), limit=1)
            if not head:
                break
            entry = head[0]
            if (
                entry.next_attempt_at is not None
                and entry.next_attempt_at > self._now()
            ):
                report.waiting = await self._pending()
                report.error = entry.last_error
                break
            if sent_any:
                spacing = self._policy.spacing
                await self._sleep(spacing + self._rng.uniform(0.0, spacing))
            sent_any = True
            try:
                await self._replay_one(entry, report)
            except Deferred as exc:
                report.deferred += 1
                report.waiting = await self._pending() - 1
                report.error = str(exc)
                break
        return report

    async def _pending(self) -> int:
        return (await self._port.counts()).get("pending", 0)

    async def _replay_one(self, entry: OutboxEntry, report: ReplayReport) -> None:
        try:
            if entry.kind == "update":
                await self._update(entry, report)
            elif entry.kind == "delete":
                await self._delete(entry)
                report.done += 1
            elif entry.kind == "create":
                await self._create(entry)
                report.done += 1
            else:
                await self._send(entry)
                report.done += 1
        except Unauthorized:
            raise
        except (RemoteUnavailable, RateLimited, Conflict) as exc:
            await self._defer(entry, exc)
        except TenexError as exc:
            if exc.status >= 500:
                await self._defer(entry, exc)
                return
            # Refused for good (invalid, too large, a reused key): keep it visible.
            log.warning("outbox action %s (%s) refused: %s", entry.id, entry.kind, exc)
            await self._port.fail(entry.id, exc.message)
            report.failed += 1

    async def _defer(self, entry: OutboxEntry, exc: TenexError) -> None:
        delay = self._policy.backoff(entry.attempts, self._rng)
        if isinstance(exc, RateLimited) and exc.retry_after is not None:
            delay = max(delay, exc.retry_after)
        when = self._now() + timedelta(seconds=delay)
        await self._port.defer(entry.id, exc.message, format_timestamp(when))
        raise Deferred(exc.message)

    # -- one action of each kind -----------------------------------------------------

    async def _update(self, entry: OutboxEntry, report: ReplayReport) -> None:
        fields = dict(entry.payload.get("fields") or {})
        base = dict(entry.payload.get("base") or {})
        try:
            current = await self._remote.get_thread(entry.thread_id)
        except NotFound:
            await self._port.complete(
                entry.id, status="superseded", note="the thread was deleted remotely"
            )
            report.superseded += 1
            return
        send = merge_update(fields, base, current, entry.created_at)
        if not send:
            superseded = any(getattr(current, k) != v for k, v in fields.items())
            await self._port.complete(
                entry.id,
                status="superseded" if superseded else "done",
                thread=current,
                note="a later remote change won" if superseded else None,
            )
            if superseded:
                report.superseded += 1
            else:
                report.done += 1
            return
        try:
            updated = await self._remote.update_thread(entry.thread_id, **send)
        except NotFound:
            await self._port.complete(
                entry.id, status="superseded", note="the thread was deleted remotely"
            )
            report.superseded += 1
            return
        await self._port.complete(entry.id, thread=updated)
        report.done += 1

    async def _delete(self, entry: OutboxEntry) -> None:
        # Already gone remotely (404): the deletion is done either way.
        with contextlib.suppress(NotFound):
            await self._remote.delete_thread(entry.thread_id)
        await self._port.complete(entry.id)

    async def _post_thread(self, fields: dict[str, Any], key: str) -> Thread:
        body = CreateThreadBody(
            title=fields.get("title") or None,
            system_prompt=fields.get("system_prompt"),
            agent=fields.get("agent"),
            context=ThreadContext.model_validate(fields.get("context") or {}),
            model=fields.get("model"),
        )
        answer = await self._remote.http.request(
            "POST",
            "/threads",
            json_body=body.model_dump(mode="json", exclude_none=True),
            idempotency_key=key,
        )
        return Thread.model_validate(answer.data)

    async def _create(self, entry: OutboxEntry) -> None:
        fields = dict(entry.payload.get("thread") or {})
        created = await self._post_thread(fields, entry.idempotency_key)
        await self._port.complete(
            entry.id, thread=created, remap=(entry.thread_id, created.id)
        )

    async def _send(self, entry: OutboxEntry) -> None:
        payload = entry.payload
        thread_id = entry.thread_id
        remap: tuple[str, str] | None = None
        recreated: Thread | None = None
        try:
            messages = await self._stream(thread_id, payload, entry.idempotency_key)
        except NotFound:
            # The thread was deleted remotely while this message waited: recreate it
            # (with its own key, so a crash here never makes two) and send there.
            fields: dict[str, Any] = {}
            with contextlib.suppress(NotFound):
                local = await self._port.get_thread(thread_id)
                fields = {
                    "title": local.title or None,
                    "system_prompt": local.system_prompt,
                    "agent": local.agent,
                    "context": local.context.model_dump(mode="json"),
                    "model": local.model,
                }
            recreated = await self._post_thread(
                fields, f"{entry.idempotency_key}.recreate"
            )
            log.info(
                "thread %s was deleted remotely; recreated as %s",
                thread_id,
                recreated.id,
            )
            remap = (thread_id, recreated.id)
            messages = await self._stream(recreated.id, payload, entry.idempotency_key)
        await self._port.complete(
            entry.id, thread=recreated, messages=messages, remap=remap
        )

    async def _stream(
        self, thread_id: str, payload: dict[str, Any], key: str
    ) -> list[Message]:
        attachments = [
            AttachmentInput.model_validate(a) for a in payload.get("attachments") or ()
        ]
        user: Message | None = None
        final: Message | None = None
        async for event in self._remote.send_message(
            thread_id,
            str(payload.get("content") or ""),
            attachments=attachments,
            knowledge=list(payload.get("knowledge") or ()),
            lead=payload.get("lead"),
            client_request_id=key,
        ):
            if event.user_message is not None:
                user = event.user_message
            if event.message is not None:
                final = event.message
            if event.terminal:
                break
        return [m for m in (user, final) if m is not None]


def utc_now() -> datetime:
    """The real clock (the default of the services here)."""
    return datetime.now(UTC)
