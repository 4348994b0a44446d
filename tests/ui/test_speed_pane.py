"""The message pane's speed work keeps its behaviour: a growing reply costs one layout
pass per write, a reply that ends far ahead of the screen is shown by the swap to the
stored message, and a long page is drawn newest first."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

from textual.app import App, ComposeResult
from textual.containers import Vertical
from textual.geometry import Size
from textual.widgets import Static

import tenex_tui.ui
from tenex_tui.core.events import StreamEvent
from tenex_tui.core.models import Message
from tenex_tui.ui.replies import ReplyState
from tenex_tui.ui.widgets.live_markdown import arrange_once, live_markdown_class
from tenex_tui.ui.widgets.message_pane import MessagePane
from tenex_tui.ui.widgets.message_view import CATCH_UP_CHARS, MessageView
from tests.ui.harness import NOW, wait_until

CSS = Path(tenex_tui.ui.__file__).parent / "styles" / "app.tcss"


class PaneHost(App[None]):
    """A message pane with the app's stylesheet."""

    CSS_PATH = CSS

    def __init__(self) -> None:
        super().__init__()
        self.pane = MessagePane(now=lambda: NOW)

    def compose(self) -> ComposeResult:
        yield self.pane


def _message(index: int, content: str, **fields: Any) -> Message:
    data: dict[str, Any] = {
        "id": f"msg_{index:04d}",
        "thread_id": "thr_1",
        "role": "assistant" if index % 2 else "user",
        "content": content,
        "created_at": NOW - timedelta(minutes=100 - index),
    }
    data.update(fields)
    return Message(**data)


def _event(kind: str, **fields: Any) -> StreamEvent:
    return StreamEvent(
        id=f"evt_{kind}", type=kind, message_id="msg_9999", thread_id="thr_1", **fields
    )


def _started(state: ReplyState) -> None:
    started = _message(9999, "", role="assistant", status="streaming")
    state.apply(_event("message.started", message=started))


async def test_a_reply_growing_by_lines_is_laid_out_once_per_write() -> None:
    app = PaneHost()
    async with app.run_test(size=(80, 24)) as pilot:
        pane = app.pane
        # Taller than the screen: the pane scrolls (and has its scroll bar) already, as
        # in a real thread; the write that first overflows a pane lays it out again.
        tall = "\n\n".join(f"paragraph {i}" for i in range(30))
        await pane.show_thread("thr_1", [_message(1, tall)], has_older=False)
        state = ReplyState(thread_id="thr_1")
        _started(state)
        view = await pane.start_reply(state)
        await pilot.pause()
        assert pane.max_scroll_y > 0
        markdown = view.query_one(".reply-body")
        screen = app.screen
        layouts = 0
        original = screen._refresh_layout

        def counting(*args: Any, **kwargs: Any) -> None:
            nonlocal layouts
            layouts += 1
            original(*args, **kwargs)

        screen._refresh_layout = counting  # type: ignore[method-assign]
        for write in range(1, 6):
            before = layouts
            line = f"line {write} " + "word " * 30 + "\n\n"
            state.apply(_event("message.delta", delta=line))
            await view.flush()
            await wait_until(
                pilot,
                lambda w=write: f"line {w} " in markdown.source,  # type: ignore[attr-defined]
                "the write in the Markdown widget",
            )
            await pilot.pause()
            await pilot.pause()
            # Textual's default is two passes (the second for the new virtual sizes).
            assert layouts - before == 1
        assert pane.max_scroll_y > 0 and pane.scroll_y == pane.max_scroll_y


async def test_the_live_markdown_and_reply_view_arrange_once_per_pass() -> None:
    app = PaneHost()
    async with app.run_test(size=(80, 24)) as pilot:
        state = ReplyState(thread_id="thr_1")
        _started(state)
        view = await app.pane.start_reply(state)
        await pilot.pause()
        markdown = view.query_one(".reply-body")
        assert isinstance(markdown, live_markdown_class())
        for widget in (view, markdown):
            # Every child is `height: auto`: one canonical height serves both calls.
            assert arrange_once(widget, Size(70, 30), False) == Size(70, 0)
            assert arrange_once(widget, Size(70, 30), True) == Size(70, 30)
        box = Vertical(Static("a"), Static("b"))
        await app.mount(box)
        box.children[0].styles.height = "1fr"
        assert arrange_once(box, Size(70, 30), False) == Size(70, 30)


async def test_a_reply_that_ends_far_ahead_of_the_screen_is_shown_by_the_swap() -> None:
    app = PaneHost()
    async with app.run_test(size=(80, 24)) as pilot:
        pane = app.pane
        await pane.show_thread("thr_1", [_message(1, "question")], has_older=False)
        state = ReplyState(thread_id="thr_1")
        _started(state)
        view = await pane.start_reply(state)
        await pilot.pause()
        writes = view.writes
        text = "FIRST " + "paragraph text\n\n" * (CATCH_UP_CHARS // 10) + "LAST"
        state.apply(_event("message.delta", delta=text))
        final = _message(9999, text, role="assistant", status="complete")
        state.apply(_event("message.completed", message=final, status="complete"))
        await view.flush()
        assert view.skipped_tail and view.writes == writes  # nothing mounted for it
        await pane.finish_reply(state, final)
        await pilot.pause()
        last = pane.views[-1]
        assert isinstance(last, MessageView) and last.message.content.endswith("LAST")
        assert pane.reply_view is None


async def test_a_short_tail_still_paints_in_the_live_view_before_the_swap() -> None:
    app = PaneHost()
    async with app.run_test(size=(80, 24)) as pilot:
        pane = app.pane
        state = ReplyState(thread_id="thr_1")
        _started(state)
        view = await pane.start_reply(state)
        await pilot.pause()
        state.apply(_event("message.delta", delta="short reply"))
        final = _message(9999, "short reply", role="assistant")
        state.apply(_event("message.completed", message=final, status="complete"))
        await view.flush()
        assert not view.skipped_tail and view.shown_text == "short reply"


async def test_a_long_page_is_drawn_newest_first_then_completed() -> None:
    app = PaneHost()
    async with app.run_test(size=(80, 20)) as pilot:
        pane = app.pane
        messages = [_message(i, f"message {i}\n" + "text " * 120) for i in range(12)]
        await pane.show_thread("thr_1", messages, has_older=True)
        first = len(pane.views)
        assert 0 < first < 12  # only what fills the first frames
        assert pane.views[-1].message_id == "msg_0011"
        assert pane.selected == first - 1
        await wait_until(pilot, lambda: len(pane.views) == 12, "the rest of the page")
        assert [view.message_id for view in pane.views] == [m.id for m in messages]
        assert pane.selected == 11  # still the newest message
        assert pane.scroll_y == pane.max_scroll_y  # still at the bottom


async def test_a_search_hit_page_is_drawn_whole() -> None:
    app = PaneHost()
    async with app.run_test(size=(80, 20)) as pilot:
        pane = app.pane
        messages = [_message(i, "text " * 120) for i in range(12)]
        await pane.show_thread(
            "thr_1", messages, has_older=False, select=messages[2].id
        )
        await pilot.pause()
        assert len(pane.views) == 12
        assert pane.selected == 2
        assert pane.views[2].has_class("-found")


async def test_switching_threads_drops_the_rest_of_the_previous_page() -> None:
    app = PaneHost()
    async with app.run_test(size=(80, 20)) as pilot:
        pane = app.pane
        long_page = [_message(i, "text " * 120) for i in range(12)]
        await pane.show_thread("thr_1", long_page, has_older=False)
        other = [_message(50, "other thread", thread_id="thr_2")]
        await pane.show_thread("thr_2", other, has_older=False)
        await pilot.pause()
        await pilot.pause()
        assert [view.message_id for view in pane.views] == ["msg_0050"]
