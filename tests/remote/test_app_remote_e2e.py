"""End to end: the terminal app on a remote workspace (the project's own server)."""

from __future__ import annotations

import pytest

from tests.support.server_fixture import Stack


@pytest.mark.e2e
async def test_the_app_shows_the_remote_workspace_and_its_threads(stack: Stack) -> None:
    from tenex_tui.core.backend import ChatBackend
    from tenex_tui.ui.app import TenexApp
    from tenex_tui.ui.widgets.panels import ThreadHeader
    from tenex_tui.ui.widgets.thread_list import ThreadList

    mine = await stack.scoped("a1").create_thread(title="Remote plan")
    await stack.scoped("b1").create_thread(title="Someone else's")
    remote = stack.remote("a1")

    async def factory() -> ChatBackend:
        return remote

    app = TenexApp(factory, own_backend=False)
    async with app.run_test(size=(100, 30)) as pilot:
        header = app.screen.query_one("#header", ThreadHeader)
        threads = app.screen.query_one(ThreadList)
        for _ in range(200):  # bounded; each round lets the app's workers finish
            await pilot.pause()
            await app.workers.wait_for_complete()
            if header.info is not None and threads.row_count and not threads.fetching:
                break
        assert header.info is not None
        assert (header.info.kind, header.info.workspace, header.info.online) == (
            "remote",
            "Acme",
            True,
        )
        assert [row.id for row in threads.rows] == [mine.id]
