"""Attachment chips: under the composer before a send, and on messages in history.

A chip says what is attached: its kind (▤ file, § knowledge, @ lead), name, type and
size, and ⚠ when the loader changed or cut something. Names come from files, documents
and leads, so they are untrusted: every chip is built as `Text` from sanitised strings,
never from markup.

`AttachmentChips` is the focusable row under the composer (←/→ pick a chip, Delete
removes it, and the selected chip's warnings are spelled out under the row);
`message_extras` is what a finished message shows under its text: its chips, and for a
message written offline on a remote workspace, that it is waiting to be sent.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

from rich.console import Console, ConsoleOptions, Group, RenderableType, RenderResult
from rich.style import Style
from rich.text import Text
from textual.binding import Binding, BindingType
from textual.message import Message as TextualMessage
from textual.reactive import var
from textual.widget import Widget

from tenex_tui.core.models import Attachment, Message
from tenex_tui.core.text import sanitize, sanitize_line
from tenex_tui.ui.format import display_error
from tenex_tui.ui.pending import PendingAttachment, human_size, short_type

KIND_ICONS = {"file": "▤", "knowledge": "§", "lead": "@"}
"""The glyph in front of a chip, by kind."""
KIND_LABELS = {"knowledge": "knowledge", "lead": "lead"}
"""What a chip says instead of a media type for documents and leads."""
LOCAL_MESSAGE_PREFIX = "msg_local"
"""Messages written offline on a remote workspace have ids with this prefix until the
outbox sends them (the mirror's convention); such a message is shown as pending."""
PENDING_NOTE = "◷ pending — will send when online"
HELD_MESSAGE_PREFIX = "msg_held"
"""Id prefix of a message the app holds while the database is locked by another
process (test-plan T5): shown, not stored yet."""
HELD_NOTE = "◷ waiting for the database — saved as soon as it is free"


def chip_text(
    *,
    kind: str,
    name: str,
    media_type: str,
    size: int,
    warn: bool,
    style: Style,
    warn_style: Style,
) -> Text:
    """One chip: `▤ report.pdf · PDF · 1.2 MB ⚠` (the name is sanitised here)."""
    text = Text(no_wrap=True)
    text.append(f" {KIND_ICONS.get(kind, '▤')} ", style)
    text.append(sanitize_line(name, max_chars=40) or "(no name)", style)
    label = KIND_LABELS.get(kind) or short_type(media_type)
    details = f" · {label}"
    if size and kind != "lead":
        details += f" · {human_size(size)}"
    text.append(details + " ", style)
    if warn:
        text.append("⚠ ", style + warn_style)
    return text


def pending_chip(item: PendingAttachment, style: Style, warn_style: Style) -> Text:
    """The chip of an attachment waiting in the composer."""
    return chip_text(
        kind=item.kind,
        name=item.name,
        media_type=item.media_type,
        size=item.size,
        warn=bool(item.warnings) or item.truncated,
        style=style,
        warn_style=warn_style,
    )


def stored_chip(item: Attachment, style: Style, warn_style: Style) -> Text:
    """The chip of an attachment stored on a message."""
    return chip_text(
        kind=item.kind,
        name=item.name,
        media_type=item.media_type,
        size=item.size,
        warn=item.truncated,
        style=style,
        warn_style=warn_style,
    )


class ChipRow:
    """Chips side by side, wrapping *between* chips, never inside one (a chip wider
    than the line is cut with an ellipsis)."""

    def __init__(self, chips: Sequence[Text], gap: int = 2) -> None:
        self.chips = list(chips)
        self.gap = gap

    def __rich_console__(
        self, console: Console, options: ConsoleOptions
    ) -> RenderResult:
        width = max(options.max_width, 1)
        line = Text(no_wrap=True)
        for chip in self.chips:
            chip = chip.copy()
            if chip.cell_len > width:
                chip.truncate(width, overflow="ellipsis")
            needed = chip.cell_len + (self.gap if line.cell_len else 0)
            if line.cell_len and line.cell_len + needed > width:
                yield line
                line = Text(no_wrap=True)
            if line.cell_len:
                line.append(" " * self.gap)
            line.append_text(chip)
        if line.cell_len:
            yield line

    @property
    def plain(self) -> str:
        """The chips as one line of plain text (for tests and logs)."""
        return (" " * self.gap).join(chip.plain for chip in self.chips)


def is_pending(message: Message) -> bool:
    """True for a message written offline that the outbox has not sent yet."""
    return (
        message.role == "user"
        and message.id.startswith(LOCAL_MESSAGE_PREFIX)
        and not message.error
    )


def message_extras(message: Message, styles: dict[str, Style]) -> list[RenderableType]:
    """What a finished message shows under its text.

    Its attachments as chips (with ⚠ when one was cut), then, for a message of yours
    written offline, whether it waits to be sent or why the remote refused it (the
    `Not sent: …` error the outbox leaves on it).

    Args:
        message: The message.
        styles: The message view's component styles by short name (`meta`,
            `warning`, `error`).
    """
    parts: list[RenderableType] = []
    meta = styles.get("meta", Style())
    warning = styles.get("warning", Style())
    if message.attachments:
        chips = [stored_chip(a, meta, warning) for a in message.attachments]
        parts.append(ChipRow(chips))
        if any(a.truncated for a in message.attachments):
            parts.append(
                Text("⚠ cut to fit: the model saw only the beginning", meta + warning)
            )
    if message.role == "user":
        if message.id.startswith(HELD_MESSAGE_PREFIX):
            parts.append(Text(HELD_NOTE, warning))
        elif is_pending(message):
            parts.append(Text(PENDING_NOTE, warning))
        elif message.error:
            parts.append(
                Text("✗ " + display_error(message.error), styles.get("error", Style()))
            )
    return parts


class AttachmentChips(Widget, can_focus=True):
    """The chips of the next message, under the composer.

    Focus it (Tab from the composer) to pick a chip with ←/→ and remove it with
    Delete; it posts `Removed` and the screen updates the composer.
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding(
            "left,h",
            "previous",
            "Previous",
            show=False,
            id="chips.previous",
            tooltip="Select the previous attachment",
        ),
        Binding(
            "right,l",
            "next",
            "Next",
            show=False,
            id="chips.next",
            tooltip="Select the next attachment",
        ),
        Binding(
            "delete,backspace,x",
            "remove",
            "Remove",
            id="composer.detach",
            tooltip="Remove the selected attachment from the message",
        ),
        Binding(
            "up,escape",
            "back",
            "Back",
            show=False,
            id="chips.back",
            tooltip="Back to the message",
        ),
    ]

    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "attachment-chips--chip",
        "attachment-chips--selected",
        "attachment-chips--warning",
        "attachment-chips--hint",
    }

    selected: var[int] = var(0)
    """Index of the selected chip."""

    @dataclass
    class Removed(TextualMessage):
        """The user removed a chip."""

        chips: AttachmentChips
        """The chips row."""
        index: int
        """Which chip (in `items`)."""

        @property
        def control(self) -> AttachmentChips:
            """The chips row that posted the message."""
            return self.chips

    @dataclass
    class Left(TextualMessage):
        """The user asked to go back to the composer."""

        chips: AttachmentChips
        """The chips row."""

        @property
        def control(self) -> AttachmentChips:
            """The chips row that posted the message."""
            return self.chips

    def __init__(self, *, id: str | None = None) -> None:  # noqa: A002
        super().__init__(id=id)
        self.items: list[PendingAttachment] = []
        """The attachments shown, in order."""

    def show(self, items: Sequence[PendingAttachment]) -> None:
        """Show these attachments (the row hides itself when there are none)."""
        self.items = list(items)
        self.display = bool(self.items)
        self.selected = min(self.selected, max(len(self.items) - 1, 0))
        self.refresh(layout=True)

    def watch_selected(self) -> None:
        self.refresh(layout=True)

    def on_focus(self) -> None:
        self.refresh(layout=True)

    def on_blur(self) -> None:
        self.refresh(layout=True)

    def render(self) -> RenderableType:
        chip = self.get_component_rich_style("attachment-chips--chip", partial=True)
        picked = self.get_component_rich_style(
            "attachment-chips--selected", partial=True
        )
        warn = self.get_component_rich_style("attachment-chips--warning", partial=True)
        hint = self.get_component_rich_style("attachment-chips--hint", partial=True)
        chips = [
            pending_chip(
                item,
                chip + picked if self.has_focus and i == self.selected else chip,
                warn,
            )
            for i, item in enumerate(self.items)
        ]
        parts: list[RenderableType] = [ChipRow(chips)]
        if self.has_focus and 0 <= self.selected < len(self.items):
            item = self.items[self.selected]
            notes = [sanitize(w) for w in item.warnings]
            if item.truncated and not notes:
                notes.append("The text was cut to fit the attachment budget.")
            for note in notes[:3]:
                parts.append(Text("⚠ " + note, hint))
            parts.append(Text("Delete removes it · ←/→ choose · Esc back", hint))
        return Group(*parts)

    def action_previous(self) -> None:
        if self.selected > 0:
            self.selected -= 1

    def action_next(self) -> None:
        if self.selected < len(self.items) - 1:
            self.selected += 1

    def action_remove(self) -> None:
        if 0 <= self.selected < len(self.items):
            self.post_message(self.Removed(self, self.selected))

    def action_back(self) -> None:
        self.post_message(self.Left(self))
