"""One row of the thread sidebar: what is kept per thread, and how it is drawn.

A row is built from `Segment`s of sanitised text, never from markup, so a title such as
`[@click=app.quit]` is shown as typed and cannot become an action (T29), and a control
sequence in a title is shown as a visible picture instead of reaching the terminal (T26).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from rich.cells import cell_len
from rich.segment import Segment
from rich.style import Style
from textual.strip import Strip

from tenex_tui.core.models import Thread
from tenex_tui.ui.format import relative_time, thread_title
from tenex_tui.ui.widgets.virtual_list import fit

MAX_TITLE_CHARS = 120
"""Titles are cut here once, when a row is built (the column is narrower anyway)."""


@dataclass(slots=True)
class ThreadRow:
    """What the sidebar keeps of one thread: enough to draw its row."""

    id: str
    title: str
    """Sanitised, one line."""
    pinned: bool
    unread: bool
    status: str | None
    """The newest assistant message's status (`streaming`, `error`, …)."""
    when: datetime
    """Last activity, for the relative time."""
    archived: bool

    def update_from(self, other: ThreadRow) -> None:
        """Take another row's values (the same thread, fresher), in place."""
        self.title = other.title
        self.pinned = other.pinned
        self.unread = other.unread
        self.status = other.status
        self.when = other.when
        self.archived = other.archived

    @classmethod
    def from_thread(cls, thread: Thread) -> ThreadRow:
        """Build a row from a thread as the backend returned it."""
        return cls(
            id=thread.id,
            title=thread_title(thread.title, max_chars=MAX_TITLE_CHARS),
            pinned=thread.pinned,
            unread=thread.unread,
            status=thread.last_status,
            when=thread.last_message_at or thread.created_at,
            archived=thread.archived,
        )


_MARKERS = {
    "streaming": ("◐", "thread-list--streaming"),
    "error": ("✗", "thread-list--error"),
    "interrupted": ("!", "thread-list--interrupted"),
    "stopped": ("■", "thread-list--stopped"),
}


def draw_thread_row(
    row: ThreadRow,
    *,
    width: int,
    base: Style,
    marked: bool,
    now: datetime,
    style: Callable[[str], Style],
) -> Strip:
    """Draw a row: marker, pin, title (bold when unread), relative time.

    Args:
        row: The row.
        width: Cells available.
        base: The row's background style (cursor and marks already applied).
        marked: Whether it is marked for a bulk action (✓ replaces the marker).
        now: The current time, for the relative time.
        style: Looks up a component style of the list by name.
    """
    segments: list[Segment] = [Segment(" ", base)]
    if marked:
        segments.append(Segment("✓", base + Style(bold=True)))
    elif row.status in _MARKERS:
        glyph, component = _MARKERS[row.status]
        segments.append(Segment(glyph, base + style(component)))
    elif row.unread:
        unread = style("thread-list--unread")
        segments.append(Segment("●", base + unread))
    else:
        segments.append(Segment(" ", base))
    if row.pinned:
        pin = style("thread-list--pin")
        segments.append(Segment("⚑", base + pin))
    else:
        segments.append(Segment(" ", base))
    segments.append(Segment(" ", base))
    when = relative_time(row.when, now, short=True)
    time_width = cell_len(when)
    title_width = max(1, width - 4 - time_width - 2)
    title_style = base + Style(bold=True) if row.unread else base
    title = row.title
    if cell_len(title) > title_width:
        title = _crop(title, title_width - 1) + "…"
    segments.append(Segment(title, title_style))
    gap = width - 4 - cell_len(title) - time_width - 1
    segments.append(Segment(" " * max(1, gap), base))
    time_style = base + style("thread-list--time")
    segments.append(Segment(when, time_style))
    segments.append(Segment(" ", base))
    return fit(segments, width, base)


def _crop(text: str, cells: int) -> str:
    """Cut text to at most `cells` terminal cells (wide characters count twice)."""
    if cells <= 0:
        return ""
    total = 0
    for position, char in enumerate(text):
        total += cell_len(char)
        if total > cells:
            return text[:position]
    return text
