"""Widgets in isolation: each mounted alone in a host app that loads the real `.tcss`."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

from rich.segment import Segment
from textual.app import App, ComposeResult
from textual.widget import Widget

import tenex_tui.ui
from tenex_tui.core.models import Message, Page, Thread, ToolCall
from tenex_tui.ui.messages import OpenLinkRequested
from tenex_tui.ui.widgets.composer import Composer
from tenex_tui.ui.widgets.message_view import MessageView
from tenex_tui.ui.widgets.thread_list import ThreadList
from tests.ui.harness import NOW, wait_until

CSS = Path(tenex_tui.ui.__file__).parent / "styles" / "app.tcss"


class Host(App[None]):
    """Mounts one widget with the app's real stylesheet and records messages."""

    CSS_PATH = CSS

    def __init__(self, widget: Widget) -> None:
        super().__init__()
        self.widget = widget
        self.links: list[str] = []

    def compose(self) -> ComposeResult:
        yield self.widget

    def on_open_link_requested(self, event: OpenLinkRequested) -> None:
        self.links.append(event.url)

    def action_open_link(self, url: str) -> None:
        self.links.append(url)


def _thread(index: int, **fields: Any) -> Thread:
    when = NOW - timedelta(minutes=index * 7)
    data: dict[str, Any] = {
        "id": f"thr_{index:04d}",
        "workspace_id": "ws",
        "user_id": "u",
        "title": f"Thread {index}",
        "created_at": when,
        "updated_at": when,
        "last_message_at": when,
    }
    data.update(fields)
    return Thread(**data)


class PagedThreads:
    """Serves a list of threads page by page, counting the pages asked for."""

    def __init__(self, threads: list[Thread], page_size: int = 50) -> None:
        self.threads = threads
        self.page_size = page_size
        self.calls = 0

    async def __call__(self, cursor: str | None) -> Page[Thread]:
        self.calls += 1
        start = int(cursor or 0)
        end = start + self.page_size
        next_cursor = str(end) if end < len(self.threads) else None
        return Page[Thread](
            items=self.threads[start:end],
            next_cursor=next_cursor,
            total=len(self.threads),
        )


def _line_text(widget: Widget, y: int) -> str:
    strip = widget.render_line(y)  # type: ignore[attr-defined]
    return "".join(segment.text for segment in strip)


def _spans(widget: Widget, y: int) -> list[Segment]:
    return list(widget.render_line(y))  # type: ignore[attr-defined]


async def test_thread_list_loads_a_page_then_more_near_the_end() -> None:
    source = PagedThreads([_thread(i) for i in range(500)], page_size=100)
    threads = ThreadList(now=lambda: NOW)
    app = Host(threads)
    async with app.run_test(size=(40, 20)) as pilot:
        threads.load(source)
        await wait_until(pilot, lambda: len(threads.rows) >= 100, "first page")
        await pilot.pause()
        assert source.calls == 1 and len(threads.rows) == 100
        assert threads.row_count == 500  # the total sizes the scroll bar
        threads.focus()
        await pilot.press("pagedown", "pagedown")
        await pilot.pause()
        assert source.calls == 1  # still far from the loaded end
        await pilot.press("pagedown", "pagedown")  # within PREFETCH_ROWS of it
        await wait_until(pilot, lambda: len(threads.rows) == 200, "second page")
        assert source.calls == 2


async def test_thread_list_end_walks_every_page_and_lands_on_the_last() -> None:
    source = PagedThreads([_thread(i) for i in range(500)], page_size=100)
    threads = ThreadList(now=lambda: NOW)
    async with Host(threads).run_test(size=(40, 20)) as pilot:
        threads.load(source)
        await wait_until(pilot, lambda: bool(threads.rows), "first page")
        threads.focus()
        await pilot.press("end")
        assert threads.cursor == 499  # at once, on a placeholder while pages arrive
        await wait_until(pilot, lambda: threads.fully_loaded, "all pages")
        assert threads.highlighted_id == "thr_0499"
        await pilot.press("home")
        assert threads.highlighted_id == "thr_0000"


async def test_thread_rows_show_markers_titles_and_times_as_plain_text() -> None:
    items = [
        _thread(0, title="[@click=app.quit]Q3 plan[/]", pinned=True),
        _thread(1, title="unread one", unread=True),
        _thread(2, title="streaming", last_status="streaming"),
        _thread(3, title="failed", last_status="error"),
        _thread(4, title="cut", last_status="interrupted"),
        _thread(5, title="evil \x1b]0;pwned\x07 title"),
        _thread(6, title=""),
    ]
    threads = ThreadList(now=lambda: NOW)
    async with Host(threads).run_test(size=(44, 12)) as pilot:
        threads.load(PagedThreads(items))
        await wait_until(pilot, lambda: len(threads.rows) == 7, "rows")
        await pilot.pause()
        lines = [_line_text(threads, y) for y in range(7)]
        assert "⚑" in lines[0] and "[@click=app.quit]Q3 plan[/]" in lines[0]
        assert lines[0].rstrip().endswith("now")
        assert "●" in lines[1] and "7m" in lines[1]
        assert "◐" in lines[2]
        assert "✗" in lines[3]
        assert "!" in lines[4]
        assert "\x1b" not in lines[5] and "␛]0;pwned␇" in lines[5]
        assert "New thread" in lines[6]
        for y in range(7):
            for segment in _spans(threads, y):
                assert segment.style is None or "@click" not in segment.style.meta
                assert segment.style is None or segment.style.link is None


async def test_marking_rows_and_removing_and_restoring_them() -> None:
    threads = ThreadList(now=lambda: NOW)
    async with Host(threads).run_test(size=(40, 12)) as pilot:
        threads.load(PagedThreads([_thread(i) for i in range(5)]))
        await wait_until(pilot, lambda: len(threads.rows) == 5, "rows")
        threads.focus()
        await pilot.press("x", "x")
        assert threads.targets() == ["thr_0000", "thr_0001"]
        assert "✓" in _line_text(threads, 0)
        removed = threads.remove_rows(threads.targets())
        assert [row.id for row in threads.rows] == ["thr_0002", "thr_0003", "thr_0004"]
        threads.restore_rows(removed)
        assert [row.id for row in threads.rows][:2] == ["thr_0000", "thr_0001"]


async def test_thread_list_opens_on_enter_and_double_click() -> None:
    opened: list[str] = []
    threads = ThreadList(now=lambda: NOW)

    class Recorder(Host):
        def on_thread_list_opened(self, event: ThreadList.Opened) -> None:
            opened.append(event.thread_id)

    async with Recorder(threads).run_test(size=(40, 12)) as pilot:
        threads.load(PagedThreads([_thread(i) for i in range(3)]))
        await wait_until(pilot, lambda: len(threads.rows) == 3, "rows")
        threads.focus()
        await pilot.press("j", "enter")
        await pilot.click(ThreadList, offset=(5, 2), times=2)
        await pilot.pause()
        assert opened == ["thr_0001", "thr_0002"]


def _message(content: str, **fields: Any) -> Message:
    data: dict[str, Any] = {
        "id": "msg_1",
        "thread_id": "thr_1",
        "role": "assistant",
        "content": content,
        "created_at": NOW - timedelta(minutes=5),
        "model": "gpt-test",
    }
    data.update(fields)
    return Message(**data)


def _label(_binding_id: str) -> str:
    return "R"


def _view(message: Message, last: bool = False) -> MessageView:
    return MessageView(message, now=lambda: NOW, key_label=_label, last_reply=last)


def _rendered_text(widget: Widget) -> str:
    lines = widget.render_lines(widget.region.reset_offset)
    return "\n".join("".join(s.text for s in line) for line in lines)


async def test_a_finished_message_is_one_widget_with_header_body_and_badge() -> None:
    view = _view(
        _message("# Title\n\nSome **bold** text.", status="error", error="boom"),
        last=True,
    )
    app = Host(view)
    async with app.run_test(size=(80, 20)) as pilot:
        await pilot.pause()
        assert not view.children
        text = _rendered_text(view)
        assert "Assistant · gpt-test · 5 min ago" in text
        assert "Title" in text and "Some bold text." in text
        assert "✗ Failed: boom" in text and "R retry" in text


async def test_links_in_a_finished_message_ask_the_app_instead_of_opening() -> None:
    view = _view(_message("Read [the docs](https://example.com/docs) now."))
    app = Host(view)
    async with app.run_test(size=(60, 10)) as pilot:
        await pilot.pause()
        lines = view.render_lines(view.region.reset_offset)
        clickable = [
            segment
            for line in lines
            for segment in line
            if segment.style is not None and "@click" in segment.style.meta
        ]
        assert clickable, "the link text carries a click action"
        for segment in clickable:
            assert segment.style is not None and segment.style.link is None  # no OSC 8
            assert segment.style.meta["@click"] == (
                "app.open_link",
                ("https://example.com/docs",),
            )
        row = next(
            y for y, line in enumerate(lines) if any(s in clickable for s in line)
        )
        column = 0
        for segment in lines[row]:
            if segment in clickable:
                break
            column += len(segment.text)
        await pilot.click(MessageView, offset=(column + 1, row))
        await pilot.pause()
        assert app.links == ["https://example.com/docs"]


async def test_tool_calls_collapse_to_one_line_and_expand_on_click() -> None:
    call = ToolCall(
        id="c1",
        name="search_knowledge",
        arguments={"query": "pricing"},
        status="completed",
        result={"hits": 3},
    )
    view = _view(_message("Found three.", tool_calls=[call]))
    app = Host(view)
    async with app.run_test(size=(80, 20)) as pilot:
        await pilot.pause()
        collapsed = _rendered_text(view)
        assert "▸ ✓ search_knowledge  done" in collapsed and '"hits"' not in collapsed
        await pilot.click(MessageView, offset=(3, 1))
        await pilot.pause()
        expanded = _rendered_text(view)
        assert (
            "▾" in expanded
            and '"hits": 3' in expanded
            and '"query": "pricing"' in expanded
        )


async def test_composer_enter_sends_and_ctrl_j_adds_a_line() -> None:
    sent: list[str] = []
    composer = Composer()

    class Recorder(Host):
        def on_composer_submitted(self, event: Composer.Submitted) -> None:
            sent.append(event.text)

    async with Recorder(composer).run_test() as pilot:
        composer.focus()
        await pilot.press("h", "i", "ctrl+j", "y", "o", "u")
        assert composer.text == "hi\nyou"
        await pilot.press("shift+enter")
        assert composer.text == "hi\nyou\n"
        await pilot.press("enter")
        await pilot.pause()
        assert sent == ["hi\nyou\n"]
        assert composer.text == "hi\nyou\n"  # the screen clears it once it sends


async def test_a_locked_composer_neither_sends_nor_edits() -> None:
    sent: list[str] = []
    composer = Composer()

    class Recorder(Host):
        def on_composer_submitted(self, event: Composer.Submitted) -> None:
            sent.append(event.text)

    async with Recorder(composer).run_test() as pilot:
        composer.focus()
        await pilot.press("a")
        composer.locked = True
        await pilot.press("b", "enter", "ctrl+j")
        await pilot.pause()
        assert composer.text == "a" and sent == []
        assert composer.has_class("-locked")
        composer.locked = False
        await pilot.press("enter")
        await pilot.pause()
        assert sent == ["a"]
