"""T5: another process holds the database's write lock while the user sends.

The send is refused by the engine (`StorageBusy`, after its busy timeout); the app
holds the message (shown as waiting, with a plain non-modal notice), keeps working,
and saves it once the lock clears — exactly once. Esc meanwhile gives the text back.
Real engine on a real file, a real second process holding `BEGIN IMMEDIATE`.
"""

from __future__ import annotations

import io
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from rich.console import Console

from tenex_tui.engine.engine import LocalEngine
from tenex_tui.ui.app import TenexApp
from tenex_tui.ui.widgets.attachment_chips import HELD_MESSAGE_PREFIX, HELD_NOTE
from tenex_tui.ui.widgets.composer import PLACEHOLDER, WAITING_PLACEHOLDER, Composer
from tenex_tui.ui.widgets.message_view import MessageView
from tests.reliability.test_store_concurrency import LockHolder
from tests.support.scripted_llm import ScriptedLLM
from tests.ui.harness import fixed_clock, make_app, ready, settle, shown, wait_until

BUSY_NOTICE = "storage busy — another tenex-tui process may be running"


@pytest.fixture
async def busy_engine(tmp_path: Path, llm: ScriptedLLM) -> AsyncIterator[LocalEngine]:
    """An engine that gives up on a held lock after 100 ms (instead of seconds)."""
    engine = await LocalEngine.open(
        tmp_path / "tenex.db", llm=llm, clock=fixed_clock(), busy_timeout_ms=100
    )
    yield engine
    await engine.aclose()


def _held_views(app: TenexApp) -> list[MessageView]:
    return [
        view
        for view in app.chat.pane.views
        if isinstance(view, MessageView)
        and view.message.id.startswith(HELD_MESSAGE_PREFIX)
    ]


def _plain(view: MessageView) -> str:
    console = Console(width=120, file=io.StringIO(), color_system=None)
    with console.capture() as captured:
        console.print(view.render())
    return captured.get()


def _notices(app: TenexApp) -> list[str]:
    return [str(n.message) for n in app._notifications]


async def _send_while_locked(
    pilot: object, app: TenexApp, thread_id: str, db: Path
) -> LockHolder:
    app.chat.threads.select(thread_id)
    await pilot.press("enter")  # type: ignore[attr-defined]
    await shown(pilot, thread_id)  # type: ignore[arg-type]
    await wait_until(pilot, lambda: isinstance(app.focused, Composer), "composer")  # type: ignore[arg-type]
    app.chat.composer.set_text("hold me")
    holder = LockHolder(db)
    await pilot.press("enter")  # type: ignore[attr-defined]
    await wait_until(pilot, lambda: bool(_held_views(app)), "the held message")  # type: ignore[arg-type]
    return holder


async def test_a_send_waits_for_the_lock_then_is_saved_once(
    busy_engine: LocalEngine, llm: ScriptedLLM, tmp_path: Path
) -> None:
    thread = await busy_engine.create_thread(title="busy")
    other = await busy_engine.create_thread(title="other")
    llm.enqueue("Saved", " at last.")
    async with make_app(busy_engine).run_test() as pilot:
        app = await ready(pilot)
        holder = await _send_while_locked(pilot, app, thread.id, tmp_path / "tenex.db")
        try:
            (held,) = _held_views(app)
            assert held.message.content == "hold me"
            assert HELD_NOTE in _plain(held)
            assert any(BUSY_NOTICE in notice for notice in _notices(app))
            assert app.chat.composer.locked
            assert app.chat.composer.placeholder == WAITING_PLACEHOLDER
            # The app stays usable meanwhile: triage moves in the sidebar.
            app.chat.threads.focus()
            app.chat.threads.select(thread.id)
            await pilot.press("k")
            assert app.chat.threads.highlighted_id == other.id
            await pilot.press("j")
            assert app.chat.threads.highlighted_id == thread.id
            await pilot.press("enter")
            await shown(pilot, thread.id)
            # Reopened, the thread still shows the message waiting.
            await wait_until(pilot, lambda: len(_held_views(app)) == 1, "held again")
            assert app.chat.composer.placeholder == WAITING_PLACEHOLDER
            # Nothing is stored while the lock is held (reads still work).
            assert (await busy_engine.list_messages(thread.id)).items == []
            assert llm.calls == []
        finally:
            holder.release()
        await wait_until(pilot, lambda: not _held_views(app), "the held view to go")
        await wait_until(pilot, lambda: app.chat.pane.reply_view is None, "the reply")
        await settle(pilot)
        stored = (await busy_engine.list_messages(thread.id)).items
        assert [(m.role, m.content) for m in stored] == [
            ("user", "hold me"),
            ("assistant", "Saved at last."),
        ]
        assert [v.message.id for v in app.chat.pane.views] == [m.id for m in stored]
        assert not app.chat.composer.locked
        assert app.chat.composer.placeholder == PLACEHOLDER


async def test_esc_while_held_gives_the_text_back_and_stores_nothing(
    busy_engine: LocalEngine, llm: ScriptedLLM, tmp_path: Path
) -> None:
    thread = await busy_engine.create_thread(title="busy")
    async with make_app(busy_engine).run_test() as pilot:
        app = await ready(pilot)
        holder = await _send_while_locked(pilot, app, thread.id, tmp_path / "tenex.db")
        try:
            await pilot.press("escape")
            await wait_until(
                pilot, lambda: app.chat.composer.text == "hold me", "the text back"
            )
            assert not _held_views(app)
            assert not app.chat.composer.locked
        finally:
            holder.release()
        await settle(pilot)
        assert (await busy_engine.list_messages(thread.id)).items == []
        assert llm.calls == []
