"""The composer: a multi-line text area where Enter sends and Ctrl+J adds a line.

Shift+Enter also adds a line in terminals that report it (the kitty keyboard protocol:
kitty, WezTerm, Ghostty, iTerm2…); in legacy terminals it sends the same byte as Enter,
which is why Ctrl+J is the documented key (FACTS.md). Priority bindings run before the
text area's own key handler, so Enter never inserts a newline here.

The composer does not talk to the backend: it posts `Submitted`, and the screen locks
it (`locked`) while a reply streams.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from textual.binding import Binding, BindingType
from textual.message import Message
from textual.reactive import var
from textual.widgets import TextArea

PLACEHOLDER = "Message  (Enter sends · Ctrl+J new line)"
LOCKED_PLACEHOLDER = "A reply is being written…  Esc stops it"


class Composer(TextArea):
    """Where the user writes; posts `Submitted` on Enter."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding(
            "enter",
            "submit",
            "Send",
            priority=True,
            id="composer.send",
            tooltip="Send the message",
        ),
        Binding(
            "ctrl+j,shift+enter",
            "newline",
            "New line",
            priority=True,
            id="composer.newline",
            key_display="^j",
            tooltip="New line (Ctrl+J everywhere; Shift+Enter where reported)",
        ),
    ]

    locked: var[bool] = var(False)
    """True while a reply streams: typing and sending are paused."""

    editing: var[str | None] = var(None)
    """The id of the user message being edited (`e`), or None for a new message."""

    @dataclass
    class Submitted(Message):
        """The user pressed Enter with some text."""

        composer: Composer
        """The composer."""
        text: str
        """What was typed (not stripped: leading spaces may matter in code)."""
        editing: str | None
        """The user message being replaced, when editing."""

        @property
        def control(self) -> Composer:
            """The composer that posted the message."""
            return self.composer

    def __init__(self, *, id: str | None = None) -> None:  # noqa: A002
        super().__init__(
            id=id,
            soft_wrap=True,
            show_line_numbers=False,
            tab_behavior="focus",
            placeholder=PLACEHOLDER,
            compact=True,
        )

    def action_submit(self) -> None:
        """Post the text, unless a reply is streaming or there is nothing to send."""
        if self.locked:
            self.app.bell()
            return
        text = self.text
        if not text.strip():
            return
        self.post_message(self.Submitted(self, text, self.editing))

    def action_newline(self) -> None:
        """Insert a line break at the cursor."""
        if self.locked:
            return
        start, end = self.selection
        self.replace("\n", start, end, maintain_selection_offset=False)

    def watch_locked(self, locked: bool) -> None:
        self.read_only = locked
        self.placeholder = LOCKED_PLACEHOLDER if locked else PLACEHOLDER
        self.set_class(locked, "-locked")

    def watch_editing(self, editing: str | None) -> None:
        self.set_class(editing is not None, "-editing")
        self.border_title = (
            "Editing your last message — Enter resends" if editing else None
        )

    def set_text(self, text: str) -> None:
        """Replace the whole text and put the cursor at its end."""
        self.load_text(text)
        self.move_cursor(self.document.end)
