"""`MirroredBackend`: the remote while it answers (writes go through to the mirror),
the mirror when it does not, and back to the remote once a request succeeds again."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from tenex_tui.core.backend import ChatBackend
from tenex_tui.core.errors import NotFound, RemoteUnavailable
from tenex_tui.remote.mirror import MirroredBackend
from tests.remote.fault_transport import FaultTransport
from tests.remote.sync_helpers import (
    all_messages,
    all_threads,
    client_engine,
    remote_for,
    service_for,
)
from tests.support.server_fixture import Stack


def test_it_is_a_chat_backend() -> None:
    assert issubclass(MirroredBackend, ChatBackend)


async def test_online_calls_reach_the_remote_and_writes_go_through_to_the_mirror(
    stack: Stack, tmp_path: Path
) -> None:
    async with client_engine(tmp_path / "client.db") as engine:
        service = service_for(remote_for(stack), engine)
        backend = await MirroredBackend.open(service)
        port = service.port
        assert port is not None and not backend.offline
        thread = await backend.create_thread(title="online", system_prompt="p")
        assert thread.workspace_id == "ws_a"
        assert (await port.get_thread(thread.id)).title == "online"
        events = [e async for e in backend.send_message(thread.id, "hello")]
        assert events[-1].type == "message.completed"
        renamed = await backend.update_thread(thread.id, title="renamed", pinned=True)
        assert (await port.get_thread(renamed.id)).title == "renamed"
        info = await backend.info()
        assert (info.kind, info.workspace, info.online) == ("remote", "Acme", True)
        assert (await backend.list_models())[0] == "step-model"
        server = await stack.scoped("a1").get_thread(thread.id)
        assert (server.title, server.pinned, server.message_count) == (
            "renamed",
            True,
            2,
        )
        await backend.delete_thread(thread.id)
        with pytest.raises(NotFound):
            await port.get_thread(thread.id)
        assert await stack.scoped("a1").list_threads(
            archived=None
        ) == await backend.list_threads(archived=None)


async def test_offline_reads_serve_the_mirror_and_live_operations_say_why_not(
    stack: Stack, tmp_path: Path
) -> None:
    a1 = stack.scoped("a1")
    thread = await a1.create_thread(title="readable offline")
    async for _ in a1.send_message(thread.id, "the quarterly numbers"):
        pass
    async with client_engine(tmp_path / "client.db") as engine:
        transport = FaultTransport()
        service = service_for(remote_for(stack, transport=transport), engine)
        await service.sync()
        backend = await MirroredBackend.open(service, probe_interval=1e9)
        transport.offline = True
        listed = await backend.list_threads()
        assert [t.title for t in listed.items] == ["readable offline"]
        assert backend.offline
        got = await backend.get_thread(thread.id)
        assert got.workspace_id == "ws_a"  # shown under the remote's id
        messages = await all_messages(backend, thread.id)
        assert [m.role for m in messages] == ["user", "assistant"]
        assert (await backend.get_message(thread.id, messages[1].id)).content
        assert (await backend.search("quarterly")).total == 1
        assert [a.slug for a in await backend.list_agents()]
        read = await backend.mark_read(thread.id)
        assert not read.unread
        drafted = await backend.update_thread(thread.id, draft="half a thought")
        assert drafted.draft == "half a thought"
        for call in (
            backend.list_models(),
            backend.edit_message(thread.id, messages[0].id, "x"),
            backend.cancel_message(thread.id, messages[1].id),
            backend.list_knowledge(),
            backend.list_leads(),
        ):
            with pytest.raises(RemoteUnavailable) as caught:
                await call
            assert caught.value.message.startswith("Offline: ")
        for stream in (
            backend.regenerate(thread.id),
            backend.stream_events(thread.id, messages[1].id),
        ):
            with pytest.raises(RemoteUnavailable):
                await anext(stream)
        info = await backend.info()
        assert (info.online, info.workspace) == (False, "Acme")
        assert info.model_problem is not None and "last synced" in info.model_problem
        await backend.aclose()


async def test_a_backend_that_never_synced_says_so_offline(
    stack: Stack, tmp_path: Path
) -> None:
    async with client_engine(tmp_path / "client.db") as engine:
        transport = FaultTransport(offline=True)
        service = service_for(remote_for(stack, transport=transport), engine)
        backend = await MirroredBackend.open(service, probe_interval=1e9)
        with pytest.raises(RemoteUnavailable) as caught:
            await backend.list_threads()
        assert "never synced" in caught.value.message
        info = await backend.info()
        assert not info.online and "never synced" in (info.model_problem or "")
        await backend.aclose()


async def test_offline_calls_start_a_background_sync_that_brings_it_back(
    stack: Stack, tmp_path: Path
) -> None:
    thread = await stack.scoped("a1").create_thread(title="t")
    async with client_engine(tmp_path / "client.db") as engine:
        transport = FaultTransport()
        service = service_for(remote_for(stack, transport=transport), engine)
        await service.sync()
        closed: list[str] = []

        async def on_close() -> None:
            closed.append("engine")

        backend = await MirroredBackend.open(
            service, on_close=on_close, probe_interval=0.0
        )
        transport.offline = True
        await backend.update_thread(thread.id, title="queued while away")
        assert backend.offline
        transport.offline = False
        for _ in range(200):  # bounded: each call may start one background sync
            await asyncio.sleep(0.01)
            if not backend.offline:
                break
        assert not backend.offline
        for _ in range(200):
            if (await service.status()).pending == 0:
                break
            await asyncio.sleep(0.01)
        assert (await stack.scoped("a1").get_thread(thread.id)).title == (
            "queued while away"
        )
        await backend.aclose()
        assert closed == ["engine"]


async def test_a_send_that_cannot_start_online_is_queued_with_the_same_key(
    stack: Stack, tmp_path: Path
) -> None:
    """The remote may have committed a send whose answer was lost: the queued replay
    uses the key of that first try, so the server recognises it."""
    thread = await stack.scoped("a1").create_thread(title="t")
    async with client_engine(tmp_path / "client.db") as engine:
        transport = FaultTransport()
        service = service_for(remote_for(stack, transport=transport), engine)
        await service.sync()
        backend = await MirroredBackend.open(service, probe_interval=1e9)
        transport.add("POST", r"/messages$", at=1, kind="drop_after_commit", times=100)
        events = [e async for e in backend.send_message(thread.id, "maybe sent")]
        assert events[-1].status == "queued"
        assert events[-1].extra.get("queued") is True
        transport.faults.clear()
        await service.sync()
        port = service.port
        assert port is not None
        attempts = {s.key for s in transport.requests("POST", r"/messages$")}
        assert len(attempts) == 1
    users = [
        m for m in await all_messages(stack.scoped("a1"), thread.id) if m.role == "user"
    ]
    assert [m.content for m in users] == ["maybe sent"]
    threads = await all_threads(stack.scoped("a1"))
    assert [t.message_count for t in threads] == [2]


async def test_the_app_sees_a_syncable_backend_whose_sync_never_raises(
    stack: Stack, tmp_path: Path
) -> None:
    from tenex_tui.core.sync import Syncable

    await stack.scoped("a1").create_thread(title="t")
    async with client_engine(tmp_path / "client.db") as engine:
        transport = FaultTransport()
        service = service_for(remote_for(stack, transport=transport), engine)
        backend = await MirroredBackend.open(service, probe_interval=1e9)
        assert isinstance(backend, Syncable)
        status = await backend.sync_now()
        assert (status.online, status.pending, status.last_error) == (True, 0, None)
        assert status.last_sync_at is not None and not status.syncing
        transport.offline = True
        offline = await backend.sync_now()
        assert offline.online is False and offline.last_error is not None
        assert offline.last_sync_at == status.last_sync_at
        assert await backend.sync_status() == offline
        await backend.aclose()
