"""`SyncService` against the project's own server: mirroring, incremental and resumable
pulls, deletions, full reconciliation, scope isolation, and the status the app shows."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from tenex_tui.core.errors import RemoteUnavailable
from tenex_tui.remote.sync import mirror_workspace_id
from tests.remote.fault_transport import FaultTransport
from tests.remote.sync_helpers import (
    all_messages,
    all_threads,
    client_engine,
    comparable,
    message_key,
    remote_for,
    service_for,
)
from tests.support.server_fixture import Stack


async def send(stack: Stack, thread_id: str, text: str, name: str = "a1") -> None:
    async for _ in stack.scoped(name).send_message(thread_id, text):
        pass


async def seed(stack: Stack, threads: int = 3, sends: int = 2) -> list[str]:
    a1 = stack.scoped("a1")
    ids = []
    for index in range(threads):
        thread = await a1.create_thread(title=f"Plan {index}", system_prompt="Be brief")
        for turn in range(sends):
            await send(stack, thread.id, f"question {index}.{turn} about zebras")
        ids.append(thread.id)
    await a1.update_thread(ids[0], pinned=True)
    await a1.update_thread(ids[-1], archived=True)
    return ids


async def assert_mirrors(stack: Stack, mirror: object) -> None:
    server = stack.scoped("a1")
    remote_threads = await all_threads(server)
    local_threads = await all_threads(mirror)
    assert sorted(map(comparable, local_threads)) == sorted(
        map(comparable, remote_threads)
    )
    for thread in remote_threads:
        expected = [message_key(m) for m in await all_messages(server, thread.id)]
        assert [message_key(m) for m in await all_messages(mirror, thread.id)] == (
            expected
        )


async def test_a_first_sync_mirrors_threads_and_messages_under_the_remote_workspace(
    stack: Stack, tmp_path: Path
) -> None:
    await seed(stack)
    async with client_engine(tmp_path / "client.db") as engine:
        remote = remote_for(stack)
        service = service_for(remote, engine)
        report = await service.sync()
        assert (report.threads, report.messages, report.full) == (3, 12, True)
        port = service.port
        assert port is not None
        assert port.workspace_id == mirror_workspace_id(remote, "ws_a")
        assert port.workspace_id == f"ws_a@127.0.0.1:{stack.server.port}"
        await assert_mirrors(stack, port.backend)
        # Readable and searchable from the local store alone.
        hits = await port.backend.search("zebras")
        assert hits.total == 6
        info = await port.backend.info()
        assert info.workspace == "Acme"


async def test_an_incremental_sync_moves_only_what_changed(
    stack: Stack, tmp_path: Path
) -> None:
    ids = await seed(stack)
    async with client_engine(tmp_path / "client.db") as engine:
        transport = FaultTransport()
        remote = remote_for(stack, transport=transport)
        service = service_for(remote, engine)
        await service.sync()
        nothing = await service.sync()
        assert (nothing.threads, nothing.messages, nothing.full) == (0, 0, False)
        assert nothing.pages == 2  # one empty page per feed

        a1 = stack.scoped("a1")
        await a1.update_thread(ids[1], title="Plan one, renamed")
        await send(stack, ids[2], "one more")
        changed = await service.sync()
        # The renamed thread, the thread with the new reply; its two new messages.
        assert (changed.threads, changed.messages) == (2, 2)
        port = service.port
        assert port is not None
        await assert_mirrors(stack, port.backend)


async def test_deletions_reach_the_mirror(stack: Stack, tmp_path: Path) -> None:
    ids = await seed(stack)
    a1 = stack.scoped("a1")
    async with client_engine(tmp_path / "client.db") as engine:
        service = service_for(remote_for(stack), engine)
        await service.sync()
        await a1.delete_thread(ids[0])
        history = await all_messages(a1, ids[1])
        await a1.edit_message(ids[1], history[2].id, "rewritten question")
        report = await service.sync()
        assert (report.threads_deleted, report.messages_deleted) == (1, 1)
        port = service.port
        assert port is not None
        await assert_mirrors(stack, port.backend)
        assert (await port.backend.search("rewritten")).total == 1


async def test_a_pull_cut_mid_way_resumes_from_the_last_committed_page(
    stack: Stack, tmp_path: Path
) -> None:
    await seed(stack, threads=6, sends=2)
    async with client_engine(tmp_path / "client.db") as engine:
        transport = FaultTransport()
        # The third page of messages fails (twice, so the client's retry fails too).
        transport.add("GET", "/sync/messages$", at=3, kind="refuse", times=2)
        remote = remote_for(stack, transport=transport)
        service = service_for(remote, engine, page_limit=5)
        with pytest.raises(RemoteUnavailable):
            await service.sync()
        port = service.port
        assert port is not None
        state = await port.state()
        assert state is not None and state.messages_cursor is not None
        assert state.last_error is not None
        stored = [
            m
            for t in await all_threads(port.backend)
            for m in await all_messages(port.backend, t.id)
        ]
        assert len(stored) == 10  # two pages of five were committed

        before = len(transport.requests("GET", "/sync/messages$"))
        report = await service.sync()
        after = transport.requests("GET", "/sync/messages$")[before:]
        assert report.messages == 14 and not report.full
        assert len(after) == 3  # pages three, four and five: nothing read twice
        await assert_mirrors(stack, port.backend)
        state = await port.state()
        assert state is not None and state.last_error is None


async def test_a_refused_cursor_means_a_full_resync_that_reconciles_ids(
    stack: Stack, tmp_path: Path
) -> None:
    ids = await seed(stack)
    async with client_engine(tmp_path / "client.db") as engine:
        service = service_for(remote_for(stack), engine)
        await service.sync()
        port = service.port
        assert port is not None
        # The server forgets our position (its database was replaced, its cursor
        # secret changed), and the mirror holds a thread whose deletion no tombstone
        # will ever announce.
        await stack.scoped("a1").delete_thread(ids[1])
        conn = sqlite3.connect(tmp_path / "client.db")
        with conn:
            conn.execute(
                "INSERT INTO threads (workspace_id, id, user_id, title, created_at, "
                "updated_at, sort_at) VALUES (?, 'thr_stale', 'usr_a1', 'stale', "
                "'2026-01-01T00:00:00.000000Z', '2026-01-01T00:00:00.000000Z', "
                "'2026-01-01T00:00:00.000000Z')",
                (port.workspace_id,),
            )
            conn.execute(
                "UPDATE sync_state SET threads_cursor = 'forged.cursor', "
                "messages_cursor = 'forged.cursor'"
            )
        conn.close()
        report = await service.sync()
        assert report.full and report.pruned == 1
        assert report.threads_deleted == 1  # the real deletion, by its tombstone
        assert any("full resync" in w for w in report.warnings)
        await assert_mirrors(stack, port.backend)


async def test_the_mirror_never_touches_this_machines_own_threads(
    stack: Stack, tmp_path: Path
) -> None:
    await seed(stack)
    async with client_engine(tmp_path / "client.db") as engine:
        # The client's own threads get the same FixedClock ids as the server's.
        own = [await engine.create_thread(title=f"local {i}") for i in range(3)]
        before = await engine.list_threads(archived=None)
        service = service_for(remote_for(stack), engine)
        await service.sync()
        after = await engine.list_threads(archived=None)
        assert after == before
        port = service.port
        assert port is not None
        mirrored = await all_threads(port.backend)
        assert {t.id for t in own} & {t.id for t in mirrored}  # same ids, two rows
        assert all(t.workspace_id == port.workspace_id for t in mirrored)


async def test_each_user_gets_their_own_mirror(stack: Stack, tmp_path: Path) -> None:
    await seed(stack)
    b1 = stack.scoped("b1")
    theirs = await b1.create_thread(title="Beta only")
    async with client_engine(tmp_path / "client.db") as engine:
        mine = service_for(remote_for(stack, "a1"), engine)
        other = service_for(remote_for(stack, "b1"), engine)
        await mine.sync()
        await other.sync()
        assert mine.port is not None and other.port is not None
        assert mine.port.workspace_id != other.port.workspace_id
        assert [t.id for t in await all_threads(other.port.backend)] == [theirs.id]
        assert theirs.id not in {t.id for t in await all_threads(mine.port.backend)}


async def test_a_streaming_reply_is_mirrored_as_unfinished_then_completed(
    stack: Stack, tmp_path: Path
) -> None:
    a1 = stack.scoped("a1")
    thread = await a1.create_thread(title="live")
    reply = stack.llm.enqueue(["part ", "rest"], hold_at=1)
    events = a1.send_message(thread.id, "go")
    await anext(events)
    await reply.reached.wait()
    async with client_engine(tmp_path / "client.db") as engine:
        service = service_for(remote_for(stack), engine)
        await service.sync()
        port = service.port
        assert port is not None
        partial = (await all_messages(port.backend, thread.id))[-1]
        assert partial.status == "interrupted"
        assert partial.error is not None and "still being written" in partial.error
        reply.release.set()
        async for _ in events:
            pass
        await service.sync()
        done = (await all_messages(port.backend, thread.id))[-1]
        assert (done.status, done.content, done.error) == (
            "complete",
            "part rest",
            None,
        )


async def test_status_reports_offline_pending_and_the_last_sync(
    stack: Stack, tmp_path: Path
) -> None:
    await seed(stack, threads=1, sends=1)
    async with client_engine(tmp_path / "client.db") as engine:
        transport = FaultTransport()
        service = service_for(remote_for(stack, transport=transport), engine)
        before = await service.status()
        assert (before.online, before.pending, before.last_sync_at) == (None, 0, None)
        await service.sync()
        synced = await service.status()
        assert synced.online is True and synced.last_sync_at is not None
        assert synced.last_error is None and not synced.syncing
        transport.offline = True
        with pytest.raises(RemoteUnavailable):
            await service.sync()
        offline = await service.status()
        assert offline.online is False
        assert offline.last_sync_at == synced.last_sync_at
        assert offline.last_error is not None and "reach" in offline.last_error


async def test_a_machine_that_never_synced_cannot_open_the_mirror_offline(
    stack: Stack, tmp_path: Path
) -> None:
    async with client_engine(tmp_path / "client.db") as engine:
        transport = FaultTransport(offline=True)
        service = service_for(remote_for(stack, transport=transport), engine)
        assert await service.open_offline() is None
        with pytest.raises(RemoteUnavailable):
            await service.sync()
        status = await service.status()
        assert (status.online, status.workspace_id) == (False, None)
