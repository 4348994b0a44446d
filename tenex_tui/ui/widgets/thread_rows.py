"""One row of the thread sidebar: what is kept per thread, and how it is drawn.

A row is built from `Segment`s of sanitised text, never from markup, so a title such as
`[@click=app.quit]` is shown as typed and cannot become an action (T29), and a control
sequence in a title is shown as a visible picture instead of reaching the terminal (T26).

The sidebar may hold 100,000 rows. It keeps each as a `RowData` tuple of plain values
rather than an object: the garbage collector stops tracking such tuples, so its full
passes (which stall the event loop) do not grow with the list. `ThreadRow` is the
object form that callers see and may change in place.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields
from datetime import datetime
from typing import overload

from rich.cells import cell_len
from rich.segment import Segment
from rich.style import Style
from textual.strip import Strip

from tenex_tui.core.models import Thread
from tenex_tui.core.text import sanitize_line
from tenex_tui.ui.format import thread_title
from tenex_tui.ui.widgets.virtual_list import fit

MAX_TITLE_CHARS = 120
"""Titles are cut here once, when a row is built (the column is narrower anyway)."""
MAX_AGENT_CHARS = 12
"""An agent slug is cut here in a row (it is a hint; the header has it in full)."""

RowData = tuple[str, str, bool, bool, str | None, datetime, bool, str | None]
"""A row's values in `ThreadRow` field order (id, title, pinned, unread, status, when,
archived, agent): atomic values only, so the tuple is not tracked by the collector."""


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
    agent: str | None = None
    """The slug of the thread's agent, sanitised and short (None: the assistant)."""

    def update_from(self, other: ThreadRow) -> None:
        """Take another row's values (the same thread, fresher), in place."""
        self.title = other.title
        self.pinned = other.pinned
        self.unread = other.unread
        self.status = other.status
        self.when = other.when
        self.archived = other.archived
        self.agent = other.agent

    def data(self) -> RowData:
        """The row's values as a `RowData` tuple."""
        return tuple([getattr(self, name) for name in _FIELDS])

    @classmethod
    def from_data(cls, data: RowData) -> ThreadRow:
        """The object form of a stored row."""
        return cls(*data)

    @classmethod
    def from_thread(cls, thread: Thread) -> ThreadRow:
        """Build a row from a thread as the backend returned it."""
        return cls(*row_data(thread))


_FIELDS = tuple(field.name for field in fields(ThreadRow))


class RowStore(Sequence[ThreadRow]):
    """The sidebar's rows in display order, indexed by thread id.

    Each row is kept as a `RowData` tuple until someone asks for it as a `ThreadRow`;
    that object then replaces the tuple, so what a caller changes in place
    (`row.unread = False`) is what the list draws. Few rows are ever asked for.
    """

    def __init__(self) -> None:
        self._rows: list[ThreadRow | RowData] = []
        self._index: dict[str, int] = {}

    def __len__(self) -> int:
        return len(self._rows)

    @overload
    def __getitem__(self, index: int) -> ThreadRow: ...

    @overload
    def __getitem__(self, index: slice) -> list[ThreadRow]: ...

    def __getitem__(self, index: int | slice) -> ThreadRow | list[ThreadRow]:
        size = len(self._rows)
        if isinstance(index, slice):
            return [self.row_at(i) for i in range(*index.indices(size))]
        if index < 0:
            index += size
        if not 0 <= index < size:
            raise IndexError("row index out of range")
        return self.row_at(index)

    def index_of(self, thread_id: str) -> int | None:
        """The position of a thread's row, if loaded."""
        return self._index.get(thread_id)

    def has(self, thread_id: str) -> bool:
        """Whether a thread's row is loaded."""
        return thread_id in self._index

    def __contains__(self, row: object) -> bool:
        # By id, without turning every stored tuple into an object.
        return (
            isinstance(row, ThreadRow)
            and (index := self._index.get(row.id)) is not None
            and self.row_at(index) == row
        )

    def row_at(self, index: int) -> ThreadRow:
        """The row at a position, as the object callers may change in place."""
        row = self._rows[index]
        if isinstance(row, ThreadRow):
            return row
        obj = ThreadRow.from_data(row)
        self._rows[index] = obj
        return obj

    def data_at(self, index: int) -> RowData:
        """The values of the row at a position (what drawing needs)."""
        row = self._rows[index]
        return row.data() if isinstance(row, ThreadRow) else row

    def id_at(self, index: int) -> str:
        """The thread id of the row at a position."""
        row = self._rows[index]
        return row.id if isinstance(row, ThreadRow) else row[0]

    def pinned_at(self, index: int) -> bool:
        """Whether the row at a position is pinned."""
        row = self._rows[index]
        return row.pinned if isinstance(row, ThreadRow) else row[2]

    def pinned_count(self) -> int:
        """How many pinned rows lead the list (pinned rows come first)."""
        count = 0
        for index in range(len(self._rows)):
            if not self.pinned_at(index):
                break
            count += 1
        return count

    def ids(self) -> list[str]:
        """Every thread id, in display order."""
        return [self.id_at(index) for index in range(len(self._rows))]

    def clear(self) -> None:
        """Drop every row."""
        self._rows = []
        self._index = {}

    def append(self, row: RowData) -> bool:
        """Add a row at the end unless its thread is already listed (a thread that
        moved between pages keeps its first sighting); returns whether it was added."""
        if row[0] in self._index:
            return False
        self._index[row[0]] = len(self._rows)
        self._rows.append(row)
        return True

    def insert(self, position: int, row: ThreadRow | RowData) -> None:
        """Put a row at a position (clamped to the end)."""
        self._rows.insert(min(position, len(self._rows)), row)
        self._reindex()

    def take(self, thread_id: str) -> ThreadRow | None:
        """Take a thread's row out of the list, if it is there."""
        index = self._index.get(thread_id)
        if index is None:
            return None
        row = self.row_at(index)
        del self._rows[index]
        self._reindex()
        return row

    def remove(self, thread_ids: set[str]) -> list[tuple[int, ThreadRow]]:
        """Take several threads' rows out; returns them with their old positions."""
        positions = sorted(
            index
            for thread_id in thread_ids
            if (index := self._index.get(thread_id)) is not None
        )
        removed = [(index, self.row_at(index)) for index in positions]
        if removed:
            gone = {row.id for _index, row in removed}
            self._rows = [
                row
                for index, row in enumerate(self._rows)
                if self.id_at(index) not in gone
            ]
            self._reindex()
        return removed

    def _reindex(self) -> None:
        self._index = {self.id_at(i): i for i in range(len(self._rows))}


def row_data(thread: Thread) -> RowData:
    """A thread as the sidebar stores it (in `ThreadRow` field order)."""
    return (
        thread.id,
        thread_title(thread.title, max_chars=MAX_TITLE_CHARS),
        thread.pinned,
        thread.unread,
        thread.last_status,
        thread.last_message_at or thread.created_at,
        thread.archived,
        sanitize_line(thread.agent, max_chars=MAX_AGENT_CHARS)
        if thread.agent
        else None,
    )


_MARKERS = {
    "streaming": ("◐", "thread-list--streaming"),
    "error": ("✗", "thread-list--error"),
    "interrupted": ("!", "thread-list--interrupted"),
    "stopped": ("■", "thread-list--stopped"),
}

COMPONENTS = (
    "thread-list--time",
    "thread-list--pin",
    "thread-list--unread",
    *(component for _glyph, component in _MARKERS.values()),
)
"""The component classes a row's palette resolves."""


class RowPalette:
    """The styles of rows in one state (cursor or not, marked or not), resolved once.

    Looking a style up per row (`DOMNode.rich_style` walks every ancestor) cost more than
    drawing the row; the list builds a palette per state and reuses it until its CSS
    changes.
    """

    __slots__ = ("base", "bold", "markers", "pin", "time", "unread")

    def __init__(self, base: Style, components: dict[str, Style]) -> None:
        """Combine a base style with the list's component styles.

        Args:
            base: The row's background style (cursor and marks already applied).
            components: Partial component styles by class name (see `COMPONENTS`).
        """
        self.base = base
        self.bold = base + Style(bold=True)
        self.time = base + components["thread-list--time"]
        self.pin = base + components["thread-list--pin"]
        self.unread = base + components["thread-list--unread"]
        self.markers = {
            status: (glyph, base + components[component])
            for status, (glyph, component) in _MARKERS.items()
        }


def draw_thread_row(
    row: RowData, *, width: int, when: str, palette: RowPalette, marked: bool
) -> Strip:
    """Draw a row: marker, pin, title (bold when unread), agent, relative time.

    Args:
        row: The row's values.
        width: Cells available.
        when: The relative time of its last activity (`5m`, `Jan 5`).
        palette: The styles of its state.
        marked: Whether it is marked for a bulk action (✓ replaces the marker).
    """
    _id, title, pinned, unread, status, _when, _archived, agent_slug = row
    base = palette.base
    segments: list[Segment] = [Segment(" ", base)]
    if marked:
        segments.append(Segment("✓", palette.bold))
    elif status in palette.markers:
        glyph, marker = palette.markers[status]
        segments.append(Segment(glyph, marker))
    elif unread:
        segments.append(Segment("●", palette.unread))
    else:
        segments.append(Segment(" ", base))
    segments.append(Segment("⚑", palette.pin) if pinned else Segment(" ", base))
    segments.append(Segment(" ", base))
    time_width = cell_len(when)
    title_width = max(1, width - 4 - time_width - 2)
    # The agent, muted, after the title: only when the title keeps ~12 cells.
    agent = f" · {agent_slug}" if agent_slug else ""
    agent_width = cell_len(agent)
    if agent and title_width - agent_width < 12:
        agent = ""
        agent_width = 0
    title_width -= agent_width
    title_cells = cell_len(title)
    if title_cells > title_width:
        title = _crop(title, title_width - 1) + "…"
        title_cells = cell_len(title)
    segments.append(Segment(title, palette.bold if unread else base))
    if agent:
        segments.append(Segment(agent, palette.time))
    gap = width - 4 - title_cells - agent_width - time_width - 1
    segments.append(Segment(" " * max(1, gap), base))
    segments.append(Segment(when, palette.time))
    segments.append(Segment(" ", base))
    if gap >= 1:
        # Exactly `width` cells already: one strip, not the three `fit` makes (each
        # strip builds seven caches, and a page move draws every visible row).
        return Strip(segments, width)
    return fit(segments, width, base)


def _crop(text: str, cells: int) -> str:
    """Cut text to at most `cells` terminal cells (wide characters count twice)."""
    if cells <= 0:
        return ""
    if text.isascii():
        # Sanitised ASCII is printable, one cell per character.
        return text[:cells]
    total = 0
    for position, char in enumerate(text):
        total += cell_len(char)
        if total > cells:
            return text[:position]
    return text
