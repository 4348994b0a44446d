"""Pickers: a file from disk, a knowledge document, a lead.

`FilePickerModal` is keyboard-first: type a path (Tab completes it from the folder's
entries, Enter picks a file or opens a folder), or go down into the folder tree and pick
with Enter. It only names a path: reading the file is the attachment loader's job, off
the event loop, on the screen that asked.

`RecordPickerModal` lists knowledge documents or leads through a fetch function (the
backend's `list_knowledge` / `list_leads`, filtered as you type) and returns the one
chosen.

File names, titles and lead fields are untrusted: labels are `Text` built from sanitised
strings (a file named `[@click=app.quit]` stays a name), never markup.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, Generic, TypeVar

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.suggester import Suggester
from textual.timer import Timer
from textual.widgets import DirectoryTree, Input, Label, OptionList, Static
from textual.widgets.option_list import Option

from tenex_tui.core.errors import TenexError
from tenex_tui.core.models import KnowledgeDoc, Lead, Page
from tenex_tui.core.text import sanitize_line
from tenex_tui.ui.format import display_error
from tenex_tui.ui.pending import human_size, short_type

MAX_COMPLETION_ENTRIES = 2000
"""Folder entries read to complete a path (a huge folder is not listed in full)."""
FILTER_DEBOUNCE = 0.15
"""Seconds of quiet typing before a picker asks the backend again."""
PICKER_PAGE = 50
"""Records per page in a picker."""

_CANCEL = Binding(
    "escape",
    "cancel",
    "Cancel",
    id="modal.cancel",
    tooltip="Close without doing anything",
)


def _expand(value: str, cwd: Path) -> Path:
    path = Path(os.path.expanduser(value.strip()))
    return path if path.is_absolute() else cwd / path


def complete_path(value: str, cwd: Path) -> str | None:
    """The first folder entry (by name) that extends `value`; a folder gets a `/`.

    Dot-files are offered only when the typed name starts with a dot. Blocking (it
    lists a folder): call it off the event loop.
    """
    if not value:
        return None
    head, sep, prefix = value.rpartition("/")
    folder_text = head + sep
    folder = _expand(folder_text, cwd) if folder_text else cwd
    names: list[tuple[str, bool]] = []
    try:
        with os.scandir(folder) as scan:
            for count, entry in enumerate(scan):
                if count >= MAX_COMPLETION_ENTRIES:
                    break
                if entry.name.startswith(prefix) and (
                    prefix.startswith(".") or not entry.name.startswith(".")
                ):
                    names.append((entry.name, _is_dir(entry)))
    except OSError:
        return None
    for name, is_dir in sorted(names):
        completed = folder_text + name + ("/" if is_dir else "")
        if completed != value:
            return completed
    return None


def _is_dir(entry: os.DirEntry[str]) -> bool:
    try:
        return entry.is_dir(follow_symlinks=False)
    except OSError:
        return False


class PathSuggester(Suggester):
    """Completes a path from the entries of its folder (listed off the event loop)."""

    def __init__(self, cwd: Path) -> None:
        super().__init__(use_cache=False, case_sensitive=True)
        self.cwd = cwd

    async def get_suggestion(self, value: str) -> str | None:
        return await asyncio.to_thread(complete_path, value, self.cwd)


class SafeDirectoryTree(DirectoryTree):
    """A folder tree that hides dot-files and never reads a file name as markup."""

    # Plain glyphs: emoji icons are double width, or missing, in many terminal fonts.
    ICON_NODE_EXPANDED = "▾ "
    ICON_NODE = "▸ "
    ICON_FILE = "  "

    def filter_paths(self, paths: Iterable[Path]) -> Iterable[Path]:
        return [path for path in paths if not path.name.startswith(".")]

    def process_label(self, label: str | Text) -> Text:
        # Tree parses a str label as markup; a file name is data.
        plain = label.plain if isinstance(label, Text) else label
        return Text(sanitize_line(plain, max_chars=200))


class PathInput(Input):
    """The path box: Tab accepts the completion shown in grey."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding(
            "tab",
            "complete",
            "Complete",
            priority=True,
            id="picker.complete",
            tooltip="Complete the path",
        ),
    ]

    def action_complete(self) -> None:
        # `_suggestion` is Input's grey completion text (what → would accept).
        if self._suggestion and self._suggestion != self.value:
            self.value = self._suggestion
            self.cursor_position = len(self.value)
        else:
            self.screen.focus_next()


class FilePickerModal(ModalScreen[Path | None]):
    """Pick a file: type its path (Tab completes) or choose it in the folder tree."""

    BINDINGS: ClassVar[list[BindingType]] = [
        _CANCEL,
        Binding(
            "down",
            "tree",
            "Folder tree",
            show=False,
            id="picker.tree",
            tooltip="Move into the folder tree",
        ),
    ]

    def __init__(
        self,
        *,
        title: str = "Attach a file",
        hint: str = "",
        cwd: Path | None = None,
    ) -> None:
        """Build the picker.

        Args:
            title: The dialog's title.
            hint: An extra line under the keys (other things the caller can attach).
            cwd: Where relative paths start and the tree is rooted (the process's
                working directory when None).
        """
        super().__init__(classes="modal")
        self._title = title
        self._hint = hint
        self.cwd = cwd or Path.cwd()
        """Where relative paths start."""

    def compose(self) -> ComposeResult:
        keys = "Tab completes · Enter picks a file or opens a folder · ↓ the tree · Esc"
        with Vertical(classes="dialog dialog-wide dialog-picker"):
            yield Label(Text(self._title), classes="dialog-title")
            yield PathInput(
                placeholder="A path, such as ~/notes/brief.md",
                suggester=PathSuggester(self.cwd),
                id="path",
            )
            yield SafeDirectoryTree(self.cwd, id="tree")
            hint = Text(keys, "dim")
            if self._hint:
                hint.append("\n" + self._hint, "dim")
            yield Static(hint, classes="dialog-hint")

    def on_mount(self) -> None:
        self.query_one("#path", PathInput).focus()

    def action_tree(self) -> None:
        if isinstance(self.focused, PathInput):
            self.query_one("#tree", SafeDirectoryTree).focus()

    def action_cancel(self) -> None:
        self.dismiss(None)

    @on(Input.Submitted, "#path")
    def path_submitted(self, event: Input.Submitted) -> None:
        value = event.value.strip()
        if not value:
            return
        self.check_path(_expand(value, self.cwd))

    @work(group="picker", exclusive=True, exit_on_error=False)
    async def check_path(self, path: Path) -> None:
        """A folder opens in the tree; a file is the answer (checked off the loop)."""
        is_dir = await asyncio.to_thread(_safe_is_dir, path)
        if is_dir:
            tree = self.query_one("#tree", SafeDirectoryTree)
            tree.path = path
            box = self.query_one("#path", PathInput)
            box.value = str(path).rstrip("/") + "/"
            box.cursor_position = len(box.value)
            return
        if self.is_current:
            self.dismiss(path)

    @on(DirectoryTree.FileSelected, "#tree")
    def file_selected(self, event: DirectoryTree.FileSelected) -> None:
        event.stop()
        if self.is_current:
            self.dismiss(event.path)


def _safe_is_dir(path: Path) -> bool:
    try:
        return path.is_dir()
    except OSError:
        return False


RecordT = TypeVar("RecordT")
RecordFetch = Callable[[str | None, str | None], Awaitable[Page[RecordT]]]
"""Fetches a page: (title filter or None, cursor or None)."""


def knowledge_label(doc: KnowledgeDoc) -> Text:
    """Two lines: the document's title, then its type, size and chunk count."""
    label = Text()
    label.append(sanitize_line(doc.title, max_chars=70) or "(untitled)", "bold")
    meta = f"\n  {short_type(doc.media_type)} · {human_size(doc.size)}"
    meta += f" · {doc.chunk_count} chunk{'s' if doc.chunk_count != 1 else ''}"
    if doc.source:
        meta += " · " + sanitize_line(doc.source, max_chars=50)
    label.append(meta, "dim")
    return label


LEAD_SUMMARY_FIELDS = ("company", "title", "email", "stage", "status", "source")
"""The lead fields a one-line summary picks first, when present."""


def lead_summary(lead: Lead, *, limit: int = 3) -> str:
    """A few of a lead's fields, `company · title · email`, sanitised."""
    shown: list[str] = []
    lowered = {str(key).lower(): value for key, value in lead.fields.items()}
    for key in LEAD_SUMMARY_FIELDS:
        value = lowered.get(key)
        if value not in (None, "") and len(shown) < limit:
            shown.append(sanitize_line(str(value), max_chars=40))
    return " · ".join(shown)


def lead_label(lead: Lead) -> Text:
    """Two lines: the lead's name, then a few of its fields."""
    label = Text()
    label.append(sanitize_line(lead.name, max_chars=70) or "(no name)", "bold")
    summary = lead_summary(lead)
    if summary:
        label.append("\n  " + summary, "dim")
    return label


@dataclass(frozen=True)
class PickerKind(Generic[RecordT]):
    """What a `RecordPickerModal` lists."""

    title: str
    """The dialog's title."""
    placeholder: str
    """The filter box's placeholder."""
    empty: str
    """What the list says when nothing matches (or there is nothing yet)."""
    label: Callable[[RecordT], Text]
    """Draws one record."""


KNOWLEDGE_PICKER: PickerKind[KnowledgeDoc] = PickerKind(
    title="Attach a knowledge document",
    placeholder="Filter by title…",
    empty="No knowledge documents. Add some with F2 (the knowledge browser) or "
    "`tenex-tui knowledge add PATH`.",
    label=knowledge_label,
)
LEAD_PICKER: PickerKind[Lead] = PickerKind(
    title="Attach a lead",
    placeholder="Filter by name…",
    empty="No leads. Import some with `tenex-tui leads import FILE.csv`.",
    label=lead_label,
)


class RecordPickerModal(ModalScreen[RecordT | None], Generic[RecordT]):
    """Choose a knowledge document or a lead; the list filters as you type."""

    BINDINGS: ClassVar[list[BindingType]] = [
        _CANCEL,
        Binding("down", "move(1)", show=False, id="picker.down", tooltip="Next"),
        Binding("up", "move(-1)", show=False, id="picker.up", tooltip="Previous"),
    ]

    def __init__(self, kind: PickerKind[RecordT], fetch: RecordFetch[RecordT]) -> None:
        super().__init__(classes="modal")
        self.kind: PickerKind[RecordT] = kind
        """What is listed."""
        self._fetch: RecordFetch[RecordT] = fetch
        self._records: list[RecordT] = []
        self._cursor: str | None = None
        self._query: str | None = None
        self._timer: Timer | None = None
        self.loaded = False
        """True once the first page arrived (for tests)."""

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog dialog-wide dialog-picker"):
            yield Label(Text(self.kind.title), classes="dialog-title")
            yield Input(placeholder=self.kind.placeholder, id="record-filter")
            yield OptionList(id="records")
            yield Static(
                Text(
                    "Type to filter · ↑/↓ choose · Enter attaches · Esc cancels", "dim"
                ),
                classes="dialog-hint",
            )

    def on_mount(self) -> None:
        self.query_one("#record-filter", Input).focus()
        self.load(None, None)

    @property
    def records(self) -> list[RecordT]:
        """The records listed, in order."""
        return list(self._records)

    @work(group="picker", exclusive=True, exit_on_error=False)
    async def load(self, query: str | None, cursor: str | None) -> None:
        """Fetch a page (the first of a new filter, or the next one)."""
        try:
            page = await self._fetch(query, cursor)
        except TenexError as error:
            self.notify(display_error(str(error)), severity="error", markup=False)
            return
        options = self.query_one("#records", OptionList)
        if cursor is None:
            self._records = []
            options.clear_options()
        start = len(self._records)
        self._records.extend(page.items)
        self._cursor = page.next_cursor
        self._query = query
        options.add_options(
            [
                Option(self.kind.label(record), id=str(start + index))
                for index, record in enumerate(page.items)
            ]
        )
        if not self._records:
            options.add_option(
                Option(Text(self.kind.empty, "dim"), id="empty", disabled=True)
            )
        elif options.highlighted is None:
            options.highlighted = 0
        self.loaded = True

    @on(Input.Changed, "#record-filter")
    def filter_changed(self, event: Input.Changed) -> None:
        if self._timer is not None:
            self._timer.stop()
        query = event.value.strip() or None
        self._timer = self.set_timer(FILTER_DEBOUNCE, lambda: self.load(query, None))

    def action_move(self, step: int) -> None:
        options = self.query_one("#records", OptionList)
        if not self._records:
            return
        current = options.highlighted if options.highlighted is not None else -1
        target = min(max(current + step, 0), len(self._records) - 1)
        options.highlighted = target
        if target >= len(self._records) - 5 and self._cursor is not None:
            cursor, self._cursor = self._cursor, None
            self.load(self._query, cursor)

    @on(Input.Submitted, "#record-filter")
    def filter_submitted(self) -> None:
        options = self.query_one("#records", OptionList)
        if options.highlighted is not None:
            self._choose(options.highlighted)

    @on(OptionList.OptionSelected, "#records")
    def option_selected(self, event: OptionList.OptionSelected) -> None:
        if event.option.id is not None and event.option.id.isdigit():
            self._choose(int(event.option.id))

    def _choose(self, index: int) -> None:
        if 0 <= index < len(self._records) and self.is_current:
            self.dismiss(self._records[index])

    def action_cancel(self) -> None:
        self.dismiss(None)
