"""Modal dialogs: confirm, rename, new thread, open a link.

Each returns its answer through `dismiss` (use `push_screen(..., callback)` or
`push_screen_wait`), once: `OnceModal.answer` ignores a second answer, such as a
second Enter typed before the first one closed the dialog (it would otherwise close the
screen *under* the dialog). Untrusted text (titles, URLs, agent names) is shown as
`Text`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, TypeVar
from urllib.parse import urlsplit

from rich.text import Text
from textual import events, on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, OptionList, Select, Static, TextArea
from textual.widgets.option_list import Option

from tenex_tui.core.models import Agent
from tenex_tui.core.payloads import MAX_SYSTEM_PROMPT_CHARS, MAX_TITLE_CHARS
from tenex_tui.core.text import sanitize, sanitize_line

ResultT = TypeVar("ResultT")


class OnceModal(ModalScreen[ResultT]):
    """A modal dialog that answers once."""

    def answer(self, result: ResultT) -> None:
        """Close the dialog with `result`, unless it already answered."""
        if self.is_current:
            self.dismiss(result)


class ConfirmModal(OnceModal[bool]):
    """Ask a yes/no question; Enter or y confirms, Esc or n cancels."""

    # No button takes focus: Enter must mean what the dialog says (confirm), not
    # "press whichever button happens to be focused".
    AUTO_FOCUS = ""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding(
            "escape,n",
            "cancel",
            "Cancel",
            id="modal.cancel",
            tooltip="Close without doing anything",
        ),
        Binding(
            "enter,y",
            "confirm",
            "Confirm",
            id="modal.confirm",
            tooltip="Do what the dialog says",
        ),
    ]

    def __init__(self, title: str, body: Text, *, confirm: str = "Delete") -> None:
        super().__init__(classes="modal")
        self._title = title
        self._body = body
        self._confirm = confirm

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label(Text(self._title), classes="dialog-title")
            yield Static(self._body, classes="dialog-body")
            with Horizontal(classes="dialog-buttons"):
                yield Button("Cancel (Esc)", id="cancel")
                yield Button(f"{self._confirm} (Enter)", id="confirm", variant="error")

    def action_confirm(self) -> None:
        self.answer(True)

    def action_cancel(self) -> None:
        self.answer(False)

    @on(Button.Pressed, "#confirm")
    def confirm_pressed(self) -> None:
        self.answer(True)

    @on(Button.Pressed, "#cancel")
    def cancel_pressed(self) -> None:
        self.answer(False)


class RenameModal(OnceModal[str | None]):
    """Edit a thread's title; Enter saves, Esc cancels."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding(
            "escape",
            "cancel",
            "Cancel",
            id="modal.cancel",
            tooltip="Close without doing anything",
        ),
    ]

    def __init__(self, title: str) -> None:
        super().__init__(classes="modal")
        self._title = title

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label("Rename thread", classes="dialog-title")
            yield Input(
                value=self._title,
                placeholder="A title",
                max_length=MAX_TITLE_CHARS,
                id="title",
            )
            yield Static(
                Text("Enter saves · Esc cancels", "dim"), classes="dialog-hint"
            )

    def on_mount(self) -> None:
        self.query_one("#title", Input).focus()

    @on(Input.Submitted, "#title")
    def save(self, event: Input.Submitted) -> None:
        title = event.value.strip()
        if not title:
            self.notify(
                "A title needs some visible text.", severity="warning", markup=False
            )
            return
        self.answer(title)

    def action_cancel(self) -> None:
        self.answer(None)


@dataclass(frozen=True)
class NewThreadRequest:
    """What the new-thread dialog asks the backend for."""

    title: str | None
    """The title, or None to let the first message name it."""
    system_prompt: str | None
    """Extra instructions for every reply, or None."""
    agent: str | None
    """An agent slug, or None for the open assistant."""
    typed_ahead: str = ""
    """What was typed after the Enter that created the thread, before the dialog
    closed: it belongs in the new thread's composer, not in the title."""
    send: bool = False
    """A second Enter came with `typed_ahead`: send it as the first message."""


class TitleInput(Input):
    """The title box; it remembers its value at each Enter (see `NewThreadModal`).

    Input's Enter binding runs only after the key bubbled up to the app, by which time
    keys typed after it may already be in the box; `on_key` runs in typing order.
    """

    def __init__(self, *, placeholder: str, max_length: int, id: str) -> None:  # noqa: A002
        super().__init__(placeholder=placeholder, max_length=max_length, id=id)
        self.enter_values: list[str] = []
        """The value when each Enter was read, in order."""

    def on_key(self, event: events.Key) -> None:
        if event.key == "enter":
            self.enter_values.append(self.value)


def agent_detail(agent: Agent | None) -> Text:
    """What the chosen agent is: level, description, tools (or the open assistant)."""
    if agent is None:
        return Text(
            "The open assistant: no fixed role; it can search the brand knowledge "
            "and read leads.",
            "dim",
        )
    text = Text()
    text.append(sanitize_line(agent.name, max_chars=40), "bold")
    text.append(f" · {sanitize_line(agent.level)}", "dim")
    if agent.model:
        text.append(f" · {sanitize_line(agent.model, max_chars=30)}", "dim")
    if agent.description:
        text.append("\n" + sanitize_line(agent.description, max_chars=300), "dim")
    if agent.tools:
        tools = ", ".join(sanitize_line(tool, max_chars=30) for tool in agent.tools[:6])
        text.append(f"\nTools: {tools}", "dim")
    return text


class NewThreadModal(OnceModal[NewThreadRequest | None]):
    """Start a thread: title, optional system prompt, and agent."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding(
            "escape",
            "cancel",
            "Cancel",
            id="modal.cancel",
            tooltip="Close without doing anything",
        ),
        Binding(
            "ctrl+s",
            "create",
            "Create",
            priority=True,
            id="modal.create",
            tooltip="Create the thread",
        ),
    ]

    def __init__(self, agents: list[Agent]) -> None:
        super().__init__(classes="modal")
        self._agents = agents

    def compose(self) -> ComposeResult:
        options: list[tuple[Text, str]] = [(Text("Open assistant"), "")]
        for agent in self._agents:
            # Name and level; the description shows under the picker once chosen
            # (`agent_detail`), where it has room.
            label = Text(sanitize_line(agent.name, max_chars=40))
            label.append(f" · {sanitize_line(agent.level)}", "dim")
            options.append((label, agent.slug))
        with Vertical(classes="dialog dialog-wide"):
            yield Label("New thread", classes="dialog-title")
            yield Label("Title", classes="field-label")
            yield TitleInput(
                placeholder="Optional — the first message names it",
                max_length=MAX_TITLE_CHARS,
                id="title",
            )
            yield Label("Agent", classes="field-label")
            yield Select(options, value="", allow_blank=False, id="agent")
            yield Static(agent_detail(None), id="agent-detail")
            yield Label("System prompt", classes="field-label")
            yield TextArea(
                id="system-prompt",
                soft_wrap=True,
                tab_behavior="focus",
                placeholder="Optional instructions for every reply",
                compact=True,
            )
            yield Static(
                Text("Enter in the title or Ctrl+S creates · Esc cancels", "dim"),
                classes="dialog-hint",
            )
            with Horizontal(classes="dialog-buttons"):
                yield Button("Cancel (Esc)", id="cancel")
                yield Button("Create (Ctrl+S)", id="create", variant="primary")

    def on_mount(self) -> None:
        self.query_one("#title", Input).focus()

    @on(Select.Changed, "#agent")
    def agent_changed(self, event: Select.Changed) -> None:
        chosen = next((a for a in self._agents if a.slug == event.value), None)
        self.query_one("#agent-detail", Static).update(agent_detail(chosen))

    def _request(self, title_value: str | None = None) -> NewThreadRequest | None:
        box = self.query_one("#title", TitleInput)
        raw = box.value if title_value is None else title_value
        title = raw.strip() or None
        prompt = self.query_one("#system-prompt", TextArea).text.strip() or None
        if prompt is not None and len(prompt) > MAX_SYSTEM_PROMPT_CHARS:
            self.notify(
                "The system prompt is too long.", severity="warning", markup=False
            )
            return None
        agent = self.query_one("#agent", Select).value
        typed_ahead, send = "", False
        if title_value is not None and box.value.startswith(title_value):
            # Keys typed quickly after Enter reach this box before the dialog closes
            # (a fast typist, a paste, tmux send-keys): they are the first message.
            typed_ahead = box.value[len(title_value) :]
            send = len(box.enter_values) > 1 and bool(typed_ahead.strip())
        return NewThreadRequest(
            title=title,
            system_prompt=prompt,
            agent=agent if isinstance(agent, str) and agent else None,
            typed_ahead=typed_ahead,
            send=send,
        )

    def action_create(self) -> None:
        request = self._request()
        if request is not None:
            self.answer(request)

    @on(Input.Submitted, "#title")
    def title_submitted(self, event: Input.Submitted) -> None:
        # The title is the value at the first Enter, not the box's value now, which
        # may hold what was typed after it.
        if not self.is_current:
            return
        box = self.query_one("#title", TitleInput)
        request = self._request(
            box.enter_values[0] if box.enter_values else event.value
        )
        if request is not None:
            self.answer(request)

    @on(Button.Pressed, "#create")
    def create_pressed(self) -> None:
        self.action_create()

    @on(Button.Pressed, "#cancel")
    def cancel_pressed(self) -> None:
        self.answer(None)

    def action_cancel(self) -> None:
        self.answer(None)


class LinkModal(OnceModal[bool]):
    """Show a link's real target before opening it (T31: deceptive labels)."""

    AUTO_FOCUS = ""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding(
            "escape,n",
            "cancel",
            "Cancel",
            id="modal.cancel",
            tooltip="Close without doing anything",
        ),
        Binding(
            "enter,y",
            "confirm",
            "Open",
            id="modal.confirm",
            tooltip="Do what the dialog says",
        ),
    ]

    def __init__(self, url: str) -> None:
        super().__init__(classes="modal")
        self.url = url
        """The URL that would open (already checked to be http or https)."""

    def compose(self) -> ComposeResult:
        host = urlsplit(self.url).hostname or "?"
        body = Text()
        body.append("This opens your browser at\n\n")
        body.append(sanitize(self.url), "underline")
        body.append("\n\nhost: ", "dim")
        body.append(sanitize_line(host), "bold")
        with Vertical(classes="dialog dialog-wide"):
            yield Label("Open link?", classes="dialog-title")
            yield Static(body, classes="dialog-body")
            with Horizontal(classes="dialog-buttons"):
                yield Button("Cancel (Esc)", id="cancel")
                yield Button("Open (Enter)", id="confirm", variant="primary")

    def action_confirm(self) -> None:
        self.answer(True)

    def action_cancel(self) -> None:
        self.answer(False)

    @on(Button.Pressed, "#confirm")
    def confirm_pressed(self) -> None:
        self.answer(True)

    @on(Button.Pressed, "#cancel")
    def cancel_pressed(self) -> None:
        self.answer(False)


class LinksModal(OnceModal[str | None]):
    """The links of a message, to open one by keyboard (`o`)."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding(
            "escape",
            "cancel",
            "Cancel",
            id="modal.cancel",
            tooltip="Close without doing anything",
        ),
    ]

    def __init__(self, links: list[tuple[str, str]]) -> None:
        super().__init__(classes="modal")
        self._links = links

    def compose(self) -> ComposeResult:
        options = []
        for index, (label, url) in enumerate(self._links):
            prompt = Text(sanitize_line(label, max_chars=60) or "(no text)", "bold")
            prompt.append("\n  " + sanitize_line(url, max_chars=100), "dim")
            options.append(Option(prompt, id=str(index)))
        with Vertical(classes="dialog dialog-wide"):
            yield Label("Links in this message", classes="dialog-title")
            yield OptionList(*options, id="links")
            yield Static(Text("Enter opens · Esc closes", "dim"), classes="dialog-hint")

    def on_mount(self) -> None:
        self.query_one("#links").focus()

    @on(OptionList.OptionSelected, "#links")
    def link_chosen(self, event: OptionList.OptionSelected) -> None:
        if event.option.id is not None:
            self.answer(self._links[int(event.option.id)][1])

    def action_cancel(self) -> None:
        self.answer(None)
