"""The app on a remote workspace with a local mirror (`MirroredBackend`), end to end:
the header's sync status, a message sent offline shown as pending (not as an error),
and "Sync now" sending it once the remote is back — against the project's own server
on 127.0.0.1 and a transport that can cut the network."""

from __future__ import annotations

from pathlib import Path

import pytest

from tenex_tui.core.backend import ChatBackend
from tenex_tui.remote.mirror import MirroredBackend
from tenex_tui.ui.app import TenexApp
from tenex_tui.ui.screens import workspace
from tenex_tui.ui.widgets.attachment_chips import PENDING_NOTE, is_pending
from tenex_tui.ui.widgets.composer import Composer
from tenex_tui.ui.widgets.message_view import MessageView
from tenex_tui.ui.widgets.panels import ThreadHeader
from tests.remote.fault_transport import FaultTransport
from tests.remote.sync_helpers import client_engine, remote_for, service_for
from tests.support.server_fixture import serve_stack
from tests.ui.harness import wait_until

pytestmark = pytest.mark.e2e


def _views(app: TenexApp) -> list[MessageView]:
    return [view for view in app.chat.pane.views if isinstance(view, MessageView)]


async def test_an_offline_send_is_pending_and_sync_now_sends_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The first background sync soon after start-up (45 s between the next ones).
    monkeypatch.setattr(workspace, "SYNC_FIRST_DELAY", 0.05)
    async with serve_stack(tmp_path / "server") as stack:
        a1 = stack.scoped("a1")
        thread = await a1.create_thread(title="Remote thread")
        async with client_engine(tmp_path / "client.db") as engine:
            transport = FaultTransport()
            service = service_for(remote_for(stack, transport=transport), engine)
            await service.sync()
            backend = await MirroredBackend.open(service, probe_interval=1e9)

            async def factory() -> ChatBackend:
                return backend

            app = TenexApp(factory, own_backend=False)
            async with app.run_test(size=(120, 36)) as pilot:
                header = app.chat.query_one("#header", ThreadHeader)
                await wait_until(
                    pilot,
                    lambda: header.sync is not None and app.chat.threads.row_count > 0,
                    "the sync status and the threads",
                )
                await wait_until(
                    pilot, lambda: app.chat.syncs >= 1, "a background sync"
                )
                titles = {c.title for c in app.get_system_commands(app.screen)}
                assert "Sync now" in titles
                assert "online" in header.sync_text().plain

                transport.offline = True
                app.chat.threads.select(thread.id)
                await pilot.press("enter")
                await wait_until(
                    pilot, lambda: isinstance(app.focused, Composer), "composer"
                )
                for key in "hello":
                    await pilot.press(key)
                await pilot.press("enter")
                await wait_until(
                    pilot,
                    lambda: any(is_pending(v.message) for v in _views(app)),
                    "the pending message",
                )
                await wait_until(
                    pilot,
                    lambda: header.sync is not None and header.sync.pending == 1,
                    "one pending in the header",
                )
                status = header.sync_text().plain
                assert "offline" in status and "1 pending" in status
                pending = next(v for v in _views(app) if is_pending(v.message))
                assert pending.message.content == "hello"
                assert [v.message.role for v in _views(app)] == ["user"]  # no error
                assert app.chat.pane.reply_view is None
                composer = app.chat.composer
                assert composer.text == "" and not composer.locked
                notes = [str(n.message) for n in app._notifications]
                assert any("will be sent when" in n for n in notes)
                assert not any(n.title == "Not sent" for n in app._notifications)
                row = app.chat.threads.row_for(thread.id)
                assert row is not None and row.status is None

                transport.offline = False
                app.chat.action_sync_now()
                await wait_until(
                    pilot,
                    lambda: header.sync is not None and header.sync.pending == 0,
                    "the outbox sent",
                )
                await wait_until(
                    pilot,
                    lambda: (
                        [v.message.role for v in _views(app)] == ["user", "assistant"]
                    ),
                    "the real message and its reply",
                )
                assert not any(is_pending(v.message) for v in _views(app))
                assert "online" in header.sync_text().plain
                assert app.chat.syncs >= 2
            await backend.aclose()
        remote = (await a1.list_messages(thread.id)).items
        assert [m.content for m in remote][:1] == ["hello"]
        assert PENDING_NOTE.startswith("◷ pending")
