"""Snapshot tests: every screen and state of the app, on the deterministic demo workspace.

The app is the production `TenexApp` on a real `LocalEngine` that the backend factory
builds inside the app's loop (`tests/support/demo_workspace.py`): scripted replies, a
fixed clock for ids and times, and a fixed "now" for relative times. Cursor blinking is
turned off before each screenshot.

Update with `pytest tests/snapshots --snapshot-update`, then *look* at the SVGs.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
from textual.pilot import Pilot

from tenex_tui.ui.app import TenexApp
from tenex_tui.ui.screens.search import SearchModal
from tests.reliability.test_store_concurrency import LockHolder
from tests.support.demo_workspace import (
    DEMO_NOW,
    DemoApp,
    demo_factory,
    freeze,
    ready,
    show,
    until,
)

pytestmark = pytest.mark.snapshot

SnapCompare = Callable[..., bool]
RunBefore = Callable[[Pilot[None]], Awaitable[None]]

WIDE = (160, 50)
NORMAL = (120, 36)
NARROW = (80, 24)


def _app(tmp_path: Path, **options: bool) -> tuple[TenexApp, DemoApp]:
    factory, holder = demo_factory(tmp_path / "demo.db", **options)
    return TenexApp(factory, now=lambda: DEMO_NOW), holder


def _showing(holder: DemoApp, name: str) -> RunBefore:
    async def run_before(pilot: Pilot[None]) -> None:
        await ready(pilot)
        assert holder.demo is not None
        await show(pilot, getattr(holder.demo, name))

    return run_before


class TestStartup:
    def test_empty_workspace(self, snap_compare: SnapCompare, tmp_path: Path) -> None:
        """You should see an empty sidebar saying "No threads yet — press n to start
        one", a message pane inviting you to select or start a thread, and the
        composer with its "Enter sends · Ctrl+J new line" hint."""
        app, _ = _app(tmp_path, empty=True)
        assert snap_compare(app, terminal_size=NORMAL, run_before=ready)

    def test_no_model_panel(self, snap_compare: SnapCompare, tmp_path: Path) -> None:
        """You should see the demo threads in the sidebar, and above the messages a
        one-line "No model connected" banner (a thread is previewed), and "no model"
        on the right of the header."""
        app, holder = _app(tmp_path, with_model=False)
        assert snap_compare(
            app, terminal_size=NORMAL, run_before=_showing(holder, "pricing")
        )

    def test_no_model_panel_in_an_empty_workspace(
        self, snap_compare: SnapCompare, tmp_path: Path
    ) -> None:
        """You should see the full "No model connected" panel with one line per kind of
        provider (OpenAI, Ollama, llama.cpp, LM Studio) and how to pick a model."""
        app, _ = _app(tmp_path, with_model=False, empty=True)
        assert snap_compare(app, terminal_size=NORMAL, run_before=ready)


class TestThread:
    def test_markdown_code_and_table(
        self, snap_compare: SnapCompare, tmp_path: Path
    ) -> None:
        """You should see the pinned "Q3 pricing page rewrite" thread selected (⚑), and
        its reply with a heading, a numbered list, a table, a highlighted Python block
        and an underlined link; the pane is scrolled to the bottom."""
        app, holder = _app(tmp_path)
        assert snap_compare(
            app, terminal_size=WIDE, run_before=_showing(holder, "pricing")
        )

    def test_narrow_terminal(self, snap_compare: SnapCompare, tmp_path: Path) -> None:
        """At 80×24 you should see a narrower sidebar (titles cut with …, times on the
        right) and the same thread readable in the remaining width."""
        app, holder = _app(tmp_path)
        assert snap_compare(
            app, terminal_size=NARROW, run_before=_showing(holder, "pricing")
        )

    def test_tool_call_block(self, snap_compare: SnapCompare, tmp_path: Path) -> None:
        """You should see the Globex reply with its `search_knowledge` tool call
        expanded (▾) under the header: the arguments as JSON, indented."""
        app, holder = _app(tmp_path)

        async def run_before(pilot: Pilot[None]) -> None:
            await ready(pilot)
            assert holder.demo is not None
            app = await show(pilot, holder.demo.globex)
            app.chat.pane.focus()
            await pilot.press("t")
            await pilot.pause()

        assert snap_compare(app, terminal_size=NORMAL, run_before=run_before)

    @pytest.mark.parametrize("name", ["stopped", "interrupted", "failed"])
    def test_reply_status(
        self, snap_compare: SnapCompare, tmp_path: Path, name: str
    ) -> None:
        """You should see the reply's status under its text with the actions that fix
        it: ■ Stopped — c continue · R regenerate; ! Interrupted: <why> — R retry ·
        c continue; ✗ Failed: <why> — R retry. The sidebar shows ■, ! or ✗."""
        app, holder = _app(tmp_path)
        assert snap_compare(
            app, terminal_size=NORMAL, run_before=_showing(holder, name)
        )

    def test_streaming_reply(self, snap_compare: SnapCompare, tmp_path: Path) -> None:
        """You should see your message "Summarise this thread" and below it a reply
        being written ("◐ writing… Esc stops"), the composer locked with "A reply is
        being written…", and ◐ beside the thread in the sidebar."""
        app, holder = _app(tmp_path)

        async def run_before(pilot: Pilot[None]) -> None:
            await ready(pilot)
            assert holder.demo is not None and holder.llm is not None
            app = await show(pilot, holder.demo.email)
            reply = holder.llm.enqueue(
                "Here is the summary so far:\n\n- Dana asked for ",
                "pricing options\n- A pilot is on the table\n",
                "- Next step: a call on Thursday",
                hold_at=(2,),
            )
            await pilot.press("enter")
            for key in "Summarise this thread":
                await pilot.press("space" if key == " " else key)
            await pilot.press("enter")
            await until(pilot, lambda: reply.held(2).is_set())
            view = app.chat.pane.reply_view
            await until(
                pilot, lambda: view is not None and view.shown_text.count("\n") >= 3
            )
            await pilot.pause(0.2)
            freeze(pilot)

        assert snap_compare(app, terminal_size=NORMAL, run_before=run_before)

    def test_send_waiting_for_the_database(
        self, snap_compare: SnapCompare, tmp_path: Path
    ) -> None:
        """Another process holds the database's write lock (T5). You should see your
        message "Send me when you can" at the end of the thread with "◷ waiting for the
        database — saved as soon as it is free" under it, a "Waiting for the database"
        notice ("storage busy — another tenex-tui process may be running. Your message
        is kept…"), and the composer locked."""
        factory, holder = demo_factory(tmp_path / "demo.db", busy_timeout_ms=100)
        app = TenexApp(factory, now=lambda: DEMO_NOW)
        lock: list[LockHolder] = []

        async def run_before(pilot: Pilot[None]) -> None:
            await ready(pilot)
            assert holder.demo is not None
            shown = await show(pilot, holder.demo.email)
            await pilot.press("enter")
            for key in "Send me when you can":
                await pilot.press("space" if key == " " else key)
            lock.append(LockHolder(tmp_path / "demo.db"))
            await pilot.press("enter")
            await until(
                pilot,
                lambda: any(
                    state.held is not None for state in shown.chat.replies.live()
                ),
            )
            await pilot.pause(0.2)
            freeze(pilot)

        try:
            assert snap_compare(app, terminal_size=NORMAL, run_before=run_before)
        finally:
            for held in lock:
                held.release()


class TestSidebar:
    def test_archived_view(self, snap_compare: SnapCompare, tmp_path: Path) -> None:
        """You should see "Archive 3" at the top of the sidebar and the three archived
        threads."""
        app, _ = _app(tmp_path)

        async def run_before(pilot: Pilot[None]) -> None:
            await ready(pilot)
            await pilot.press("A")
            await ready(pilot)

        assert snap_compare(app, terminal_size=NORMAL, run_before=run_before)

    def test_bulk_marks(self, snap_compare: SnapCompare, tmp_path: Path) -> None:
        """You should see three threads marked with ✓ on a highlighted background, and
        the cursor on the fourth."""
        app, _ = _app(tmp_path)

        async def run_before(pilot: Pilot[None]) -> None:
            await ready(pilot)
            await pilot.press("j", "x", "x", "x")
            await pilot.pause()

        assert snap_compare(app, terminal_size=NORMAL, run_before=run_before)

    def test_delete_confirmation(
        self, snap_compare: SnapCompare, tmp_path: Path
    ) -> None:
        """You should see a "Delete thread?" dialog naming the thread, saying it can be
        undone for 5 seconds with u, and Cancel (Esc) / Delete (Enter) buttons."""
        app, _ = _app(tmp_path)

        async def run_before(pilot: Pilot[None]) -> None:
            await ready(pilot)
            await pilot.press("j", "d")
            await pilot.pause(0.2)
            freeze(pilot)

        assert snap_compare(app, terminal_size=NORMAL, run_before=run_before)

    def test_new_thread_modal(self, snap_compare: SnapCompare, tmp_path: Path) -> None:
        """You should see the "New thread" dialog: a title field, the agent picker set
        to "Open assistant", a system-prompt box, and Cancel / Create buttons."""
        app, _ = _app(tmp_path)

        async def run_before(pilot: Pilot[None]) -> None:
            await ready(pilot)
            await pilot.press("n")
            await pilot.pause(0.2)
            freeze(pilot)

        assert snap_compare(app, terminal_size=NORMAL, run_before=run_before)

    def test_search_results(self, snap_compare: SnapCompare, tmp_path: Path) -> None:
        """You should see the search dialog with "pilot" typed, hits listed two lines
        each (thread title, who and when, then the snippet with "pilot" highlighted),
        and the first hit selected."""
        app, _ = _app(tmp_path)

        async def run_before(pilot: Pilot[None]) -> None:
            app = await ready(pilot)
            await pilot.press("/")
            for key in "pilot":
                await pilot.press(key)
            await until(
                pilot,
                lambda: (
                    isinstance(app.screen, SearchModal)
                    and bool(app.screen.results.hits)
                ),
            )
            await pilot.pause(0.2)
            freeze(pilot)

        assert snap_compare(app, terminal_size=NORMAL, run_before=run_before)


class TestHelpAndPalette:
    def test_help(self, snap_compare: SnapCompare, tmp_path: Path) -> None:
        """You should see the Keys dialog: sections for Threads, Messages, Composer and
        Everywhere, each key with what it does, and the marker legend."""
        app, _ = _app(tmp_path)

        async def run_before(pilot: Pilot[None]) -> None:
            await ready(pilot)
            await pilot.press("question_mark")
            await pilot.pause(0.2)

        assert snap_compare(app, terminal_size=WIDE, run_before=run_before)

    def test_palette(self, snap_compare: SnapCompare, tmp_path: Path) -> None:
        """You should see the command palette with "pin" typed and the matching
        actions listed."""
        app, _ = _app(tmp_path)

        async def run_before(pilot: Pilot[None]) -> None:
            await ready(pilot)
            await pilot.press("ctrl+p")
            for key in "pin":
                await pilot.press(key)
            await pilot.pause(0.4)
            freeze(pilot)

        assert snap_compare(app, terminal_size=NORMAL, run_before=run_before)
