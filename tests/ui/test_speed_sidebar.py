"""The sidebar's speed work keeps its behaviour: rows kept as untracked tuples, styles
resolved once per CSS change, drawn rows cached by what they show, pages loaded off
screen not redrawn, and the scroll bar not redrawn by layouts elsewhere."""

from __future__ import annotations

import asyncio
import gc
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from rich.cells import cell_len
from rich.style import Style
from textual.app import App, ComposeResult
from textual.containers import Horizontal, Vertical
from textual.geometry import Region
from textual.widgets import Static

import tenex_tui.ui
from tenex_tui.core.models import Page, Thread
from tenex_tui.ui.widgets.thread_list import ThreadList
from tenex_tui.ui.widgets.thread_rows import (
    COMPONENTS,
    RowPalette,
    ThreadRow,
    draw_thread_row,
    row_data,
)
from tests.ui.harness import NOW, wait_until

CSS = Path(tenex_tui.ui.__file__).parent / "styles" / "app.tcss"


class SidebarHost(App[None]):
    """A thread list in the app's sidebar column, beside a note whose height can
    change (a layout elsewhere). Nothing is focused until a test says so."""

    CSS_PATH = CSS
    AUTO_FOCUS = None

    def __init__(self, threads: ThreadList) -> None:
        super().__init__()
        self.threads = threads

    def compose(self) -> ComposeResult:
        with Horizontal():
            # The app's own container: `#sidebar` gives the list its width.
            with Vertical(id="sidebar"):
                yield self.threads
            yield Static("note", id="note")


def _thread(index: int, **fields: Any) -> Thread:
    when = NOW - timedelta(minutes=index * 7)
    data: dict[str, Any] = {
        "id": f"thr_{index:05d}",
        "workspace_id": "ws",
        "user_id": "u",
        "title": f"Thread number {index}",
        "created_at": when,
        "updated_at": when,
        "last_message_at": when,
    }
    data.update(fields)
    return Thread(**data)


class Pages:
    """Serves threads page by page with a known total, as the engine does."""

    def __init__(self, threads: list[Thread], page_size: int = 100) -> None:
        self.threads = threads
        self.page_size = page_size

    async def __call__(self, cursor: str | None) -> Page[Thread]:
        start = int(cursor or 0)
        end = start + self.page_size
        return Page[Thread](
            items=self.threads[start:end],
            next_cursor=str(end) if end < len(self.threads) else None,
            total=len(self.threads),
        )


class GatedPages(Pages):
    """Serves the first page at once and the others only once `gate` is set."""

    def __init__(self, threads: list[Thread], gate: asyncio.Event) -> None:
        super().__init__(threads)
        self.gate = gate

    async def __call__(self, cursor: str | None) -> Page[Thread]:
        if cursor is not None:
            await self.gate.wait()
        return await super().__call__(cursor)


def _line(threads: ThreadList, y: int) -> str:
    """Line `y` of the list drawn now."""
    return "".join(segment.text for segment in threads.render_line(y))


def _shown(threads: ThreadList, y: int) -> str:
    """Line `y` of the list as last drawn (Textual redraws only lines marked dirty)."""
    (strip,) = threads.render_lines(Region(0, y, threads.size.width, 1))
    return strip.text


async def test_loaded_rows_leave_no_objects_for_the_garbage_collector() -> None:
    threads = ThreadList(now=lambda: NOW)
    async with SidebarHost(threads).run_test(size=(60, 20)) as pilot:
        threads.load(Pages([_thread(i) for i in range(600)]))
        threads.focus()
        await pilot.press("end")
        await wait_until(pilot, lambda: threads.fully_loaded, "every page")
        gc.collect()
        tracked = sum(isinstance(obj, ThreadRow) for obj in gc.get_objects())
        # Only rows someone asked for become objects (the cursor's, here).
        assert len(threads.rows) == 600
        assert tracked <= 3
        assert threads.highlighted_id == "thr_00599"
        assert [row.id for row in threads.rows[:2]] == ["thr_00000", "thr_00001"]


async def test_a_row_changed_in_place_is_drawn_again() -> None:
    threads = ThreadList(now=lambda: NOW)
    async with SidebarHost(threads).run_test(size=(60, 20)) as pilot:
        threads.load(Pages([_thread(i) for i in range(5)]))
        await wait_until(pilot, lambda: len(threads.rows) == 5, "rows")
        await pilot.pause()
        assert "●" not in _line(threads, 1)
        row = threads.row_for("thr_00001")
        assert row is not None
        row.unread = True  # what the screen does when a reply lands elsewhere
        threads.refresh()
        await pilot.pause()
        assert "●" in _line(threads, 1)
        row.unread = False
        row.title = "Renamed in place"
        threads.refresh()
        await pilot.pause()
        assert "●" not in _line(threads, 1)
        assert "Renamed in place" in _line(threads, 1)


async def test_the_cursor_row_takes_the_focus_style_when_the_list_gains_focus() -> None:
    threads = ThreadList(now=lambda: NOW)
    async with SidebarHost(threads).run_test(size=(60, 20)) as pilot:
        threads.load(Pages([_thread(i) for i in range(5)]))
        await wait_until(pilot, lambda: len(threads.rows) == 5, "rows")
        await pilot.pause()

        def cursor_background() -> object:
            style = next(iter(threads.render_line(0))).style
            assert isinstance(style, Style)
            return style.bgcolor

        blurred = cursor_background()
        threads.focus()
        await pilot.pause()
        focused = cursor_background()
        assert focused != blurred  # `ThreadList:focus > .thread-list--cursor`
        threads.blur()
        await pilot.pause()
        assert cursor_background() == blurred


@pytest.mark.parametrize("width", [8, 12, 20, 24, 33, 60])
def test_a_drawn_row_is_exactly_as_wide_as_its_column(width: int) -> None:
    components = dict.fromkeys(COMPONENTS, Style(color="red"))
    palette = RowPalette(Style(bgcolor="blue"), components)
    rows = [
        row_data(_thread(1, title="A long title that will not fit " * 3)),
        row_data(_thread(2, title="界" * 40, pinned=True, unread=True)),
        row_data(_thread(3, title="short", agent="researcher", last_status="error")),
    ]
    for data in rows:
        for marked in (False, True):
            strip = draw_thread_row(
                data, width=width, when="Jan 5", palette=palette, marked=marked
            )
            assert strip.cell_length == width
            assert cell_len(strip.text) == width
            if width >= 24:
                assert strip.text.endswith("Jan 5 ")


async def test_end_draws_the_last_threads_once_their_page_arrives() -> None:
    threads = ThreadList(now=lambda: NOW)
    gate = asyncio.Event()
    async with SidebarHost(threads).run_test(size=(60, 12)) as pilot:
        threads.load(GatedPages([_thread(i) for i in range(1000)], gate))
        await wait_until(pilot, lambda: bool(threads.rows), "first page")
        threads.focus()
        await pilot.press("end")
        await pilot.pause()
        height = threads.size.height
        # Placeholders on screen while the pages after the first are held back.
        assert len(threads.rows) == 100
        assert "loading…" in _shown(threads, height - 1)
        assert "loading…" in _shown(threads, 0)
        gate.set()
        await wait_until(pilot, lambda: threads.fully_loaded, "every page")
        await pilot.pause()
        # What is on screen (Textual's cached lines), not a fresh drawing: every
        # placeholder row was drawn again when its page arrived.
        assert "Thread number 999" in _shown(threads, height - 1)
        assert "Thread number 988" in _shown(threads, 0)
        assert not any("loading…" in _shown(threads, y) for y in range(height))


async def test_a_layout_elsewhere_does_not_redraw_the_list_scroll_bar() -> None:
    threads = ThreadList(now=lambda: NOW)
    async with SidebarHost(threads).run_test(size=(60, 12)) as pilot:
        threads.load(Pages([_thread(i) for i in range(300)]))
        await wait_until(pilot, lambda: len(threads.rows) >= 100, "first page")
        await pilot.pause()
        bar = threads.vertical_scrollbar
        drawn = 0
        original = bar.render_lines

        def counting(crop: Any) -> Any:
            nonlocal drawn
            drawn += 1
            return original(crop)

        bar.render_lines = counting  # type: ignore[method-assign]
        note = pilot.app.query_one("#note", Static)
        for lines in (3, 5, 2):
            note.update("\n".join(["note"] * lines))  # a layout pass of the screen
            await pilot.pause()
        assert drawn == 0
        threads.focus()
        await pilot.press("pagedown")  # the thumb moves: the bar is drawn again
        await pilot.pause()
        assert drawn > 0
