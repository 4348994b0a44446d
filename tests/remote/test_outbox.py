"""The offline outbox: T67 (idempotent POSTs), T69 (offline, then back), T70 (partial
batch failure), and the documented conflict rules.

The remote is the project's own server; `FaultTransport` cuts the network (`offline`)
or fails the n-th matching request before or after the server commits it.
"""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tenex_tui.core.models import Message
from tenex_tui.engine.clock import FixedClock
from tenex_tui.engine.engine import LocalEngine
from tenex_tui.remote.mirror import MirroredBackend
from tenex_tui.remote.sync import SyncService
from tests.remote.fault_transport import FaultTransport
from tests.remote.sync_helpers import (
    Clock,
    Waits,
    all_messages,
    all_threads,
    client_engine,
    remote_for,
    service_for,
)
from tests.support.server_fixture import Stack


@dataclass
class Offline:
    """A client machine with a mirror of user a1, and a switch for its network."""

    engine: LocalEngine
    transport: FaultTransport
    service: SyncService
    backend: MirroredBackend
    waits: Waits
    clock: Clock

    def cut(self) -> None:
        self.transport.offline = True

    def restore(self) -> None:
        self.transport.offline = False

    async def sync_after_backoff(self) -> None:
        self.clock.advance(3600)
        await self.service.sync()


@asynccontextmanager
async def machine(
    stack: Stack, tmp_path: Path, *, client_clock: FixedClock | None = None
) -> AsyncIterator[Offline]:
    async with client_engine(tmp_path / "client.db", client_clock) as engine:
        transport = FaultTransport()
        waits, clock = Waits(), Clock()
        service = service_for(
            remote_for(stack, transport=transport), engine, waits=waits, clock=clock
        )
        await service.sync()
        backend = await MirroredBackend.open(service, probe_interval=1e9)
        yield Offline(engine, transport, service, backend, waits, clock)


async def drain(backend: MirroredBackend, thread_id: str, text: str) -> list[str]:
    events = [e async for e in backend.send_message(thread_id, text)]
    return [e.type for e in events]


async def server_messages(stack: Stack, thread_id: str) -> list[Message]:
    return await all_messages(stack.scoped("a1"), thread_id)


async def test_a_day_offline_is_shown_at_once_and_replayed_in_order_exactly_once(
    stack: Stack, tmp_path: Path
) -> None:
    """T69."""
    a1 = stack.scoped("a1")
    keep = await a1.create_thread(title="keep")
    doomed = await a1.create_thread(title="doomed")
    async with machine(stack, tmp_path) as box:
        box.cut()
        backend = box.backend
        renamed = await backend.update_thread(keep.id, title="renamed offline")
        assert renamed.title == "renamed offline" and backend.offline
        await backend.update_thread(keep.id, pinned=True)
        await backend.delete_thread(doomed.id)
        created = await backend.create_thread(title="born offline", system_prompt="hi")
        assert created.id.startswith("thr_local")
        assert await drain(backend, keep.id, "first words") == [
            "message.started",
            "message.failed",
        ]
        await drain(backend, created.id, "hello new thread")
        await backend.update_thread(created.id, title="born offline, renamed")

        # Shown at once: titles, flags, the deletion, the placeholders; searchable.
        listed = {t.id: t for t in await all_threads(backend)}
        assert set(listed) == {keep.id, created.id}
        assert listed[keep.id].pinned and listed[keep.id].workspace_id == "ws_a"
        placeholder = (await all_messages(backend, keep.id))[-1]
        assert (placeholder.role, placeholder.content) == ("user", "first words")
        assert (await backend.search("hello new thread")).total == 1
        status = await box.service.status()
        assert (status.online, status.pending) == (False, 7)
        info = await backend.info()
        assert not info.online and "7 change(s) wait" in (info.model_problem or "")
        # The machine's own workspace works as ever.
        assert (
            await box.engine.create_thread(title="local")
        ).workspace_id == "ws_local"

        box.restore()
        calls_before = stack.llm.calls
        report = await box.service.sync()
        assert (report.push.done, report.pending, report.push.error) == (7, 0, None)
        assert stack.llm.calls == calls_before + 2  # one reply per send, no more

    server = {t.id: t for t in await all_threads(a1)}
    assert doomed.id not in server
    assert (server[keep.id].title, server[keep.id].pinned) == ("renamed offline", True)
    [born] = [t for t in server.values() if t.id not in {keep.id}]
    assert (born.title, born.system_prompt) == ("born offline, renamed", "hi")
    assert [m.content for m in await server_messages(stack, keep.id)] == [
        "first words",
        "w0 w1 w2 w3 w4 ",
    ]
    assert next(m.content for m in await server_messages(stack, born.id)) == (
        "hello new thread"
    )


async def test_the_replay_is_paced_and_the_mirror_ends_equal_to_the_server(
    stack: Stack, tmp_path: Path
) -> None:
    """T69: no burst — requests of a replay are spaced by the policy plus jitter."""
    thread = await stack.scoped("a1").create_thread(title="t")
    async with machine(stack, tmp_path) as box:
        box.cut()
        for index in range(5):
            await box.backend.update_thread(thread.id, title=f"title {index}")
        box.restore()
        box.waits.calls.clear()
        await box.service.sync()
        spacing = [w for w in box.waits.calls if w >= 0.05]
        assert len(spacing) == 4 and all(0.05 <= w <= 0.10 for w in spacing)
        assert len(set(spacing)) > 1  # jittered, not a fixed beat
        patches = [
            s for s in box.transport.requests("PATCH", "/threads/") if s.fault is None
        ]
        assert len(patches) == 5
        gaps = [b.at - a.at for a, b in itertools.pairwise(patches)]
        assert all(gap >= 0 for gap in gaps)
        port = box.service.port
        assert port is not None
        [mirrored] = await all_threads(port.backend)
        assert mirrored.title == "title 4"
    assert (await stack.scoped("a1").get_thread(thread.id)).title == "title 4"


@pytest.mark.parametrize("kind", ["before", "after_commit", "drop_after_commit"])
async def test_a_failure_at_57_of_100_resumes_at_57_with_the_same_keys(
    stack: Stack, tmp_path: Path, kind: str
) -> None:
    """T70 and T67: the 57th send fails (before the server commits, after it commits,
    or with the answer lost); the next sync resumes there; no duplicate anywhere."""
    thread = await stack.scoped("a1").create_thread(title="batch")
    async with machine(stack, tmp_path) as box:
        box.cut()
        for index in range(100):
            await drain(box.backend, thread.id, f"message {index:03d}")
        box.restore()
        # Every attempt at #57 in this run fails (the client's own retries included).
        box.transport.add("POST", r"/messages$", at=57, kind=kind, times=1000)  # type: ignore[arg-type]
        first = await box.service.sync()
        assert (first.push.done, first.push.deferred) == (56, 1)
        assert first.pending == 44 and first.push.error is not None
        entries = await box.service.port.entries()  # type: ignore[union-attr]
        assert entries[0].attempts == 1 and entries[0].next_attempt_at is not None
        on_server = [
            m for m in await server_messages(stack, thread.id) if m.role == "user"
        ]
        committed = 57 if kind != "before" else 56
        assert len(on_server) == committed

        box.transport.faults.clear()  # the server is healthy again
        await box.sync_after_backoff()
        status = await box.service.status()
        assert status.pending == 0

        attempts = box.transport.requests("POST", r"/messages$")
        keys_57 = {s.key for s in attempts if s.fault == kind}
        retried = [s for s in attempts if s.key in keys_57]
        assert len(keys_57) == 1 and len(retried) > 1  # same key on every attempt
        assert len({s.key for s in attempts}) == 100

    users = [m for m in await server_messages(stack, thread.id) if m.role == "user"]
    assert [m.content for m in users] == [f"message {i:03d}" for i in range(100)]


async def test_a_send_the_server_refuses_for_good_stays_visible_with_its_reason(
    stack: Stack, tmp_path: Path
) -> None:
    thread = await stack.scoped("a1").create_thread(title="t")
    async with machine(stack, tmp_path) as box:
        box.cut()
        await drain(box.backend, thread.id, "   ")  # the server wants some text
        await drain(box.backend, thread.id, "then this")
        box.restore()
        report = await box.service.sync()
        assert (report.push.failed, report.push.done, report.failed) == (1, 1, 1)
        port = box.service.port
        assert port is not None
        [failed] = await port.entries(("failed",))
        assert failed.kind == "send" and "text" in (failed.last_error or "")
        kept = [m for m in await all_messages(port.backend, thread.id) if m.error]
        assert [(m.content, m.error) for m in kept] == [
            ("   ", f"Not sent: {failed.last_error}")
        ]


async def test_a_retried_offline_send_is_queued_once(
    stack: Stack, tmp_path: Path
) -> None:
    thread = await stack.scoped("a1").create_thread(title="t")
    async with machine(stack, tmp_path) as box:
        box.cut()
        for _ in range(2):
            async for _event in box.backend.send_message(
                thread.id, "once", client_request_id="retried-key"
            ):
                pass
        status = await box.service.status()
        assert status.pending == 1
        box.restore()
        await box.service.sync()
    users = [
        m.content for m in await server_messages(stack, thread.id) if m.role == "user"
    ]
    assert users == ["once"]


async def test_an_idempotency_key_reused_for_another_message_is_reported(
    stack: Stack, tmp_path: Path
) -> None:
    """T67: the same key with a different request is a client bug (422), not a send."""
    a1 = stack.scoped("a1")
    first = await a1.create_thread(title="one")
    second = await a1.create_thread(title="two")
    async with machine(stack, tmp_path) as box:
        box.cut()
        for thread in (first, second):
            async for _ in box.backend.send_message(
                thread.id, "same words", client_request_id="fixed-key"
            ):
                pass
        box.restore()
        report = await box.service.sync()
        assert (report.push.done, report.push.failed) == (1, 1)
        port = box.service.port
        assert port is not None
        [failed] = await port.entries(("failed",))
        assert failed.thread_id == second.id
        assert "Idempotency-Key" in (failed.last_error or "")
    assert len(await server_messages(stack, first.id)) == 2
    assert await server_messages(stack, second.id) == []


async def test_a_remote_delete_wins_over_a_local_rename(
    stack: Stack, tmp_path: Path
) -> None:
    a1 = stack.scoped("a1")
    thread = await a1.create_thread(title="t")
    async with machine(stack, tmp_path) as box:
        box.cut()
        await box.backend.update_thread(thread.id, title="mine")
        await a1.delete_thread(thread.id)
        box.restore()
        report = await box.service.sync()
        assert (report.push.superseded, report.threads_deleted) == (1, 1)
        port = box.service.port
        assert port is not None
        assert await all_threads(port.backend) == []
        [entry] = await port.entries(("superseded",))
        assert entry.last_error == "the thread was deleted remotely"


async def test_a_later_remote_rename_wins_and_an_earlier_one_loses(
    stack: Stack, tmp_path: Path
) -> None:
    a1 = stack.scoped("a1")
    first = await a1.create_thread(title="one")
    second = await a1.create_thread(title="two")
    # The client's clock runs an hour behind the server's: its offline edit is older
    # than the remote rename of `first`.
    behind = FixedClock(start=datetime(2026, 1, 15, 8, 30, tzinfo=UTC))
    async with machine(stack, tmp_path, client_clock=behind) as box:
        box.cut()
        await box.backend.update_thread(first.id, title="mine, older", pinned=True)
        await a1.update_thread(first.id, title="theirs, newer")
        box.restore()
        report = await box.service.sync()
        assert report.push.done == 1  # pinned still applied: only the title conflicted
        port = box.service.port
        assert port is not None
        mirrored = await port.get_thread(first.id)
        assert (mirrored.title, mirrored.pinned) == ("theirs, newer", True)
    server = await a1.get_thread(first.id)
    assert (server.title, server.pinned) == ("theirs, newer", True)

    ahead = FixedClock(start=datetime(2026, 1, 15, 12, 0, tzinfo=UTC))
    async with machine(stack, tmp_path / "later", client_clock=ahead) as box:
        box.cut()
        await box.backend.update_thread(second.id, title="mine, newer")
        await a1.update_thread(second.id, title="theirs, older")
        box.restore()
        await box.service.sync()
    assert (await a1.get_thread(second.id)).title == "mine, newer"


async def test_a_message_to_a_thread_deleted_remotely_recreates_it(
    stack: Stack, tmp_path: Path
) -> None:
    a1 = stack.scoped("a1")
    thread = await a1.create_thread(title="gone soon", system_prompt="Be kind")
    async with machine(stack, tmp_path) as box:
        box.cut()
        await drain(box.backend, thread.id, "do not lose me")
        await a1.delete_thread(thread.id)
        box.restore()
        report = await box.service.sync()
        assert report.push.done == 1
        port = box.service.port
        assert port is not None
        [mirrored] = await all_threads(port.backend)
        assert mirrored.id != thread.id and mirrored.title == "gone soon"
        contents = [m.content for m in await all_messages(port.backend, mirrored.id)]
        assert contents == ["do not lose me", "w0 w1 w2 w3 w4 "]
    [recreated] = await all_threads(a1)
    assert recreated.id == mirrored.id and recreated.system_prompt == "Be kind"


async def test_deleting_a_thread_offline_drops_its_unsent_messages(
    stack: Stack, tmp_path: Path
) -> None:
    thread = await stack.scoped("a1").create_thread(title="t")
    async with machine(stack, tmp_path) as box:
        box.cut()
        await drain(box.backend, thread.id, "never mind")
        await box.backend.delete_thread(thread.id)
        box.restore()
        report = await box.service.sync()
        assert report.push.done == 1
        port = box.service.port
        assert port is not None
        [dropped] = await port.entries(("superseded",))
        assert dropped.kind == "send"
    assert await all_threads(stack.scoped("a1")) == []
    assert stack.llm.calls == 0


async def test_a_thread_created_and_deleted_offline_never_reaches_the_remote(
    stack: Stack, tmp_path: Path
) -> None:
    async with machine(stack, tmp_path) as box:
        box.cut()
        created = await box.backend.create_thread(title="draft idea")
        await drain(box.backend, created.id, "scratch")
        await box.backend.delete_thread(created.id)
        status = await box.service.status()
        assert status.pending == 0
        box.restore()
        await box.service.sync()
        sent = box.transport.requests("POST", r"/threads$")
        assert [s for s in sent if s.fault is None] == []  # only the offline try
    assert await all_threads(stack.scoped("a1")) == []


async def test_a_pull_keeps_pending_offline_edits_visible(
    stack: Stack, tmp_path: Path
) -> None:
    a1 = stack.scoped("a1")
    thread = await a1.create_thread(title="base")
    other = await a1.create_thread(title="other")
    async with machine(stack, tmp_path) as box:
        box.cut()
        await box.backend.update_thread(thread.id, title="pending title")
        await box.backend.delete_thread(other.id)
        await drain(box.backend, thread.id, "pending words")
        await a1.update_thread(thread.id, pinned=True)
        await a1.update_thread(other.id, title="other, renamed remotely")
        port = box.service.port
        assert port is not None
        # A pull alone (the push waits behind a deferred action): pending edits stay.
        box.restore()
        box.transport.add("PATCH", "/threads/", at=1, kind="refuse", times=10)
        report = await box.service.sync()
        assert report.push.deferred == 1 and report.pending == 3
        mirrored = {t.id: t for t in await all_threads(port.backend)}
        assert set(mirrored) == {thread.id}
        assert (mirrored[thread.id].title, mirrored[thread.id].pinned) == (
            "pending title",
            True,
        )
        contents = [m.content for m in await all_messages(port.backend, thread.id)]
        assert contents == ["pending words"]


async def test_backoff_waits_grow_with_attempts_and_honour_the_deadline(
    stack: Stack, tmp_path: Path
) -> None:
    thread = await stack.scoped("a1").create_thread(title="t")
    async with machine(stack, tmp_path) as box:
        box.cut()
        await box.backend.update_thread(thread.id, title="x")
        box.restore()
        box.transport.add("GET", "/threads/thr_", at=1, kind="refuse", times=100)
        port = box.service.port
        assert port is not None
        deadlines = []
        for _ in range(4):
            await box.service.sync()
            [entry] = await port.entries()
            assert entry.next_attempt_at is not None
            deadlines.append(entry.next_attempt_at - box.clock.now)
            # Not yet due: the next sync does not try it (no request, no attempt).
            before = len(box.transport.seen)
            await box.service.sync()
            assert entry.attempts == (await port.entries())[0].attempts
            assert not [s for s in box.transport.seen[before:] if "thr_" in s.path]
            box.clock.advance(deadlines[-1].total_seconds() + 1)
        ceilings = [timedelta(seconds=2**n) for n in range(4)]
        assert all(d <= c for d, c in zip(deadlines, ceilings, strict=False))
