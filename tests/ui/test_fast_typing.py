"""Keys that arrive faster than the app handles them (a fast typist, a paste, tmux
`send-keys`), and the welcome panel of an empty workspace — the two bugs the lead saw in
tmux, reproduced by posting key events the way the terminal driver does: all at once,
without waiting for the app to catch up between them."""

from __future__ import annotations

from textual import events
from textual.pilot import Pilot

from tenex_tui.engine.engine import LocalEngine
from tenex_tui.ui.app import TenexApp
from tenex_tui.ui.screens.modals import NewThreadModal, RenameModal
from tenex_tui.ui.widgets.composer import Composer
from tenex_tui.ui.widgets.message_view import MessageView
from tenex_tui.ui.widgets.thread_list import ThreadList
from tests.support.scripted_llm import ScriptedLLM
from tests.ui.harness import make_app, ready, settle, shown, wait_until


def _burst(app: TenexApp, keys: str) -> None:
    """Post keys as one read from the terminal: `⏎` is Enter."""
    for char in keys:
        if char == "⏎":
            app.post_message(events.Key("enter", "\r"))
        elif char == " ":
            app.post_message(events.Key("space", " "))
        else:
            app.post_message(events.Key(char, char))


def _finished(app: TenexApp) -> list[MessageView]:
    return [view for view in app.chat.pane.views if isinstance(view, MessageView)]


async def _messages(engine: LocalEngine) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for thread in (await engine.list_threads()).items:
        page = await engine.list_messages(thread.id)
        found[thread.title] = [m.content for m in page.items]
    return found


async def test_enter_right_after_fast_typing_sends_all_of_it(
    engine: LocalEngine, llm: ScriptedLLM
) -> None:
    thread = await engine.create_thread(title="Fast")
    llm.enqueue("ok")
    async with make_app(engine).run_test() as pilot:
        app = await ready(pilot)
        app.chat.threads.select(thread.id)
        await pilot.press("enter")
        await shown(pilot, thread.id)
        await wait_until(pilot, lambda: isinstance(app.focused, Composer), "composer")
        # Enter is a priority binding: before the fix it ran ahead of the characters
        # still queued in the composer, saw an empty text and did nothing.
        _burst(app, "hello there⏎")
        await wait_until(pilot, lambda: len(_finished(app)) == 2, "the reply")
        await settle(pilot)
        assert (await _messages(engine))["Fast"] == ["hello there", "ok"]
        assert app.chat.composer.text == ""


async def test_ctrl_j_in_a_burst_lands_where_it_was_typed(engine: LocalEngine) -> None:
    thread = await engine.create_thread(title="Lines")
    async with make_app(engine).run_test() as pilot:
        app = await ready(pilot)
        app.chat.threads.select(thread.id)
        await pilot.press("enter")
        await wait_until(pilot, lambda: isinstance(app.focused, Composer), "composer")
        _burst(app, "one")
        app.post_message(events.Key("ctrl+j", "\n"))
        _burst(app, "two")
        await wait_until(pilot, lambda: app.chat.composer.text == "one\ntwo", "text")


async def test_a_message_typed_right_after_the_new_thread_dialog_goes_to_the_thread(
    engine: LocalEngine, llm: ScriptedLLM
) -> None:
    await engine.create_thread(title="Old")
    llm.enqueue("Welcome aboard.")
    async with make_app(engine).run_test() as pilot:
        app = await ready(pilot)
        await pilot.press("n")
        await wait_until(
            pilot, lambda: isinstance(app.screen, NewThreadModal), "dialog"
        )
        for key in "Plan":
            await pilot.press(key)
        await pilot.press("enter")
        # Typed before the thread exists: these used to land in the sidebar (where
        # letters are commands), and the Enter was lost.
        _burst(app, "draft the plan⏎")
        await wait_until(pilot, lambda: len(_finished(app)) == 2, "the reply")
        await settle(pilot)
        assert (await _messages(engine)) == {
            "Plan": ["draft the plan", "Welcome aboard."],
            "Old": [],
        }
        assert isinstance(app.focused, Composer)
        assert app.chat.thread is not None and app.chat.thread.title == "Plan"


async def test_keys_typed_after_enter_in_the_title_are_the_first_message(
    engine: LocalEngine, llm: ScriptedLLM
) -> None:
    llm.enqueue("On it.")
    async with make_app(engine).run_test() as pilot:
        app = await ready(pilot)
        await pilot.press("n")
        await wait_until(
            pilot, lambda: isinstance(app.screen, NewThreadModal), "dialog"
        )
        # One read from the terminal: the title, Enter, the message, Enter. The keys
        # after the first Enter reach the title box before the dialog closes.
        _burst(app, "Launch⏎write the post⏎")
        await wait_until(pilot, lambda: len(_finished(app)) == 2, "the reply")
        await settle(pilot)
        assert (await _messages(engine)) == {"Launch": ["write the post", "On it."]}
        assert app.is_running


async def test_a_second_enter_in_a_dialog_never_closes_the_screen_under_it(
    engine: LocalEngine,
) -> None:
    await engine.create_thread(title="Before")
    async with make_app(engine).run_test() as pilot:
        app = await ready(pilot)
        await pilot.press("r")
        await wait_until(pilot, lambda: isinstance(app.screen, RenameModal), "dialog")
        _burst(app, "X⏎⏎")
        await wait_until(
            pilot,
            lambda: app.chat.threads.rows[0].title == "X",  # typing replaced it
            "the rename",
        )
        await settle(pilot)
        assert app.is_running and app.screen is app.chat


async def test_a_cancelled_new_thread_dialog_gives_the_draft_back(
    engine: LocalEngine,
) -> None:
    thread = await engine.create_thread(title="Keep")
    await engine.update_thread(thread.id, draft="half a thought")
    async with make_app(engine).run_test() as pilot:
        app = await ready(pilot)
        await shown(pilot, thread.id)
        assert app.chat.composer.text == "half a thought"
        await pilot.press("n")
        await wait_until(
            pilot, lambda: isinstance(app.screen, NewThreadModal), "dialog"
        )
        await pilot.press("escape")
        await wait_until(pilot, lambda: app.screen is app.chat, "closed")
        await pilot.pause()
        assert app.chat.composer.text == "half a thought"
        assert isinstance(app.focused, ThreadList)
        assert [t.title for t in (await engine.list_threads()).items] == ["Keep"]


async def _welcome_ready(pilot: Pilot[None]) -> TenexApp:
    app = await ready(pilot)
    await wait_until(pilot, lambda: app.chat.welcome.state != "opening", "welcome")
    await settle(pilot)
    return app


async def test_an_empty_workspace_shows_how_to_start_and_the_model(
    engine: LocalEngine, llm: ScriptedLLM
) -> None:
    llm.enqueue("Hi!")
    async with make_app(engine).run_test() as pilot:
        app = await _welcome_ready(pilot)
        welcome = app.chat.welcome
        assert welcome.display and not app.chat.pane.display
        text = welcome.plain
        assert "Opening your workspace" not in text
        assert "Welcome to tenex" in text
        assert "a thread with a title, an agent or a system prompt" in text
        assert "scripted-1" in text and "ready" in text
        app.chat.composer.focus()
        await pilot.press("h", "i", "enter")
        await wait_until(pilot, lambda: len(_finished(app)) == 2, "the reply")
        assert not welcome.display and app.chat.pane.display


async def test_an_empty_workspace_without_a_model_says_so(
    engine_no_model: LocalEngine,
) -> None:
    async with make_app(engine_no_model).run_test() as pilot:
        app = await _welcome_ready(pilot)
        text = app.chat.welcome.plain
        assert "Welcome to tenex" in text and "none connected" in text


async def test_the_welcome_panel_gives_way_to_the_first_thread(
    engine: LocalEngine,
) -> None:
    thread = await engine.create_thread(title="Only")
    async with make_app(engine).run_test() as pilot:
        app = await ready(pilot)
        await shown(pilot, thread.id)
        assert not app.chat.welcome.display and app.chat.pane.display
