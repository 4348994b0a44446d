"""The keys screen (`?` / F1): every binding by area, as the user's keymap has them."""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Label, Static

KeyRow = tuple[str, str]
"""(keys as displayed, what they do)."""

HelpSection = tuple[str, Sequence[KeyRow]]
"""A titled group of key rows."""


class HelpModal(ModalScreen[None]):
    """Lists the keys of every area; Esc, q or ? closes it."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding(
            "escape,q,question_mark,f1",
            "close",
            "Close",
            id="help.close",
            tooltip="Close the keys",
        ),
    ]

    def __init__(
        self, sections: Sequence[HelpSection], *, notes: Sequence[str] = ()
    ) -> None:
        super().__init__(classes="modal")
        self.sections = sections
        """What the screen lists."""
        self._notes = notes

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog dialog-help"):
            yield Label("Keys", classes="dialog-title")
            with Horizontal(id="help-columns"):
                # The sidebar's keys on the left, everything else on the right.
                for column in (self.sections[:1], self.sections[1:]):
                    with VerticalScroll(classes="help-column"):
                        for title, rows in column:
                            yield Label(title, classes="help-section")
                            yield Static(_table(rows), classes="help-table")
            for note in self._notes:
                yield Static(Text(note, "dim"), classes="help-note")
            yield Static(
                Text(
                    "Esc closes · keys can be changed in config.toml [ui.keys]", "dim"
                ),
                classes="dialog-hint",
            )

    def action_close(self) -> None:
        self.dismiss(None)


def _table(rows: Sequence[KeyRow]) -> Table:
    table = Table.grid(padding=(0, 2))
    table.add_column(style="bold", no_wrap=True, min_width=10)
    table.add_column()
    for keys, description in rows:
        table.add_row(Text(keys), Text(description))
    return table
