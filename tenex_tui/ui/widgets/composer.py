"""The composer: a multi-line text area where Enter sends and Ctrl+J adds a line.

Shift+Enter also adds a line in terminals that report it (the kitty keyboard protocol:
kitty, WezTerm, Ghostty, iTerm2…); in legacy terminals it sends the same byte as Enter,
which is why Ctrl+J is the documented key (FACTS.md). Priority bindings run before the
text area's own key handler, so Enter never inserts a newline here.

The composer does not talk to the backend: it posts `Submitted`, and the screen locks
it (`locked`) while a reply streams. Attachments work the same way: Ctrl+O (a file),
Ctrl+G (a knowledge document) and Ctrl+L (a lead) post `AttachRequested`; the screen
runs the picker and the loader, and hands the result down in `attachments`, which the
next `Submitted` carries.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

from textual.binding import Binding, BindingType
from textual.message import Message
from textual.reactive import var
from textual.widgets import TextArea

from tenex_tui.ui.pending import AttachmentKind, PendingAttachment

PLACEHOLDER = "Message  (Enter sends · Ctrl+J new line)"
LOCKED_PLACEHOLDER = "A reply is being written…  Esc stops it"
WAITING_PLACEHOLDER = "Your message waits for the database…  Esc takes it back"

_ATTACH_KINDS: dict[str, AttachmentKind] = {
    "file": "file",
    "knowledge": "knowledge",
    "lead": "lead",
}


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
        Binding(
            "ctrl+o",
            "attach('file')",
            "Attach",
            id="composer.attach",
            tooltip="Attach a file to the message",
        ),
        Binding(
            "ctrl+g",
            "attach('knowledge')",
            "Knowledge",
            show=False,
            id="composer.knowledge",
            tooltip="Attach a knowledge document to the message",
        ),
        Binding(
            "ctrl+l",
            "attach('lead')",
            "Lead",
            show=False,
            id="composer.lead",
            tooltip="Attach a lead to the message",
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
        attachments: tuple[PendingAttachment, ...] = field(default=())
        """Files, knowledge documents and a lead to send with the text."""

        @property
        def control(self) -> Composer:
            """The composer that posted the message."""
            return self.composer

    @dataclass
    class AttachRequested(Message):
        """The user wants to attach something (the screen shows a picker)."""

        composer: Composer
        """The composer."""
        kind: AttachmentKind
        """What to pick."""

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
        self.attachments: list[PendingAttachment] = []
        """What goes with the next message (set by the screen; shown as chips)."""

    def action_submit(self) -> None:
        """Post the text, unless a reply is streaming or there is nothing to send.

        Enter is a priority binding, so it runs when the app *reads* the key, while
        characters typed just before it (a fast typist, a paste, `tmux send-keys`)
        may still wait in this widget's queue: the send waits behind them, or it
        would see the text without its last characters (or none, and do nothing).
        """
        self.call_later(self._submit_now)

    def _submit_now(self) -> None:
        if self.locked:
            self.app.bell()
            return
        text = self.text
        if not text.strip():
            return
        self.post_message(
            self.Submitted(self, text, self.editing, tuple(self.attachments))
        )

    def action_attach(self, kind: str) -> None:
        """Ask the screen for a picker of files, knowledge documents or leads."""
        chosen = _ATTACH_KINDS.get(kind)
        if chosen is not None:
            self.post_message(self.AttachRequested(self, chosen))

    def action_newline(self) -> None:
        """Insert a line break at the cursor (after any characters still queued)."""
        self.call_later(self._newline_now)

    def _newline_now(self) -> None:
        if self.locked:
            return
        start, end = self.selection
        self.replace("\n", start, end, maintain_selection_offset=False)

    def watch_locked(self, locked: bool) -> None:
        self.read_only = locked
        self.placeholder = LOCKED_PLACEHOLDER if locked else PLACEHOLDER
        self.set_class(locked, "-locked")

    def show_waiting(self, waiting: bool) -> None:
        """Say (while locked) that the message waits for the database, not a reply."""
        if self.locked:
            self.placeholder = WAITING_PLACEHOLDER if waiting else LOCKED_PLACEHOLDER

    def watch_editing(self, editing: str | None) -> None:
        self.set_class(editing is not None, "-editing")
        self.border_title = (
            "Editing your last message — Enter resends" if editing else None
        )

    def set_text(self, text: str) -> None:
        """Replace the whole text and put the cursor at its end."""
        self.load_text(text)
        self.move_cursor(self.document.end)
