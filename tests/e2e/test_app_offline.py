"""End to end: the terminal app on a remote workspace that goes offline (Pilot).

The app gets a `MirroredBackend`; with the network cut it still lists the workspace's
threads from the local mirror, and its header says the workspace is offline.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tenex_tui.remote.mirror import MirroredBackend
from tests.remote.fault_transport import FaultTransport
from tests.remote.sync_helpers import client_engine, remote_for, service_for
from tests.support.server_fixture import serve_stack

pytestmark = pytest.mark.e2e


async def test_the_app_lists_mirrored_threads_and_shows_offline(tmp_path: Path) -> None:
    from tenex_tui.core.backend import ChatBackend
    from tenex_tui.ui.app import TenexApp
    from tenex_tui.ui.widgets.panels import ThreadHeader
    from tenex_tui.ui.widgets.thread_list import ThreadList

    async with serve_stack(tmp_path / "server") as stack:
        a1 = stack.scoped("a1")
        older = await a1.create_thread(title="Mirrored older")
        newer = await a1.create_thread(title="Mirrored newer")
        async with client_engine(tmp_path / "client.db") as engine:
            transport = FaultTransport()
            service = service_for(remote_for(stack, transport=transport), engine)
            await service.sync()
            backend = await MirroredBackend.open(service, probe_interval=1e9)
            transport.offline = True

            async def factory() -> ChatBackend:
                return backend

            app = TenexApp(factory, own_backend=False)
            async with app.run_test(size=(100, 30)) as pilot:
                header = app.screen.query_one("#header", ThreadHeader)
                threads = app.screen.query_one(ThreadList)
                for _ in range(200):  # bounded; each round lets the workers finish
                    await pilot.pause()
                    await app.workers.wait_for_complete()
                    if (
                        header.info is not None
                        and threads.row_count
                        and not threads.fetching
                    ):
                        break
                assert header.info is not None
                assert (
                    header.info.kind,
                    header.info.workspace,
                    header.info.online,
                ) == (
                    "remote",
                    "Acme",
                    False,
                )
                assert [row.id for row in threads.rows] == [newer.id, older.id]
            await backend.aclose()
