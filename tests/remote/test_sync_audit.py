"""T56 for sync: every statement the feeds, the mirror and the outbox run on scoped
tables binds a workspace (traced on both the serving and the syncing engine)."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

from tenex_tui.engine.engine import LocalEngine
from tenex_tui.remote.mirror import MirroredBackend
from tests.remote.fault_transport import FaultTransport
from tests.remote.sync_helpers import client_engine, remote_for, service_for
from tests.support.server_fixture import Stack

SCOPED = re.compile(
    r"\b(?:FROM|JOIN|INTO|UPDATE)\s+(threads|messages|events|tombstones|outbox"
    r"|sync_state|messages_fts|threads_fts|thread_counts)\b",
    re.IGNORECASE,
)
BOUND = re.compile(r"\bworkspace_id\s*=\s*'[^']*'", re.IGNORECASE)
INSERT_WITH_WORKSPACE = re.compile(
    r"^\s*INSERT\s+(?:OR\s+\w+\s+)?INTO\s+\w+\s*\([^)]*\bworkspace_id\b", re.IGNORECASE
)
# The one lookup across mirrors by design: which mirrors a remote API base has
# (`find_mirrors`, for opening one offline); it reads only `sync_state`.
BY_DESIGN = re.compile(r"FROM sync_state WHERE remote_base = ")


def tracer(engine: LocalEngine, into: list[str]) -> Callable[[bool], None]:
    def trace(on: bool) -> None:
        connection = engine._core.db.connection
        assert connection is not None
        connection.conn.set_trace_callback(into.append if on else None)

    return trace


def audit(statements: list[str]) -> int:
    checked = 0
    for sql in statements:
        if sql.startswith("--") or not SCOPED.search(sql) or BY_DESIGN.search(sql):
            continue
        checked += 1
        assert BOUND.search(sql) or INSERT_WITH_WORKSPACE.search(sql), sql
    return checked


async def test_sync_and_the_outbox_bind_a_workspace_in_every_statement(
    stack: Stack, tmp_path: Path
) -> None:
    a1 = stack.scoped("a1")
    thread = await a1.create_thread(title="audited")
    async for _ in a1.send_message(thread.id, "hello"):
        pass
    served: list[str] = []
    synced: list[str] = []
    server_trace = tracer(stack.engine, served)
    async with client_engine(tmp_path / "client.db") as engine:
        client_trace = tracer(engine, synced)
        await stack.engine._core.db.run(server_trace, True)
        await engine._core.db.run(client_trace, True)
        try:
            transport = FaultTransport()
            service = service_for(remote_for(stack, transport=transport), engine)
            await service.sync()
            backend = await MirroredBackend.open(service, probe_interval=1e9)
            transport.offline = True
            await backend.update_thread(thread.id, title="renamed", pinned=True)
            async for _ in backend.send_message(thread.id, "queued"):
                pass
            created = await backend.create_thread(title="new")
            await backend.update_thread(created.id, archived=True)
            await backend.list_threads()
            await backend.search("queued")
            await service.status()
            transport.offline = False
            await a1.delete_thread((await a1.create_thread(title="gone")).id)
            await service.sync()
            await backend.delete_thread(thread.id)
            await service.sync()
            port = service.port
            assert port is not None
            await port.prune([], [])
            await port.reset_cursors()
            await service.sync()
        finally:
            await engine._core.db.run(client_trace, False)
            await stack.engine._core.db.run(server_trace, False)
    assert audit(synced) > 30
    assert audit(served) > 10
