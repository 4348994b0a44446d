"""Pilot tests of chatting: send → stream → complete, stop, retry, continue, edit,
drafts, switching threads mid-stream (T24), older pages, copy, no model — on the real
engine with the scripted model."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from tenex_tui.config import UiSettings
from tenex_tui.core.errors import ModelUnavailable
from tenex_tui.engine.engine import LocalEngine
from tenex_tui.engine.llm import StreamBroken
from tenex_tui.ui.app import TenexApp
from tenex_tui.ui.screens.modals import LinksModal
from tenex_tui.ui.widgets import message_view
from tenex_tui.ui.widgets.composer import Composer
from tenex_tui.ui.widgets.message_pane import MessagePane
from tenex_tui.ui.widgets.message_view import MessageView, ReplyView, ToolCallBlock
from tenex_tui.ui.widgets.panels import NoModelPanel
from tests.support.scripted_llm import ScriptedLLM, ToolFragment
from tests.ui.harness import make_app, ready, settle, shown, wait_until


async def _type(pilot: object, text: str) -> None:
    for char in text:
        await pilot.press("space" if char == " " else char)  # type: ignore[attr-defined]


async def _open(pilot: object, app: TenexApp, thread_id: str) -> None:
    app.chat.threads.select(thread_id)
    await pilot.press("enter")  # type: ignore[attr-defined]
    await shown(pilot, thread_id)  # type: ignore[arg-type]
    await wait_until(pilot, lambda: isinstance(app.focused, Composer), "composer")  # type: ignore[arg-type]


def _finished(app: TenexApp) -> list[MessageView]:
    return [view for view in app.chat.pane.views if isinstance(view, MessageView)]


async def test_send_streams_the_reply_then_collapses_it_into_a_cheap_view(
    engine: LocalEngine, llm: ScriptedLLM
) -> None:
    thread = await engine.create_thread(title="Chat")
    reply = llm.enqueue("Hello", " there", ", **friend**.", hold_at=(2,))
    async with make_app(engine).run_test() as pilot:
        app = await ready(pilot)
        await _open(pilot, app, thread.id)
        await _type(pilot, "Hi model")
        await pilot.press("enter")
        await wait_until(pilot, lambda: reply.held(2).is_set(), "the reply to start")
        await wait_until(
            pilot, lambda: app.chat.pane.reply_view is not None, "live view"
        )
        live = app.chat.pane.reply_view
        assert live is not None
        await wait_until(
            pilot, lambda: live.shown_text == "Hello there", "streamed text"
        )
        assert app.chat.composer.locked and app.chat.composer.text == ""
        row = app.chat.threads.row_for(thread.id)
        assert row is not None and row.status == "streaming"
        reply.release(2)
        await wait_until(pilot, lambda: app.chat.pane.reply_view is None, "collapse")
        await settle(pilot)
        stored = (await engine.list_messages(thread.id)).items
        assert [m.role for m in stored] == ["user", "assistant"]
        assert stored[1].content == "Hello there, **friend**."
        views = _finished(app)
        assert [v.message.id for v in views] == [m.id for m in stored]
        assert views[1].message.content == stored[1].content
        assert not app.chat.composer.locked
        assert row.status == "complete" and not row.unread


async def test_streamed_text_is_written_in_batches_not_per_token(
    engine: LocalEngine, llm: ScriptedLLM
) -> None:
    thread = await engine.create_thread(title="Batch")
    chunks = [f"word{i} " for i in range(300)]
    reply = llm.enqueue(*chunks, hold_at=(299,))
    async with make_app(engine).run_test() as pilot:
        app = await ready(pilot)
        await _open(pilot, app, thread.id)
        await _type(pilot, "go")
        await pilot.press("enter")
        await wait_until(pilot, lambda: reply.held(299).is_set(), "most of the reply")
        live = app.chat.pane.reply_view
        assert live is not None
        await wait_until(
            pilot, lambda: live.shown_text == "".join(chunks[:299]), "text"
        )
        assert live.state.deltas == 299
        assert live.writes < 60  # ~100 ms batches, not one write per token
        reply.release(299)
        await wait_until(pilot, lambda: app.chat.pane.reply_view is None, "done")


async def test_the_first_token_is_not_held_back_by_the_batching(
    engine: LocalEngine, llm: ScriptedLLM, monkeypatch: pytest.MonkeyPatch
) -> None:
    # With a batch interval far beyond the test's timeout, only the rule "the first
    # text goes out at once" can put the first token on screen.
    monkeypatch.setattr(message_view, "FLUSH_INTERVAL", 60.0)
    thread = await engine.create_thread(title="First token")
    reply = llm.enqueue("Hello", " world", hold_at=(0, 1))
    async with make_app(engine).run_test() as pilot:
        app = await ready(pilot)
        await _open(pilot, app, thread.id)
        await _type(pilot, "hi")
        await pilot.press("enter")
        await wait_until(pilot, lambda: reply.held(0).is_set(), "the request")
        await wait_until(
            pilot, lambda: app.chat.pane.reply_view is not None, "the live view"
        )
        live = app.chat.pane.reply_view
        assert live is not None and live.writes == 0
        reply.release(0)  # the first token arrives after the view mounted
        await wait_until(pilot, lambda: live.shown_text == "Hello", "first token")
        reply.release(1)
        await wait_until(pilot, lambda: app.chat.pane.reply_view is None, "done")


async def test_escape_stops_the_reply_and_offers_continue(
    engine: LocalEngine, llm: ScriptedLLM
) -> None:
    thread = await engine.create_thread(title="Stop me")
    reply = llm.enqueue("Partial ", "answer", " never shown", hold_at=(2,))
    async with make_app(engine).run_test() as pilot:
        app = await ready(pilot)
        await _open(pilot, app, thread.id)
        await _type(pilot, "long question")
        await pilot.press("enter")
        await wait_until(pilot, lambda: reply.held(2).is_set(), "held")
        await pilot.press("escape")
        await wait_until(pilot, lambda: app.chat.pane.reply_view is None, "stopped")
        await settle(pilot)
        stored = (await engine.list_messages(thread.id)).items[-1]
        assert stored.status == "stopped" and stored.content == "Partial answer"
        view = _finished(app)[-1]
        assert view.message.status == "stopped" and view.last_reply
        assert not app.chat.composer.locked
        assert isinstance(app.focused, Composer)  # Esc stopped; it did not leave


async def test_a_failed_reply_shows_the_error_and_r_retries(
    engine: LocalEngine, llm: ScriptedLLM
) -> None:
    thread = await engine.create_thread(title="Flaky")
    llm.enqueue(error=ModelUnavailable("connection refused"))
    async with make_app(engine).run_test() as pilot:
        app = await ready(pilot)
        await _open(pilot, app, thread.id)
        await _type(pilot, "question")
        await pilot.press("enter")
        await wait_until(
            pilot,
            lambda: (
                bool(_finished(app)) and _finished(app)[-1].message.status == "error"
            ),
            "the error",
        )
        row = app.chat.threads.row_for(thread.id)
        assert row is not None and row.status == "error"
        llm.enqueue("Second time lucky.")
        app.chat.pane.focus()
        await pilot.pause()
        await pilot.press("R")
        await wait_until(
            pilot,
            lambda: _finished(app)[-1].message.content == "Second time lucky.",
            "the retried reply",
        )
        stored = (await engine.list_messages(thread.id)).items
        assert [m.role for m in stored] == ["user", "assistant"]
        assert stored[-1].status == "complete"
        assert len(_finished(app)) == 2


async def test_continue_appends_to_an_interrupted_reply(
    engine: LocalEngine, llm: ScriptedLLM
) -> None:
    thread = await engine.create_thread(title="Cut")
    llm.enqueue("First half", error=StreamBroken("dropped"), error_at=1)
    async with make_app(engine).run_test() as pilot:
        app = await ready(pilot)
        await _open(pilot, app, thread.id)
        await _type(pilot, "tell me")
        await pilot.press("enter")
        await wait_until(
            pilot,
            lambda: (
                bool(_finished(app))
                and _finished(app)[-1].message.status == "interrupted"
            ),
            "interrupted",
        )
        llm.enqueue(" and second half.")
        app.chat.pane.focus()
        await pilot.pause()
        await pilot.press("c")
        await wait_until(
            pilot,
            lambda: _finished(app)[-1].message.content == "First half and second half.",
            "continued",
        )
        assert _finished(app)[-1].message.status == "complete"


async def test_e_edits_the_last_message_and_resends_it(
    engine: LocalEngine, llm: ScriptedLLM
) -> None:
    thread = await engine.create_thread(title="Edit")
    llm.enqueue("Answer to typo")
    async with make_app(engine).run_test() as pilot:
        app = await ready(pilot)
        await _open(pilot, app, thread.id)
        await _type(pilot, "helo")
        await pilot.press("enter")
        await wait_until(pilot, lambda: len(_finished(app)) == 2, "first reply")
        await _type(pilot, "draft kept")
        app.chat.pane.focus()
        await pilot.pause()
        await pilot.press("e")
        composer = app.chat.composer
        assert composer.editing is not None and composer.text == "helo"
        assert isinstance(app.focused, Composer)
        llm.enqueue("Answer to hello")
        await pilot.press("end", "backspace", "l", "o")
        await pilot.press("enter")
        await wait_until(
            pilot,
            lambda: _finished(app)[-1].message.content == "Answer to hello",
            "the new reply",
        )
        stored = (await engine.list_messages(thread.id)).items
        assert [m.content for m in stored] == ["hello", "Answer to hello"]
        assert composer.editing is None and composer.text == "draft kept"


async def test_a_draft_survives_switching_threads_and_is_saved(
    engine: LocalEngine,
) -> None:
    first = await engine.create_thread(title="first")
    second = await engine.create_thread(title="second")
    async with make_app(engine).run_test() as pilot:
        app = await ready(pilot)
        await _open(pilot, app, first.id)
        await _type(pilot, "half a thought")
        await pilot.press("escape")
        await _open(pilot, app, second.id)
        assert app.chat.composer.text == ""
        await settle(pilot)
        assert (await engine.get_thread(first.id)).draft == "half a thought"
        await pilot.press("escape")
        await _open(pilot, app, first.id)
        assert app.chat.composer.text == "half a thought"


async def test_drafts_are_saved_on_quit_and_restored_next_time(
    engine: LocalEngine,
) -> None:
    thread = await engine.create_thread(title="later")
    app = make_app(engine)
    async with app.run_test() as pilot:
        await ready(pilot)
        await _open(pilot, app, thread.id)
        await _type(pilot, "unsent words")
        await pilot.press("ctrl+q")
    assert (await engine.get_thread(thread.id)).draft == "unsent words"
    async with make_app(engine).run_test() as pilot:
        again = await ready(pilot)
        await _open(pilot, again, thread.id)
        assert again.chat.composer.text == "unsent words"


async def test_a_failed_send_gives_the_text_back(engine_no_model: LocalEngine) -> None:
    thread = await engine_no_model.create_thread(title="offline")
    async with make_app(engine_no_model).run_test() as pilot:
        app = await ready(pilot)
        await _open(pilot, app, thread.id)
        await _type(pilot, "precious prompt")
        await pilot.press("enter")
        await settle(pilot)
        assert app.chat.composer.text == "precious prompt"
        assert not app.chat.composer.locked
        assert (await engine_no_model.list_messages(thread.id)).items == []


async def test_no_model_panel_explains_how_to_connect_one(
    engine_no_model: LocalEngine,
) -> None:
    await engine_no_model.create_thread(title="triage still works")
    async with make_app(engine_no_model).run_test() as pilot:
        app = await ready(pilot)
        panel = app.chat.query_one(NoModelPanel)
        await wait_until(pilot, lambda: panel.display, "the panel")
        await pilot.press("p")  # triage works without a model
        await settle(pilot)
        assert app.chat.threads.rows[0].pinned


async def test_switching_threads_mid_stream_keeps_the_stream(
    engine: LocalEngine, llm: ScriptedLLM
) -> None:
    """T24: leave while a reply streams, come back: everything that arrived is there,
    and the final text on screen equals the text stored."""
    streaming = await engine.create_thread(title="streaming")
    other = await engine.create_thread(title="other")
    chunks = [f"part{i} " for i in range(20)]
    reply = llm.enqueue(*chunks, hold_at=(5, 15))
    async with make_app(engine).run_test() as pilot:
        app = await ready(pilot)
        await _open(pilot, app, streaming.id)
        await _type(pilot, "stream please")
        await pilot.press("enter")
        await wait_until(pilot, lambda: reply.held(5).is_set(), "first hold")
        # Esc would stop the reply: go back to the sidebar with Shift+Tab instead.
        await pilot.press("shift+tab", "shift+tab")
        await _open(pilot, app, other.id)
        reply.release(5)
        await wait_until(pilot, lambda: reply.held(15).is_set(), "second hold")
        assert app.chat.replies.get(streaming.id) is not None
        await pilot.press("escape")  # nothing streams here: back to the sidebar
        await _open(pilot, app, streaming.id)
        live = app.chat.pane.reply_view
        assert live is not None
        await wait_until(
            pilot, lambda: live.shown_text == "".join(chunks[:15]), "progress so far"
        )
        assert app.chat.composer.locked
        reply.release(15)
        await wait_until(pilot, lambda: app.chat.pane.reply_view is None, "finished")
        await settle(pilot)
        stored = (await engine.list_messages(streaming.id)).items[-1]
        assert stored.content == "".join(chunks)
        assert _finished(app)[-1].message.content == stored.content


async def test_a_reply_finishing_in_another_thread_marks_it_unread(
    engine: LocalEngine, llm: ScriptedLLM
) -> None:
    streaming = await engine.create_thread(title="streaming")
    other = await engine.create_thread(title="other")
    reply = llm.enqueue("a", "b", hold_at=(1,))
    async with make_app(engine).run_test() as pilot:
        app = await ready(pilot)
        await _open(pilot, app, streaming.id)
        await _type(pilot, "x")
        await pilot.press("enter")
        await wait_until(pilot, lambda: reply.held(1).is_set(), "held")
        await pilot.press("shift+tab", "shift+tab")
        await _open(pilot, app, other.id)
        reply.release(1)
        row = app.chat.threads.row_for(streaming.id)
        assert row is not None
        await wait_until(pilot, lambda: row.status == "complete", "complete")
        assert row.unread


async def test_tool_calls_appear_as_blocks_while_streaming(
    engine: LocalEngine, llm: ScriptedLLM
) -> None:
    thread = await engine.create_thread(title="tools")
    reply = llm.enqueue(
        ToolFragment(0, "call_1", "search_knowledge", '{"query": "pri'),
        ToolFragment(0, arguments='cing"}'),
        hold_at=(2,),
    )
    llm.enqueue("Nothing about pricing in the knowledge base.")  # after the tool ran
    async with make_app(engine).run_test() as pilot:
        app = await ready(pilot)
        await _open(pilot, app, thread.id)
        await _type(pilot, "look it up")
        await pilot.press("enter")
        await wait_until(pilot, lambda: reply.held(2).is_set(), "held")
        await wait_until(
            pilot, lambda: bool(app.chat.pane.query(ToolCallBlock)), "a tool block"
        )
        block = app.chat.pane.query_one(ToolCallBlock)
        assert block.call.name == "search_knowledge"
        reply.release(2)
        await wait_until(pilot, lambda: app.chat.pane.reply_view is None, "finished")
        view = _finished(app)[-1]
        assert [c.name for c in view.message.tool_calls] == ["search_knowledge"]
        assert view.message.tool_calls[0].arguments == {"query": "pricing"}
        assert view.message.tool_calls[0].status == "completed"
        assert view.message.content == "Nothing about pricing in the knowledge base."
        app.chat.pane.focus()
        await pilot.pause()
        await pilot.press("t")
        assert view.tools_expanded


async def test_older_messages_load_when_scrolling_up(
    engine: LocalEngine, llm: ScriptedLLM
) -> None:
    thread = await engine.create_thread(title="long")
    for index in range(40):
        llm.enqueue(f"reply {index}")
        async for _ in engine.send_message(thread.id, f"message {index}"):
            pass
    async with make_app(engine).run_test() as pilot:
        app = await ready(pilot)
        await shown(pilot, thread.id)
        pane = app.chat.pane
        assert len(pane.views) == 12 and pane.has_older  # only what fills the screen
        pane.focus()
        await pilot.pause()
        for _ in range(10):  # each g at the top mounts the next older batch
            if not pane.has_older:
                break
            count = len(pane.views)
            await pilot.press("g")
            await wait_until(
                pilot, lambda c=count: len(pane.views) > c, "an older batch"
            )
        assert len(pane.views) == 80 and not pane.has_older
        first = (await engine.list_messages(thread.id, limit=1)).items[0]
        assert pane.views[0].message_id == first.id


async def test_y_copies_the_selected_message_without_control_characters(
    engine: LocalEngine, llm: ScriptedLLM
) -> None:
    thread = await engine.create_thread(title="copy")
    llm.enqueue("safe \x1b]52;c;ZXZpbA==\x07text\r\nnext line")
    async for _ in engine.send_message(thread.id, "q"):
        pass
    async with make_app(engine).run_test() as pilot:
        app = await ready(pilot)
        await shown(pilot, thread.id)
        app.chat.pane.focus()
        await pilot.pause()
        await pilot.press("y")
        assert app.clipboard == "safe ]52;c;ZXZpbA==text\nnext line"


@pytest.mark.parametrize("key", ["enter"])
async def test_sending_into_an_empty_workspace_creates_a_thread(
    engine: LocalEngine, llm: ScriptedLLM, key: str
) -> None:
    llm.enqueue("Welcome!")
    async with make_app(engine).run_test() as pilot:
        app = await ready(pilot)
        app.chat.composer.focus()
        await _type(pilot, "First idea of the day")
        await pilot.press(key)
        await wait_until(pilot, lambda: len(_finished(app)) == 2, "the reply")
        page = await engine.list_threads()
        assert [t.title for t in page.items] == ["First idea of the day"]
        assert app.chat.threads.rows[0].id == page.items[0].id


async def test_message_pane_selection_moves_with_j_and_k(
    engine: LocalEngine, llm: ScriptedLLM
) -> None:
    thread = await engine.create_thread(title="nav")
    for index in range(3):
        llm.enqueue(f"r{index}")
        async for _ in engine.send_message(thread.id, f"m{index}"):
            pass
    async with make_app(engine).run_test() as pilot:
        app = await ready(pilot)
        await shown(pilot, thread.id)
        pane = app.chat.pane
        pane.focus()
        await pilot.pause()
        assert isinstance(app.focused, MessagePane)
        assert pane.selected == 5
        await pilot.press("k", "k")
        assert pane.selected == 3
        assert pane.views[3].has_class("-selected")
        await pilot.press("j")
        assert pane.selected == 4
        assert isinstance(pane.views[4], MessageView | ReplyView)


async def test_copy_code_and_open_links_act_on_the_selected_message(
    engine: LocalEngine, llm: ScriptedLLM
) -> None:
    thread = await engine.create_thread(title="code")
    llm.enqueue(
        "Run this:\n\n```sh\nls -la\x1b[2J\n```\n\nDocs: [here](https://example.com/d)"
    )
    async for _ in engine.send_message(thread.id, "q"):
        pass
    async with make_app(engine).run_test() as pilot:
        app = await ready(pilot)
        await shown(pilot, thread.id)
        app.chat.pane.focus()
        await pilot.pause()
        await pilot.press("Y")
        assert app.clipboard == "ls -la[2J"
        await pilot.press("o")
        await wait_until(pilot, lambda: isinstance(app.screen, LinksModal), "links")
        await pilot.press("escape")
        assert not isinstance(app.screen, LinksModal)


async def test_a_reply_streamed_by_someone_else_is_followed_live(
    engine: LocalEngine, llm: ScriptedLLM
) -> None:
    """A reply already streaming when the thread opens (another front end, the CLI)
    is shown live through `stream_events`, then collapsed like any other."""
    thread = await engine.create_thread(title="elsewhere")
    reply = llm.enqueue("from ", "another ", "client", hold_at=(2,))
    events = engine.send_message(thread.id, "started in the CLI")
    first = await anext(events)
    assert first.type == "message.started"
    await reply.held(2).wait()
    async with make_app(engine).run_test() as pilot:
        app = await ready(pilot)
        await shown(pilot, thread.id)
        await wait_until(
            pilot, lambda: app.chat.pane.reply_view is not None, "live view"
        )
        live = app.chat.pane.reply_view
        assert live is not None
        await wait_until(
            pilot, lambda: live.shown_text == "from another ", "replayed text"
        )
        reply.release(2)
        await wait_until(pilot, lambda: app.chat.pane.reply_view is None, "finished")
        assert _finished(app)[-1].message.content == "from another client"
    await events.aclose()


async def test_enter_twice_sends_once(engine: LocalEngine, llm: ScriptedLLM) -> None:
    """T25 (a): a double Enter cannot send the message twice."""
    thread = await engine.create_thread(title="double")
    llm.enqueue("only once")
    async with make_app(engine).run_test() as pilot:
        app = await ready(pilot)
        await _open(pilot, app, thread.id)
        await _type(pilot, "hello")
        await pilot.press("enter", "enter")
        await wait_until(pilot, lambda: len(_finished(app)) == 2, "the reply")
        await settle(pilot)
        stored = (await engine.list_messages(thread.id)).items
        assert [m.role for m in stored] == ["user", "assistant"]
        assert len(llm.calls) == 1


async def test_settings_choose_the_theme_and_hide_the_sidebar(
    engine: LocalEngine,
) -> None:
    ui = UiSettings(theme="nord", show_sidebar=False)
    async with make_app(engine, ui=ui).run_test() as pilot:
        app = await ready(pilot)
        assert app.theme == "nord"
        assert not app.chat.query_one("#sidebar").display
        assert isinstance(app.focused, Composer)


def _hold_next_page(
    engine: LocalEngine, monkeypatch: pytest.MonkeyPatch
) -> tuple[asyncio.Event, asyncio.Event]:
    """Once `armed` is set, the next page of messages is read, then held until `gate`
    is set: it lands stale (`armed` clears when the read is done)."""
    gate = asyncio.Event()
    armed = asyncio.Event()
    list_messages = engine.list_messages

    async def stale_list(*args: Any, **kwargs: Any) -> Any:
        page = await list_messages(*args, **kwargs)
        if armed.is_set():
            armed.clear()
            await gate.wait()
        return page

    monkeypatch.setattr(engine, "list_messages", stale_list)
    return armed, gate


async def test_a_thread_load_that_lands_after_a_send_keeps_the_sent_message(
    engine: LocalEngine, llm: ScriptedLLM, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A preview load of the thread fetched its (then empty) page before the send
    # stored the user message, and lands after the send showed it: the pane must
    # still show the user's message above the reply, not just the reply.
    thread = await engine.create_thread(title="Race")
    reply = llm.enqueue("Hi!", hold_at=(0,))
    armed, gate = _hold_next_page(engine, monkeypatch)
    async with make_app(engine).run_test() as pilot:
        app = await ready(pilot)
        await _open(pilot, app, thread.id)
        armed.set()
        app.chat.show_thread(thread.id, focus_composer=True)  # a reload, held
        await wait_until(pilot, lambda: not armed.is_set(), "the stale fetch")
        await _type(pilot, "hi")
        await pilot.press("enter")
        await wait_until(pilot, lambda: reply.held(0).is_set(), "the reply")
        await wait_until(pilot, lambda: len(_finished(app)) == 1, "the user message")
        gate.set()  # the stale page (no messages) lands now
        await wait_until(
            pilot,
            lambda: (
                not any(w.group == "thread" and not w.is_finished for w in app.workers)
            ),
            "the stale load to land",
        )
        await pilot.pause()
        reply.release(0)
        await wait_until(pilot, lambda: app.chat.pane.reply_view is None, "done")
        await settle(pilot)
        stored = (await engine.list_messages(thread.id)).items
        assert [m.role for m in stored] == ["user", "assistant"]
        assert [v.message.id for v in _finished(app)] == [m.id for m in stored]


async def test_a_thread_load_that_lands_after_a_whole_reply_is_fetched_again(
    engine: LocalEngine, llm: ScriptedLLM, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The same stale page, landing after the reply finished: shown as is, the pane
    # would lose both the message and its reply.
    thread = await engine.create_thread(title="Race")
    llm.enqueue("Hi!")
    armed, gate = _hold_next_page(engine, monkeypatch)
    async with make_app(engine).run_test() as pilot:
        app = await ready(pilot)
        await _open(pilot, app, thread.id)
        armed.set()
        app.chat.show_thread(thread.id, focus_composer=True)  # a reload, held
        await wait_until(pilot, lambda: not armed.is_set(), "the stale fetch")
        await _type(pilot, "hi")
        await pilot.press("enter")
        await wait_until(pilot, lambda: len(_finished(app)) == 2, "the reply")
        gate.set()  # the stale page (no messages) lands now
        await settle(pilot)
        stored = (await engine.list_messages(thread.id)).items
        assert [m.role for m in stored] == ["user", "assistant"]
        assert [v.message.id for v in _finished(app)] == [m.id for m in stored]


async def test_sending_into_an_empty_workspace_does_not_reload_the_new_thread(
    engine: LocalEngine, llm: ScriptedLLM, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The new thread's row is highlighted as it appears; it is already the pane's
    # thread, so no preview fetches its page in the middle of the send.
    llm.enqueue("Hi!")
    calls: list[str] = []
    list_messages = engine.list_messages

    async def counted(thread_id: str, *args: Any, **kwargs: Any) -> Any:
        calls.append(thread_id)
        return await list_messages(thread_id, *args, **kwargs)

    monkeypatch.setattr(engine, "list_messages", counted)
    async with make_app(engine).run_test() as pilot:
        app = await ready(pilot)
        app.chat.composer.focus()
        await pilot.press("h", "i", "enter")
        await wait_until(pilot, lambda: len(_finished(app)) == 2, "the reply")
        assert app.chat._preview_timer is None  # no reload was even scheduled
        await settle(pilot)
        assert calls == []
        assert len(_finished(app)) == 2
