"""Pilot tests of the sidebar: open, move, rename, pin, archive, delete + undo, bulk,
filter, search, focus, rebinding, help and palette — on the real engine."""

from __future__ import annotations

import asyncio

import pytest
from textual.widgets import Select, TextArea

from tenex_tui.config import UiSettings
from tenex_tui.core.errors import NotFound, StorageCorrupt
from tenex_tui.engine.engine import LocalEngine
from tenex_tui.ui.app import TenexApp
from tenex_tui.ui.screens.help import HelpModal
from tenex_tui.ui.screens.modals import ConfirmModal, NewThreadModal, RenameModal
from tenex_tui.ui.screens.search import SearchModal
from tenex_tui.ui.widgets.composer import Composer
from tenex_tui.ui.widgets.message_pane import MessagePane
from tenex_tui.ui.widgets.thread_list import ThreadList
from tests.support.scripted_llm import ScriptedLLM
from tests.ui.harness import make_app, ready, settle, shown, wait_until


async def _threads(engine: LocalEngine, *titles: str) -> list[str]:
    return [(await engine.create_thread(title=title)).id for title in titles]


async def test_first_frame_is_painted_before_the_backend_opens(
    engine: LocalEngine,
) -> None:
    gate = asyncio.Event()
    opened = False

    async def slow_factory() -> LocalEngine:
        nonlocal opened
        await gate.wait()
        opened = True
        return engine

    app = TenexApp(slow_factory, own_backend=False)
    async with app.run_test() as pilot:
        await pilot.pause()
        assert not opened
        assert app.chat.threads.empty_text == "Opening…"
        welcome = app.chat.welcome
        assert welcome.display and welcome.state == "opening"
        assert "Opening your workspace" in welcome.plain
        gate.set()
        await ready(pilot)
        assert opened and app.chat.backend is engine


async def test_sidebar_has_focus_with_the_most_recent_thread_selected(
    engine: LocalEngine,
) -> None:
    _old, _middle, newest = await _threads(engine, "old", "middle", "newest")
    async with make_app(engine).run_test() as pilot:
        app = await ready(pilot)
        assert isinstance(app.focused, ThreadList)
        assert app.chat.threads.highlighted_id == newest
        # The highlighted thread is previewed without taking focus.
        await shown(pilot, newest)
        assert isinstance(app.focused, ThreadList)


async def test_enter_opens_the_thread_and_puts_the_cursor_in_the_composer(
    engine: LocalEngine,
) -> None:
    first, second = await _threads(engine, "first", "second")
    async with make_app(engine).run_test() as pilot:
        app = await ready(pilot)
        await pilot.press("j", "enter")
        await shown(pilot, first)
        await wait_until(
            pilot, lambda: isinstance(app.focused, Composer), "composer focus"
        )
        assert app.chat.thread is not None and app.chat.thread.id == first
        assert second != first


async def test_movement_keys_move_the_cursor(engine: LocalEngine) -> None:
    ids = await _threads(engine, *[f"t{i}" for i in range(6)])
    async with make_app(engine).run_test() as pilot:
        app = await ready(pilot)
        threads = app.chat.threads
        await pilot.press("j", "j", "down")
        assert threads.cursor == 3
        await pilot.press("k", "up")
        assert threads.cursor == 1
        await pilot.press("G")
        assert threads.highlighted_id == ids[0]
        await pilot.press("g")
        assert threads.highlighted_id == ids[-1]
        await pilot.press("end")
        assert threads.cursor == 5
        await pilot.press("home")
        assert threads.cursor == 0


async def test_r_renames_the_thread(engine: LocalEngine) -> None:
    (thread_id,) = await _threads(engine, "Untitled idea")
    async with make_app(engine).run_test() as pilot:
        app = await ready(pilot)
        await pilot.press("r")
        await wait_until(
            pilot, lambda: isinstance(app.screen, RenameModal), "rename modal"
        )
        for key in "Launch plan":
            await pilot.press("space" if key == " " else key)
        await pilot.press("enter")
        await settle(pilot)
        assert (await engine.get_thread(thread_id)).title == "Launch plan"
        row = app.chat.threads.row_for(thread_id)
        assert row is not None and row.title == "Launch plan"


async def test_p_pins_and_moves_the_thread_to_the_top(engine: LocalEngine) -> None:
    oldest, _newer = await _threads(engine, "oldest", "newer")
    async with make_app(engine).run_test() as pilot:
        app = await ready(pilot)
        await pilot.press("j", "p")
        await settle(pilot)
        assert (await engine.get_thread(oldest)).pinned
        assert app.chat.threads.rows[0].id == oldest
        assert app.chat.threads.highlighted_id == oldest
        await pilot.press("p")
        await settle(pilot)
        assert not (await engine.get_thread(oldest)).pinned
        assert app.chat.threads.rows[-1].id == oldest


async def test_archive_moves_a_thread_to_the_archive_view_and_back(
    engine: LocalEngine,
) -> None:
    keep, gone = await _threads(engine, "keep", "archive me")
    async with make_app(engine).run_test() as pilot:
        app = await ready(pilot)
        assert app.chat.threads.highlighted_id == gone
        await pilot.press("a")
        await settle(pilot)
        assert (await engine.get_thread(gone)).archived
        assert [row.id for row in app.chat.threads.rows] == [keep]
        await pilot.press("A")
        await ready(pilot)
        assert app.chat.archived_view
        assert [row.id for row in app.chat.threads.rows] == [gone]
        await pilot.press("a")  # in the archive, a brings it back
        await settle(pilot)
        assert not (await engine.get_thread(gone)).archived
        await pilot.press("A")
        await ready(pilot)
        assert {row.id for row in app.chat.threads.rows} == {keep, gone}


async def test_delete_asks_first_hides_the_thread_and_undo_brings_it_back(
    engine: LocalEngine,
) -> None:
    _keep, doomed = await _threads(engine, "keep", "doomed")
    async with make_app(engine).run_test() as pilot:
        app = await ready(pilot)
        await pilot.press("d")
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmModal), "confirm")
        await pilot.press("escape")
        await pilot.pause()
        assert app.chat.threads.row_for(doomed) is not None
        await pilot.press("d")
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmModal), "confirm")
        await pilot.press("enter")
        await wait_until(
            pilot, lambda: app.chat.threads.row_for(doomed) is None, "hidden"
        )
        # Hidden now, but not deleted while the undo window is open.
        assert (await engine.get_thread(doomed)).id == doomed
        await pilot.press("u")
        await pilot.pause()
        assert app.chat.threads.row_for(doomed) is not None
        assert (await engine.get_thread(doomed)).id == doomed


async def test_delete_happens_when_the_undo_window_closes(engine: LocalEngine) -> None:
    (doomed,) = await _threads(engine, "doomed")
    async with make_app(engine).run_test() as pilot:
        app = await ready(pilot)
        app.chat.undo_seconds = 0.05
        await pilot.press("d")
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmModal), "confirm")
        await pilot.press("enter")

        deleted = False

        async def check() -> None:
            nonlocal deleted
            try:
                await engine.get_thread(doomed)
            except NotFound:
                deleted = True

        loop = asyncio.get_running_loop()
        deadline = loop.time() + 5
        while not deleted and loop.time() < deadline:
            await pilot.pause(0.02)
            await check()
        assert deleted


async def test_a_pending_delete_is_carried_out_on_quit(engine: LocalEngine) -> None:
    (doomed,) = await _threads(engine, "doomed")
    app = make_app(engine)
    async with app.run_test() as pilot:
        await ready(pilot)
        await pilot.press("d")
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmModal), "confirm")
        await pilot.press("enter")
        await wait_until(pilot, lambda: not app.chat.threads.rows, "hidden")
        await pilot.press("ctrl+q")
    with pytest.raises(NotFound):
        await engine.get_thread(doomed)


async def test_marks_make_pin_archive_and_delete_act_on_several_threads(
    engine: LocalEngine,
) -> None:
    ids = await _threads(engine, "a", "b", "c", "d")
    async with make_app(engine).run_test() as pilot:
        app = await ready(pilot)
        threads = app.chat.threads
        await pilot.press("space", "x")  # marks d and c, cursor moves down each time
        assert threads.marked == {ids[3], ids[2]}
        await pilot.press("a")
        await settle(pilot)
        assert (await engine.get_thread(ids[3])).archived
        assert (await engine.get_thread(ids[2])).archived
        assert not (await engine.get_thread(ids[1])).archived
        assert [row.id for row in threads.rows] == [ids[1], ids[0]]
        assert not threads.marked
        await pilot.press("g", "space", "space", "d")
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmModal), "confirm")
        await pilot.press("enter")
        await wait_until(pilot, lambda: not threads.rows, "both hidden")


async def test_escape_clears_marks_before_anything_else(engine: LocalEngine) -> None:
    await _threads(engine, "a", "b")
    async with make_app(engine).run_test() as pilot:
        app = await ready(pilot)
        await pilot.press("x")
        assert app.chat.threads.marked
        await pilot.press("escape")
        assert not app.chat.threads.marked
        assert isinstance(app.focused, ThreadList)


async def test_filter_as_you_type_asks_the_backend_for_matching_titles(
    engine: LocalEngine,
) -> None:
    await _threads(engine, "Pricing page", "Hiring plan", "pricing FAQ")
    async with make_app(engine).run_test() as pilot:
        app = await ready(pilot)
        await pilot.press("f")
        for key in "pric":
            await pilot.press(key)
        await wait_until(
            pilot,
            lambda: app.chat.filter_query == "pric" and app.chat.threads.fully_loaded,
            "filtered list",
        )
        titles = sorted(row.title for row in app.chat.threads.rows)
        assert titles == ["Pricing page", "pricing FAQ"]
        await pilot.press("escape")
        await ready(pilot)
        await wait_until(pilot, lambda: len(app.chat.threads.rows) == 3, "unfiltered")
        assert isinstance(app.focused, ThreadList)


async def test_search_opens_the_thread_scrolled_to_the_matching_message(
    engine: LocalEngine, llm: ScriptedLLM
) -> None:
    target = await engine.create_thread(title="Research")
    for index in range(40):
        llm.enqueue(f"answer number {index}")
        async for _ in engine.send_message(target.id, f"question {index}"):
            pass
    llm.enqueue("the word zanzibar appears here")
    async for _ in engine.send_message(target.id, "tell me about islands"):
        pass
    for index in range(30):
        llm.enqueue(f"later answer {index}")
        async for _ in engine.send_message(target.id, f"later question {index}"):
            pass
    await engine.create_thread(title="Other")
    async with make_app(engine).run_test(size=(110, 30)) as pilot:
        app = await ready(pilot)
        await pilot.press("/")
        await wait_until(pilot, lambda: isinstance(app.screen, SearchModal), "search")
        for key in "zanzibar":
            await pilot.press(key)
        modal = app.screen
        assert isinstance(modal, SearchModal)
        await wait_until(pilot, lambda: bool(modal.results.hits), "hits")
        hit = modal.results.hits[0]
        assert hit.thread_id == target.id and hit.message_id is not None
        await pilot.press("enter")
        await shown(pilot, target.id)
        view = app.chat.pane.view_for(hit.message_id)
        assert view is not None and view.has_class("-selected", "-found")
        assert isinstance(app.focused, MessagePane)
        # The match is older than the newest page: the pane loaded back to it.
        assert len(app.chat.pane.views) > 30


async def test_the_sidebar_pages_through_the_cursor_and_end_walks_to_the_last(
    engine: LocalEngine,
) -> None:
    ids = [(await engine.create_thread(title=f"thread {i:03d}")).id for i in range(260)]
    async with make_app(engine).run_test(size=(100, 30)) as pilot:
        app = pilot.app
        assert isinstance(app, TenexApp)
        threads = app.chat.threads
        await wait_until(pilot, lambda: len(threads.rows) >= 100, "first page")
        await pilot.pause()
        assert len(threads.rows) < 260  # never every thread up front
        assert threads.row_count == 260  # the total sizes the scroll bar
        await pilot.press("end")
        await wait_until(pilot, lambda: threads.fully_loaded, "every page")
        await pilot.pause()
        assert threads.highlighted_id == ids[0]
        assert len(threads.rows) == 260


async def test_tab_cycles_sidebar_messages_composer_and_escape_goes_back(
    engine: LocalEngine,
) -> None:
    await _threads(engine, "one")
    async with make_app(engine).run_test() as pilot:
        app = await ready(pilot)
        await pilot.press("tab")
        assert isinstance(app.focused, MessagePane)
        await pilot.press("tab")
        assert isinstance(app.focused, Composer)
        await pilot.press("shift+tab")
        assert isinstance(app.focused, MessagePane)
        await pilot.press("escape")
        assert isinstance(app.focused, ThreadList)


async def test_a_key_rebound_in_settings_replaces_the_default(
    engine: LocalEngine,
) -> None:
    await _threads(engine, "one")
    ui = UiSettings(keys={"thread.new": "ctrl+t"})
    async with make_app(engine, ui=ui).run_test() as pilot:
        app = await ready(pilot)
        await pilot.press("n")
        await pilot.pause()
        assert not isinstance(app.screen, NewThreadModal)
        await pilot.press("ctrl+t")
        await wait_until(pilot, lambda: isinstance(app.screen, NewThreadModal), "modal")
        assert app.key_label("thread.new") == "^t"


async def test_help_lists_every_area_with_the_users_keys(engine: LocalEngine) -> None:
    ui = UiSettings(keys={"thread.pin": "P"})
    async with make_app(engine, ui=ui).run_test() as pilot:
        app = await ready(pilot)
        await pilot.press("question_mark")
        await wait_until(pilot, lambda: isinstance(app.screen, HelpModal), "help")
        sections = [str(label.render()) for label in app.screen.query(".help-section")]
        assert sections == ["Threads (sidebar)", "Messages", "Composer", "Everywhere"]
        modal = app.screen
        assert isinstance(modal, HelpModal)
        rows = {
            description: keys
            for _, area in modal.sections
            for keys, description in area
        }
        assert rows["Pin or unpin (all marked threads, if any)"] == "P"
        assert rows["Send the message"] == "⏎"
        await pilot.press("escape")
        assert not isinstance(app.screen, HelpModal)


async def test_new_thread_modal_creates_a_thread_with_agent_and_system_prompt(
    engine: LocalEngine,
) -> None:
    agents = await engine.list_agents()
    async with make_app(engine).run_test() as pilot:
        app = await ready(pilot)
        await pilot.press("n")
        await wait_until(pilot, lambda: isinstance(app.screen, NewThreadModal), "modal")
        for key in "Plan":
            await pilot.press(key)
        modal = app.screen
        if agents:
            modal.query_one("#agent", Select).value = agents[0].slug
        modal.query_one("#system-prompt", TextArea).text = "Be brief."
        await pilot.press("ctrl+s")
        await wait_until(pilot, lambda: app.chat.thread is not None, "opened")
        thread = app.chat.thread
        assert thread is not None and thread.title == "Plan"
        assert thread.system_prompt == "Be brief."
        assert thread.agent == (agents[0].slug if agents else None)
        assert app.chat.threads.highlighted_id == thread.id
        await wait_until(pilot, lambda: isinstance(app.focused, Composer), "composer")


async def test_the_palette_reaches_actions_and_threads_by_title(
    engine: LocalEngine,
) -> None:
    (target,) = await _threads(engine, "Zebra migration")
    await _threads(engine, "Other")
    async with make_app(engine).run_test() as pilot:
        app = await ready(pilot)
        await pilot.press("ctrl+p")
        for key in "zebra":
            await pilot.press(key)
        await pilot.pause(0.3)
        await pilot.press("enter")
        await shown(pilot, target)
        await pilot.press("ctrl+p")
        for key in "show archived":
            await pilot.press("space" if key == " " else key)
        await pilot.pause(0.3)
        await pilot.press("enter")
        await wait_until(pilot, lambda: app.chat.archived_view, "archive view")


async def test_ctrl_b_hides_and_shows_the_sidebar(engine: LocalEngine) -> None:
    async with make_app(engine).run_test() as pilot:
        app = await ready(pilot)
        sidebar = app.chat.query_one("#sidebar")
        await pilot.press("ctrl+b")
        assert not sidebar.display
        assert isinstance(app.focused, Composer)
        await pilot.press("ctrl+b")
        assert sidebar.display


async def test_a_backend_that_cannot_open_is_explained_and_the_app_stays_up() -> None:
    async def broken() -> LocalEngine:
        raise StorageCorrupt("The database file is damaged: /tmp/x/tenex.db")

    app = TenexApp(broken)
    async with app.run_test() as pilot:
        await wait_until(
            pilot, lambda: app.chat.threads.empty_text != "Opening…", "failure"
        )
        await pilot.pause()
        welcome = app.chat.welcome
        assert welcome.display and welcome.state == "failed"
        assert "damaged" in welcome.plain
        assert app.is_running
        await pilot.press("ctrl+q")


async def test_the_palette_lists_every_action(engine: LocalEngine) -> None:
    await _threads(engine, "one")
    async with make_app(engine).run_test() as pilot:
        app = await ready(pilot)
        await wait_until(pilot, lambda: app.chat.thread is not None, "a thread shown")
        titles = {command.title for command in app.get_system_commands(app.screen)}
        for expected in (
            "New thread",
            "Search messages",
            "Filter threads",
            "Show archived threads",
            "Rename thread",
            "Pin or unpin thread",
            "Archive thread",
            "Delete thread",
            "Undo delete",
            "Stop reply",
            "Regenerate reply",
            "Continue reply",
            "Edit last message",
            "Copy message",
            "Copy code block",
            "Open a link",
            "Focus threads",
            "Focus messages",
            "Focus composer",
            "Toggle sidebar",
            "Keys",
            "Theme",
            "Quit",
        ):
            assert expected in titles, expected
