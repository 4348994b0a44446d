"""A keyboard-driven virtual list on Textual's Line API.

Only the rows on screen are ever rendered: `render_line(y)` asks the subclass for one row,
and `virtual_size` tells the scroll bars how many there are. Mounting 100,000 rows costs
nothing (STYLE.md §4.11: `OptionList` takes 27 s and 235 MB for the same).

Subclasses say how many rows exist and how one looks; this class owns the cursor,
scrolling, mouse clicks and the movement keys.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from rich.segment import Segment
from rich.style import Style
from textual import events
from textual.binding import Binding, BindingType
from textual.geometry import Region, Size
from textual.message import Message
from textual.reactive import var
from textual.scroll_view import ScrollView
from textual.strip import Strip


class VirtualList(ScrollView, can_focus=True):
    """A list whose rows are drawn on demand; posts `CursorMoved` and `RowActivated`."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding(
            "down,j",
            "cursor_down",
            "Down",
            show=False,
            id="list.down",
            tooltip="Next row",
        ),
        Binding(
            "up,k", "cursor_up", "Up", show=False, id="list.up", tooltip="Previous row"
        ),
        Binding(
            "pagedown",
            "page_down",
            "Page down",
            show=False,
            id="list.page_down",
            tooltip="A page down",
        ),
        Binding(
            "pageup",
            "page_up",
            "Page up",
            show=False,
            id="list.page_up",
            tooltip="A page up",
        ),
        Binding(
            "home,g", "first", "Top", show=False, id="list.top", tooltip="First row"
        ),
        Binding(
            "end,G",
            "last",
            "Bottom",
            show=False,
            id="list.bottom",
            tooltip="Last row (loads every page)",
        ),
        Binding("enter", "activate", "Open", id="list.open", tooltip="Open the row"),
    ]

    ROW_HEIGHT: ClassVar[int] = 1
    """Lines per row."""

    cursor: var[int] = var(-1, always_update=True)
    """Index of the highlighted row, or -1 when the list is empty."""

    @dataclass
    class CursorMoved(Message):
        """The highlighted row changed."""

        virtual_list: VirtualList
        """The list."""
        index: int
        """The new cursor index (-1 when the list became empty)."""

        @property
        def control(self) -> VirtualList:
            """The list that posted the message."""
            return self.virtual_list

        def can_replace(self, message: Message) -> bool:
            # Holding j scrolls through many rows; only the last position matters.
            return isinstance(message, VirtualList.CursorMoved) and (
                message.virtual_list is self.virtual_list
            )

    @dataclass
    class RowActivated(Message):
        """Enter (or a double click) on a row."""

        virtual_list: VirtualList
        """The list."""
        index: int
        """The activated row."""

        @property
        def control(self) -> VirtualList:
            """The list that posted the message."""
            return self.virtual_list

    _pass: tuple[int, int, int] | None = None
    """Width, row count and scroll offset while one repaint draws its lines."""
    _geometry: tuple[Size, Size, Size] | None = None
    """Size, container size and virtual size at the last layout pass."""

    # --- what subclasses provide -------------------------------------------------

    @property
    def row_count(self) -> int:
        """How many rows the list has (including placeholders still loading)."""
        return 0

    def render_row(self, index: int, line: int, width: int, selected: bool) -> Strip:
        """Draw one line of a row.

        Args:
            index: The row (0 ≤ index < row_count).
            line: The line within the row (0 ≤ line < ROW_HEIGHT).
            width: Cells available.
            selected: Whether the cursor is on it.

        Returns:
            A strip exactly `width` cells wide.
        """
        return Strip.blank(width)

    def render_empty(self, y: int, width: int) -> Strip:
        """Draw line `y` of an empty list (a hint such as "No threads yet")."""
        return Strip.blank(width, self.rich_style)

    # --- machinery -----------------------------------------------------------------

    def refresh_rows(self) -> None:
        """Recompute the virtual size after rows were added or removed, and repaint."""
        count = self.row_count
        self.virtual_size = Size(
            self.scrollable_content_region.width, count * self.ROW_HEIGHT
        )
        if count == 0:
            if self.cursor != -1:
                self.cursor = -1
        elif self.cursor >= count:
            self.cursor = count - 1
        elif self.cursor < 0:
            self.cursor = 0
        self.refresh()

    def render_lines(self, crop: Region) -> list[Strip]:
        # Textual asks for every line of a repaint in one call: resolve the geometry
        # once for all of them (`scrollable_content_region` walks up to the screen,
        # which cost more than drawing a row).
        self._pass = (
            self.scrollable_content_region.width,
            self.row_count,
            self.scroll_offset.y,
        )
        try:
            return super().render_lines(crop)
        finally:
            self._pass = None

    def render_line(self, y: int) -> Strip:
        if self._pass is not None:
            width, count, top = self._pass
        else:
            width = self.scrollable_content_region.width
            count = self.row_count
            top = self.scroll_offset.y
        if count == 0:
            return self.render_empty(y, width)
        index, line = divmod(top + y, self.ROW_HEIGHT)
        if index >= count:
            return Strip.blank(width, self.rich_style)
        return self.render_row(index, line, width, index == self.cursor)

    def watch_cursor(self, old: int, new: int) -> None:
        top = round(self.scroll_y)
        self.scroll_to_cursor()
        if round(self.scroll_y) == top and old >= 0 and new >= 0:
            # No scroll: repaint just the two rows that changed (a key press must stay
            # well under a frame, however long the list).
            height = self.ROW_HEIGHT
            self.refresh_lines(old * height, height)
            self.refresh_lines(new * height, height)
        else:
            self.refresh()
        if old != new:
            self.post_message(self.CursorMoved(self, new))

    def scroll_to_cursor(self) -> None:
        """Scroll the least needed to show the cursor row."""
        if self.cursor < 0:
            return
        height = max(1, self.scrollable_content_region.height)
        top = round(self.scroll_y)
        first = self.cursor * self.ROW_HEIGHT
        last = first + self.ROW_HEIGHT - 1
        if first < top:
            self.scroll_to(y=first, animate=False, force=True)
        elif last >= top + height:
            self.scroll_to(y=last - height + 1, animate=False, force=True)

    def _size_updated(
        self, size: Size, virtual_size: Size, container_size: Size, layout: bool = True
    ) -> bool:
        # Every layout pass anywhere on the screen calls this with the region's size as
        # `virtual_size`, which never equals a virtual list's, so Textual redrew this
        # list's scroll bar (a full repaint of its column, and a frame of its own) on
        # each pass: ~10 times a second while a reply streams in the pane beside it.
        # Only a change of our size, our container or our virtual size matters.
        # (A private hook: textual is pinned exactly in pyproject.toml.)
        geometry = (size, container_size, self.virtual_size)
        if geometry == self._geometry:
            return False
        self._geometry = geometry
        return super()._size_updated(size, virtual_size, container_size, layout)

    def on_resize(self, event: events.Resize) -> None:
        self.virtual_size = Size(
            self.scrollable_content_region.width, self.row_count * self.ROW_HEIGHT
        )
        self.scroll_to_cursor()

    def move_cursor(self, index: int) -> None:
        """Put the cursor on `index`, clamped to the rows."""
        count = self.row_count
        if count == 0:
            self.cursor = -1
            return
        self.cursor = min(max(index, 0), count - 1)

    def action_cursor_down(self) -> None:
        self.move_cursor(self.cursor + 1)

    def action_cursor_up(self) -> None:
        self.move_cursor(self.cursor - 1)

    @property
    def page_rows(self) -> int:
        """How many rows a page move jumps."""
        return max(1, self.scrollable_content_region.height // self.ROW_HEIGHT - 1)

    def action_page_down(self) -> None:
        self.move_cursor(self.cursor + self.page_rows)

    def action_page_up(self) -> None:
        self.move_cursor(self.cursor - self.page_rows)

    def action_first(self) -> None:
        self.move_cursor(0)

    def action_last(self) -> None:
        self.move_cursor(self.row_count - 1)

    def action_activate(self) -> None:
        if 0 <= self.cursor < self.row_count:
            self.post_message(self.RowActivated(self, self.cursor))

    def on_click(self, event: events.Click) -> None:
        index = (self.scroll_offset.y + event.y) // self.ROW_HEIGHT
        if 0 <= index < self.row_count:
            self.cursor = index
            if event.chain >= 2:
                self.post_message(self.RowActivated(self, index))


def fit(segments: list[Segment], width: int, style: Style | None = None) -> Strip:
    """Crop or pad segments to exactly `width` cells, as one strip."""
    return Strip(segments).adjust_cell_length(width, style).crop(0, width)
