"""Full-text search (`/`): type words, pick a hit, land on the message.

Results are a virtual list (two lines per hit: thread and snippet), paged through the
backend's search cursor as the cursor nears the end. The query is searched as the user
types, debounced; a newer query cancels an older one (an exclusive worker).
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import ClassVar

from rich.segment import Segment
from rich.style import Style
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.strip import Strip
from textual.timer import Timer
from textual.widgets import Input, Label, Static

from tenex_tui.core.errors import TenexError
from tenex_tui.core.models import Page, SearchHit
from tenex_tui.core.text import sanitize_line
from tenex_tui.ui.format import display_error, relative_time, thread_title
from tenex_tui.ui.widgets.virtual_list import VirtualList, fit

SearchFunction = Callable[[str, str | None], Awaitable[Page[SearchHit]]]
"""Runs a query from a cursor (None: the first page)."""

DEBOUNCE = 0.2
"""Seconds of quiet typing before a query runs."""


class SearchResults(VirtualList):
    """Search hits, two lines each; Enter picks one."""

    ROW_HEIGHT = 2
    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "search-results--cursor",
        "search-results--title",
        "search-results--meta",
        "search-results--snippet",
        "search-results--match",
        "search-results--empty",
    }

    def __init__(self, *, now: Callable[[], datetime], id: str | None = None) -> None:  # noqa: A002
        super().__init__(id=id)
        self._now = now
        self.hits: list[SearchHit] = []
        """The hits loaded so far."""
        self.words: list[str] = []
        """The query's words, highlighted in snippets."""
        self.more = False
        """Whether another page exists."""
        self.empty_text = "Type to search every message and title."
        """What an empty list says."""

    @property
    def row_count(self) -> int:
        return len(self.hits) + (1 if self.more else 0)

    def set_hits(self, hits: list[SearchHit], *, more: bool, words: list[str]) -> None:
        """Replace the hits (a new query)."""
        self.hits = list(hits)
        self.more = more
        self.words = words
        self.cursor = -1
        self.refresh_rows()
        self.scroll_to(y=0, animate=False, force=True)

    def add_hits(self, hits: list[SearchHit], *, more: bool) -> None:
        """Append the next page."""
        self.hits.extend(hits)
        self.more = more
        self.refresh_rows()

    @property
    def highlighted(self) -> SearchHit | None:
        """The hit under the cursor."""
        if 0 <= self.cursor < len(self.hits):
            return self.hits[self.cursor]
        return None

    def render_empty(self, y: int, width: int) -> Strip:
        base = self.rich_style
        if y != 1:
            return Strip.blank(width, base)
        style = base + self.get_component_rich_style(
            "search-results--empty", partial=True
        )
        return fit([Segment("  " + self.empty_text, style)], width, base)

    def render_row(self, index: int, line: int, width: int, selected: bool) -> Strip:
        base = self.rich_style
        if selected:
            base = base + self.get_component_rich_style(
                "search-results--cursor", partial=True
            )
        if index >= len(self.hits):
            text = "  loading more…" if line == 0 else ""
            return fit([Segment(text, base)], width, base)
        hit = self.hits[index]
        if line == 0:
            title = self.get_component_rich_style("search-results--title", partial=True)
            meta = self.get_component_rich_style("search-results--meta", partial=True)
            segments = [
                Segment(
                    " " + thread_title(hit.thread_title, max_chars=80), base + title
                )
            ]
            details: list[str] = []
            if hit.role:
                details.append("you" if hit.role == "user" else hit.role)
            if hit.created_at is not None:
                details.append(relative_time(hit.created_at, self._now()))
            if hit.message_id is None:
                details.append("title")
            if details:
                segments.append(Segment("  " + " · ".join(details), base + meta))
            return fit(segments, width, base)
        snippet_style = base + self.get_component_rich_style(
            "search-results--snippet", partial=True
        )
        match_style = base + self.get_component_rich_style(
            "search-results--match", partial=True
        )
        snippet = sanitize_line(hit.snippet, max_chars=max(10, width * 2))
        return fit(
            [
                Segment("   ", base),
                *_highlight(snippet, self.words, snippet_style, match_style),
            ],
            width,
            base,
        )


def _highlight(
    text: str, words: list[str], style: Style, match: Style
) -> list[Segment]:
    if "«" in text and "»" in text:
        # The backend marks what matched (stemming included): trust its markers.
        marked: list[Segment] = []
        for index, part in enumerate(re.split("[«»]", text)):
            if part:
                marked.append(Segment(part, match if index % 2 else style))
        return marked
    if not words:
        return [Segment(text, style)]
    pattern = re.compile("|".join(re.escape(word) for word in words), re.IGNORECASE)
    segments = []
    position = 0
    for found in pattern.finditer(text):
        if found.start() > position:
            segments.append(Segment(text[position : found.start()], style))
        segments.append(Segment(found.group(), match))
        position = found.end()
    if position < len(text):
        segments.append(Segment(text[position:], style))
    return segments


class SearchModal(ModalScreen[SearchHit | None]):
    """Search messages and titles; Enter opens the highlighted hit."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding(
            "escape", "cancel", "Close", id="search.close", tooltip="Close the search"
        ),
        Binding(
            "down", "move(1)", "Next", show=False, id="search.down", tooltip="Next hit"
        ),
        Binding(
            "up",
            "move(-1)",
            "Previous",
            show=False,
            id="search.up",
            tooltip="Previous hit",
        ),
        Binding(
            "pagedown",
            "move(10)",
            show=False,
            id="search.page_down",
            tooltip="Ten hits down",
        ),
        Binding(
            "pageup",
            "move(-10)",
            show=False,
            id="search.page_up",
            tooltip="Ten hits up",
        ),
    ]

    def __init__(
        self,
        search: SearchFunction,
        *,
        now: Callable[[], datetime],
        query: str = "",
    ) -> None:
        super().__init__(classes="modal")
        self._search = search
        self._now = now
        self._initial = query
        self._timer: Timer | None = None
        self._query = ""
        self._cursor: str | None = None
        self._fetching = False

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog dialog-search"):
            yield Label("Search messages and titles", classes="dialog-title")
            yield Input(value=self._initial, placeholder="Words to find", id="query")
            yield SearchResults(now=self._now, id="results")
            yield Static(
                "↑/↓ choose · Enter opens · Esc closes",
                classes="dialog-hint",
                markup=False,
            )

    def on_mount(self) -> None:
        self.query_one("#query", Input).focus()
        if self._initial.strip():
            self._run(self._initial)

    @property
    def results(self) -> SearchResults:
        """The results list."""
        return self.query_one("#results", SearchResults)

    @on(Input.Changed, "#query")
    def query_changed(self, event: Input.Changed) -> None:
        if self._timer is not None:
            self._timer.stop()
        value = event.value
        self._timer = self.set_timer(DEBOUNCE, lambda: self._run(value))

    @on(Input.Submitted, "#query")
    def query_submitted(self, event: Input.Submitted) -> None:
        hit = self.results.highlighted
        if hit is not None and event.value.strip() == self._query:
            self._answer(hit)
        else:
            if self._timer is not None:
                self._timer.stop()
            self._run(event.value, pick_first=True)

    def _run(self, value: str, *, pick_first: bool = False) -> None:
        query = value.strip()
        self._query = query
        results = self.results
        if not query:
            results.empty_text = "Type to search every message and title."
            results.set_hits([], more=False, words=[])
            return
        results.empty_text = "Searching…"
        self.run_query(query, pick_first)

    @work(group="search", exclusive=True, exit_on_error=False)
    async def run_query(self, query: str, pick_first: bool) -> None:
        """Fetch the first page of hits for a query."""
        try:
            page = await self._search(query, None)
        except TenexError as error:
            if query == self._query:
                self.results.empty_text = display_error(str(error))
                self.results.set_hits([], more=False, words=[])
            return
        if query != self._query:
            return
        self._cursor = page.next_cursor
        results = self.results
        results.empty_text = "No matches."
        results.set_hits(
            page.items, more=page.next_cursor is not None, words=query.split()
        )
        if page.items:
            results.move_cursor(0)
            if pick_first:
                self._answer(page.items[0])

    @work(group="search-more", exit_on_error=False)
    async def fetch_more(self) -> None:
        """Fetch the next page of hits."""
        query, cursor = self._query, self._cursor
        if cursor is None or self._fetching:
            return
        self._fetching = True
        try:
            page = await self._search(query, cursor)
        except TenexError:
            self.results.add_hits([], more=False)
            return
        finally:
            self._fetching = False
        if query == self._query:
            self._cursor = page.next_cursor
            self.results.add_hits(page.items, more=page.next_cursor is not None)

    @on(VirtualList.CursorMoved, "#results")
    def cursor_moved(self, event: VirtualList.CursorMoved) -> None:
        if self._cursor is not None and event.index >= len(self.results.hits) - 10:
            self.fetch_more()

    @on(VirtualList.RowActivated, "#results")
    def row_activated(self, event: VirtualList.RowActivated) -> None:
        hit = self.results.highlighted
        if hit is not None:
            self._answer(hit)

    def action_move(self, rows: int) -> None:
        results = self.results
        if results.row_count:
            results.move_cursor(
                max(0, results.cursor) + rows if results.cursor >= 0 else 0
            )

    def action_cancel(self) -> None:
        self._answer(None)

    def _answer(self, hit: SearchHit | None) -> None:
        # Once: a second Enter typed before the first closed the dialog must not close
        # the screen under it.
        if self.is_current:
            self.dismiss(hit)
