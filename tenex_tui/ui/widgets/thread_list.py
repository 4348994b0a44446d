"""The thread sidebar: a virtual list fed page by page through the backend's cursor.

It never holds every thread: it asks its page source for the next page when the cursor
(or the viewport) nears the end of what is loaded, and keeps only a small `ThreadRow` per
thread, not the full `Thread` (100,000 threads stay well under the memory budget). End
is the one key that walks every page, because the user asked for the last row.

Rows are built as `Segment`s from sanitised text: a title is never parsed as markup and
never carries a control sequence to the terminal (T26, T29).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import ClassVar

from rich.segment import Segment
from textual import work
from textual.binding import BindingType
from textual.geometry import Region
from textual.message import Message
from textual.strip import Strip

from tenex_tui.core.errors import TenexError
from tenex_tui.core.models import Page, Thread
from tenex_tui.ui.format import display_error, relative_time
from tenex_tui.ui.widgets.thread_list_keys import THREAD_LIST_BINDINGS
from tenex_tui.ui.widgets.thread_rows import (
    COMPONENTS,
    RowPalette,
    RowStore,
    ThreadRow,
    draw_thread_row,
    row_data,
)
from tenex_tui.ui.widgets.virtual_list import VirtualList, fit

PageSource = Callable[[str | None], Awaitable[Page[Thread]]]
"""Fetches the page after a cursor (None: the first page) with the list's filters."""

PREFETCH_ROWS = 40
"""Fetch the next page when the cursor or viewport comes this close to the loaded end."""


class ThreadList(VirtualList):
    """The threads of one view (live or archived, maybe filtered), pinned first.

    Posts `Opened` when a thread is activated and `Highlighted` when the cursor moves;
    triage keys run actions on the screen (`screen.pin_threads`, …), which owns the
    backend. Marks (space / x) select rows for bulk actions.
    """

    BINDINGS: ClassVar[list[BindingType]] = THREAD_LIST_BINDINGS

    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "thread-list--cursor",
        "thread-list--marked",
        "thread-list--time",
        "thread-list--pin",
        "thread-list--unread",
        "thread-list--streaming",
        "thread-list--error",
        "thread-list--interrupted",
        "thread-list--stopped",
        "thread-list--placeholder",
        "thread-list--empty",
    }

    @dataclass
    class Opened(Message):
        """The user opened a thread (Enter or double click)."""

        thread_list: ThreadList
        """The list."""
        thread_id: str
        """The thread to open."""

        @property
        def control(self) -> ThreadList:
            """The list that posted the message."""
            return self.thread_list

    @dataclass
    class Highlighted(Message):
        """The cursor moved to another thread (or off every thread)."""

        thread_list: ThreadList
        """The list."""
        thread_id: str | None
        """The highlighted thread, or None when the list is empty."""

        @property
        def control(self) -> ThreadList:
            """The list that posted the message."""
            return self.thread_list

        def can_replace(self, message: Message) -> bool:
            return isinstance(message, ThreadList.Highlighted)

    @dataclass
    class PageLoaded(Message):
        """A page of threads arrived."""

        thread_list: ThreadList
        """The list."""
        rows: int
        """How many rows are loaded now."""

        @property
        def control(self) -> ThreadList:
            """The list that posted the message."""
            return self.thread_list

    @dataclass
    class LoadFailed(Message):
        """A page could not be loaded."""

        thread_list: ThreadList
        """The list."""
        error: str
        """Why, ready to display."""

        @property
        def control(self) -> ThreadList:
            """The list that posted the message."""
            return self.thread_list

    def __init__(
        self,
        *,
        now: Callable[[], datetime] | None = None,
        page_size: int = 100,
        name: str | None = None,
        id: str | None = None,  # noqa: A002 - Textual's own parameter name
        classes: str | None = None,
    ) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self._now = now or (lambda: datetime.now(UTC))
        self.page_size = page_size
        self.marked: set[str] = set()
        """Ids of the rows marked for a bulk action."""
        self.empty_text = "Opening…"
        """What the list says when it has no rows."""
        self._rows = RowStore()
        self._source: PageSource | None = None
        self._next_cursor: str | None = None
        self._total: int | None = None
        self._loading = False
        self._generation = 0
        self._want_end = False
        self._select_after_load: str | None = None
        self._replace_rows = False
        self._palettes: dict[tuple[bool, bool], RowPalette] = {}
        self._strips: OrderedDict[tuple[object, ...], Strip] = OrderedDict()
        self._pass_now: datetime | None = None

    # --- data ----------------------------------------------------------------------

    @property
    def rows(self) -> Sequence[ThreadRow]:
        """The loaded rows, in display order."""
        return self._rows

    @property
    def row_count(self) -> int:
        loaded = len(self._rows)
        if self._next_cursor is None:
            return loaded
        if self._total is not None and self._total > loaded:
            return self._total
        # Unknown total: one "loading…" row tells the user there is more.
        return loaded + 1

    @property
    def fully_loaded(self) -> bool:
        """True once the last page has arrived."""
        return (
            self._source is not None and self._next_cursor is None and not self._loading
        )

    @property
    def fetching(self) -> bool:
        """True while a page is being fetched."""
        return self._loading

    @property
    def highlighted(self) -> ThreadRow | None:
        """The row under the cursor, if it is loaded."""
        if 0 <= self.cursor < len(self._rows):
            return self._rows.row_at(self.cursor)
        return None

    def row_for(self, thread_id: str) -> ThreadRow | None:
        """The loaded row of a thread, if any."""
        index = self._rows.index_of(thread_id)
        return None if index is None else self._rows.row_at(index)

    def index_of(self, thread_id: str) -> int | None:
        """The position of a loaded thread, if any."""
        return self._rows.index_of(thread_id)

    def load(
        self, source: PageSource, *, select: str | None = None, keep_rows: bool = False
    ) -> None:
        """Start over from the first page of `source` (a new view, filter or order).

        Args:
            source: Fetches pages with the view's filters.
            select: A thread to put the cursor on once it is loaded (else the first row).
            keep_rows: Keep showing the current rows until the first page arrives (a
                refresh of the same view), instead of clearing the list at once.
        """
        self._generation += 1
        self._source = source
        self._want_end = False
        self._select_after_load = select
        self._replace_rows = True
        if not keep_rows:
            self._rows.clear()
            self.marked.clear()
            self._next_cursor = None
            self._total = None
            self.refresh_rows()
        self._loading = True
        self._fetch(None, self._generation)

    def reload(self) -> None:
        """Reload from the first page, keeping the cursor on the same thread."""
        if self._source is None:
            return
        current = self.highlighted
        self.load(self._source, select=current.id if current else None, keep_rows=True)

    @work(group="thread-pages", exit_on_error=False)
    async def _fetch(self, cursor: str | None, generation: int) -> None:
        source = self._source
        if source is None:
            return
        self._loading = True
        try:
            page = await source(cursor)
        except TenexError as error:
            if generation == self._generation:
                self._loading = False
                self._next_cursor = None
                self.empty_text = "Could not load threads."
                self.refresh_rows()
                self.post_message(self.LoadFailed(self, display_error(str(error))))
            return
        if generation != self._generation:
            return  # a newer view replaced this one while the page was in flight
        self._loading = False
        self._add_page(page)

    def _add_page(self, page: Page[Thread]) -> None:
        before = self.highlighted_id
        rows = self._rows
        first_new = len(rows)
        count_before = self.row_count
        replaced = self._replace_rows
        if replaced:
            self._replace_rows = False
            rows.clear()
            self.marked &= {thread.id for thread in page.items}
            first_new = 0
        for thread in page.items:
            if not rows.has(thread.id):
                rows.append(row_data(thread))
        self._next_cursor = page.next_cursor
        self._total = page.total
        if self._next_cursor is None:
            self._total = len(rows)
        self.empty_text = "No threads yet.\nPress n to start one."
        if replaced or self.row_count != count_before:
            self.refresh_rows()
        else:
            # Same size (the total was known): only rows that were placeholders on
            # screen need drawing. The walk End starts loads ~1,000 pages, mostly off
            # screen.
            self._refresh_loaded(first_new, len(rows))
        if self._select_after_load is not None:
            index = self._rows.index_of(self._select_after_load)
            if index is not None:
                self._select_after_load = None
                self.move_cursor(index)
            elif self._next_cursor is None:
                self._select_after_load = None
        if self._want_end:
            self.move_cursor(self.row_count - 1)
            if self._next_cursor is None:
                self._want_end = False
        if self.highlighted_id != before:
            self.post_message(self.Highlighted(self, self.highlighted_id))
        self.post_message(self.PageLoaded(self, len(rows)))
        self._maybe_fetch_more()

    def _refresh_loaded(self, start: int, end: int) -> None:
        height = self.ROW_HEIGHT
        top = round(self.scroll_y)
        bottom = top + self.scrollable_content_region.height
        first = max(start * height, top)
        last = min(end * height, bottom)
        if first < last:
            self.refresh_lines(first, last - first)

    def _maybe_fetch_more(self) -> None:
        if self._loading or self._next_cursor is None or self._source is None:
            return
        bottom = round(self.scroll_y) + self.scrollable_content_region.height
        edge = max(self.cursor, bottom)
        if self._want_end or edge >= len(self._rows) - PREFETCH_ROWS:
            self._loading = True
            self._fetch(self._next_cursor, self._generation)

    # --- row updates from the screen (optimistic triage) -----------------------------

    def update_row(self, thread: Thread) -> None:
        """Redraw a thread's row from a fresh copy of the thread (if it is loaded)."""
        row = self.row_for(thread.id)
        if row is not None:
            row.update_from(ThreadRow.from_thread(thread))
            self.refresh()

    def set_status(self, thread_id: str, status: str | None, *, unread: bool) -> None:
        """Change a row's marker (a reply started, finished or failed)."""
        row = self.row_for(thread_id)
        if row is not None:
            row.status = status
            row.unread = unread
            self.refresh()

    def remove_rows(self, thread_ids: Iterable[str]) -> list[tuple[int, ThreadRow]]:
        """Take rows out of the view (archived, deleted); returns them for an undo."""
        keep_id = self.highlighted_id
        removed = self._rows.remove(set(thread_ids))
        if not removed:
            return []
        self.marked -= {row.id for _index, row in removed}
        if self._total is not None:
            self._total = max(len(self._rows), self._total - len(removed))
        cursor = self.cursor
        if keep_id is not None and self._rows.has(keep_id):
            cursor = self._rows.index_of(keep_id) or 0
        self.refresh_rows()
        self.move_cursor(cursor)
        self.post_message(self.Highlighted(self, self.highlighted_id))
        return removed

    def restore_rows(self, removed: list[tuple[int, ThreadRow]]) -> None:
        """Put back rows that `remove_rows` took out (undo), at their old positions."""
        for index, row in sorted(removed, key=lambda item: item[0]):
            if not self._rows.has(row.id):
                self._rows.insert(index, row)
        if self._total is not None:
            self._total += len(removed)
        self.refresh_rows()
        if removed:
            first = self._rows.index_of(removed[0][1].id)
            if first is not None:
                self.move_cursor(first)

    def insert_top(self, thread: Thread) -> None:
        """Show a new (or newly active) thread first among its kind and select it."""
        self._rows.take(thread.id)
        position = 0 if thread.pinned else self._rows.pinned_count()
        self._rows.insert(position, row_data(thread))
        if self._total is not None:
            self._total = max(self._total, len(self._rows))
        self.refresh_rows()
        self.move_cursor(position)

    def move_to_section(self, thread: Thread) -> None:
        """After a pin or unpin: move the row to the top of its section."""
        rows = self._rows
        if not rows.has(thread.id):
            return
        keep = self.highlighted_id
        rows.take(thread.id)
        row = row_data(thread)
        pinned_count = rows.pinned_count()
        position = 0 if thread.pinned else pinned_count
        if not thread.pinned:
            # Unpinned: back among the others by recency.
            when = row[5]
            while (
                position < len(rows)
                and not rows.pinned_at(position)
                and rows.data_at(position)[5] > when
            ):
                position += 1
        rows.insert(position, row)
        self.refresh_rows()
        if keep is not None and (index := rows.index_of(keep)) is not None:
            self.move_cursor(index)

    def bump(self, thread_id: str, when: datetime) -> None:
        """A thread just became the most recent: move it to the top of its section.

        The cursor stays on the thread it was on (which may be this one).
        """
        rows = self._rows
        keep = self.highlighted_id
        row = rows.take(thread_id)
        if row is None:
            return
        row.when = when
        rows.insert(0 if row.pinned else rows.pinned_count(), row)
        self.refresh()
        index = rows.index_of(keep) if keep is not None else None
        if index is not None and index != self.cursor:
            self.move_cursor(index)

    @property
    def highlighted_id(self) -> str | None:
        """The id of the thread under the cursor, if loaded."""
        if 0 <= self.cursor < len(self._rows):
            return self._rows.id_at(self.cursor)
        return None

    def select(self, thread_id: str) -> bool:
        """Move the cursor to a loaded thread; returns whether it was found."""
        index = self._rows.index_of(thread_id)
        if index is None:
            return False
        self.move_cursor(index)
        return True

    def targets(self) -> list[str]:
        """The threads a bulk action applies to: the marked ones, else the cursor's."""
        if self.marked:
            return [id_ for id_ in self._rows.ids() if id_ in self.marked]
        current = self.highlighted_id
        return [current] if current else []

    # --- keys ----------------------------------------------------------------------

    def action_toggle_mark(self) -> None:
        """Mark or unmark the row under the cursor, then move down."""
        thread_id = self.highlighted_id
        if thread_id is None:
            return
        if thread_id in self.marked:
            self.marked.discard(thread_id)
        else:
            self.marked.add(thread_id)
        self.refresh()
        self.move_cursor(self.cursor + 1)

    def clear_marks(self) -> bool:
        """Unmark every row; returns whether any was marked."""
        had = bool(self.marked)
        self.marked.clear()
        self.refresh()
        return had

    def action_last(self) -> None:
        if self._next_cursor is not None:
            # The user asked for the last thread: walk the remaining pages, showing
            # placeholders meanwhile, and follow the end as it arrives.
            self._want_end = True
            self.move_cursor(self.row_count - 1)
            self._maybe_fetch_more()
            return
        super().action_last()

    def move_cursor(self, index: int) -> None:
        super().move_cursor(index)
        self._maybe_fetch_more()

    def action_cursor_up(self) -> None:
        self._want_end = False
        super().action_cursor_up()

    def action_first(self) -> None:
        self._want_end = False
        super().action_first()

    def action_page_up(self) -> None:
        self._want_end = False
        super().action_page_up()

    def watch_cursor(self, old: int, new: int) -> None:
        super().watch_cursor(old, new)
        if old != new:
            self.post_message(self.Highlighted(self, self.highlighted_id))

    def watch_scroll_y(self, old: float, new: float) -> None:
        super().watch_scroll_y(old, new)
        self._maybe_fetch_more()

    def action_activate(self) -> None:
        thread_id = self.highlighted_id
        if thread_id is not None:
            self.post_message(self.Opened(self, thread_id))

    def on_virtual_list_row_activated(self, event: VirtualList.RowActivated) -> None:
        event.stop()
        if 0 <= event.index < len(self._rows):
            self.post_message(self.Opened(self, self._rows.id_at(event.index)))

    # --- drawing -------------------------------------------------------------------

    def notify_style_update(self) -> None:
        # New CSS (focus, theme, a class on an ancestor): resolve the styles again.
        super().notify_style_update()
        self._palettes.clear()
        self._strips.clear()

    def _palette(self, selected: bool, marked: bool) -> RowPalette:
        key = (selected, marked)
        palette = self._palettes.get(key)
        if palette is None:
            base = self.rich_style
            if selected:
                base += self.get_component_rich_style(
                    "thread-list--cursor", partial=True
                )
            if marked:
                base += self.get_component_rich_style(
                    "thread-list--marked", partial=True
                )
            components = {
                name: self.get_component_rich_style(name, partial=True)
                for name in COMPONENTS
            }
            palette = self._palettes[key] = RowPalette(base, components)
        return palette

    def render_lines(self, crop: Region) -> list[Strip]:
        # One clock reading for every row of a repaint.
        self._pass_now = self._now()
        try:
            return super().render_lines(crop)
        finally:
            self._pass_now = None

    def render_empty(self, y: int, width: int) -> Strip:
        base = self.rich_style
        lines = self.empty_text.split("\n")
        if not 1 <= y <= len(lines):
            return Strip.blank(width, base)
        style = base + self.get_component_rich_style("thread-list--empty", partial=True)
        return fit([Segment("  " + lines[y - 1], style)], width, base)

    def render_row(self, index: int, line: int, width: int, selected: bool) -> Strip:
        if index >= len(self._rows):
            base = self._palette(selected, False).base
            style = base + self.get_component_rich_style(
                "thread-list--placeholder", partial=True
            )
            return fit([Segment("    loading…", style)], width, base)
        row = self._rows.data_at(index)
        marked = row[0] in self.marked
        now = self._pass_now or self._now()
        when = relative_time(row[5], now, short=True)
        # Keyed by what the row shows, so a row changed in place is drawn again; the
        # same strip object also lets Textual reuse what it cached on it.
        key = (row, width, selected, marked, when)
        strips = self._strips
        strip = strips.get(key)
        if strip is None:
            if len(strips) >= STRIP_CACHE:
                strips.popitem(last=False)
            strip = strips[key] = draw_thread_row(
                row,
                width=width,
                when=when,
                palette=self._palette(selected, marked),
                marked=marked,
            )
        else:
            strips.move_to_end(key)
        return strip


STRIP_CACHE = 256
"""Drawn rows kept, the least recently drawn dropped first: a few screens' worth.
Each strip carries Textual's own caches, a dozen objects for the collector to walk."""
