"""The message pane: one thread's history, newest at the bottom, older on scroll-up.

It mounts only the newest page of a thread and posts `OlderWanted` when the user
scrolls (or moves the selection) to the top; the screen fetches the older page and
hands it down with `prepend`. It stays anchored to the bottom while a reply streams,
unless the user scrolled away (Textual's `anchor`; no hand-computed positions).

The pane has a selected message (↑/↓, j/k): `y` copies it, `t` expands its tool calls.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import ClassVar

from rich.text import Text
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.message import Message as TextualMessage
from textual.widget import Widget
from textual.widgets import Static

from tenex_tui.core.models import Message
from tenex_tui.ui.replies import ReplyState
from tenex_tui.ui.widgets.live_markdown import settled_virtual_size
from tenex_tui.ui.widgets.message_view import (
    KeyLabel,
    MessageView,
    ReplyView,
    utc_now,
)

AnyView = MessageView | ReplyView

PAINT_WAIT = 0.2
"""At most this long, a finished reply waits for its last words to paint."""
FIRST_PAINT_SCREENS = 1.5
"""How many screenfuls of a thread's newest messages (by a rough estimate of their
height) are drawn for its first frame; the older ones of the page are mounted right
after that frame."""


def _default_key_label(binding_id: str) -> str:
    return {"reply.regenerate": "R", "reply.continue": "c"}.get(binding_id, "?")


class MessagePane(VerticalScroll, can_focus=True):
    """The messages of the open thread, with a selection and streaming replies."""

    # Growing content (a streaming reply) changes the pane's virtual size in the same
    # layout pass that scrolls it; a second pass would only redraw it all again.
    virtual_size = settled_virtual_size()

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding(
            "up,k",
            "select_previous",
            "Previous",
            show=False,
            id="messages.up",
            tooltip="Select the previous message (loads older at the top)",
        ),
        Binding(
            "down,j",
            "select_next",
            "Next",
            show=False,
            id="messages.down",
            tooltip="Select the next message",
        ),
        Binding(
            "home,g",
            "select_first",
            "First",
            show=False,
            id="messages.top",
            tooltip="First message loaded",
        ),
        Binding(
            "end,G",
            "select_last",
            "Last",
            show=False,
            id="messages.bottom",
            tooltip="Last message, and follow new text",
        ),
        Binding(
            "y",
            "screen.copy_message",
            "Copy",
            id="message.copy",
            tooltip="Copy the selected message",
        ),
        Binding(
            "Y",
            "screen.copy_code",
            "Copy code",
            show=False,
            id="message.copy_code",
            tooltip="Copy the selected message's code block",
        ),
        Binding(
            "e",
            "screen.edit_last",
            "Edit",
            id="message.edit",
            tooltip="Edit your last message and resend it",
        ),
        Binding(
            "R",
            "screen.regenerate_reply",
            "Regenerate",
            id="reply.regenerate",
            tooltip="Answer the last message again (retry)",
        ),
        Binding(
            "c",
            "screen.continue_reply",
            "Continue",
            id="reply.continue",
            tooltip="Let the model carry on from where it stopped",
        ),
        Binding(
            "t",
            "toggle_tools",
            "Tools",
            id="message.tools",
            tooltip="Expand or collapse the selected message's tool calls",
        ),
        Binding(
            "o",
            "screen.open_links",
            "Links",
            show=False,
            id="message.links",
            tooltip="List the selected message's links to open one",
        ),
        Binding(
            "question_mark",
            "app.help",
            "Keys",
            show=False,
            id="app.keys",
            tooltip="Show every key",
        ),
    ]

    @dataclass
    class OlderWanted(TextualMessage):
        """The user reached the top and older messages exist."""

        pane: MessagePane
        """The pane."""

        @property
        def control(self) -> MessagePane:
            """The pane that posted the message."""
            return self.pane

        def can_replace(self, message: TextualMessage) -> bool:
            return isinstance(message, MessagePane.OlderWanted)

    def __init__(
        self,
        *,
        now: Callable[[], datetime] | None = None,
        key_label: KeyLabel | None = None,
        id: str | None = None,  # noqa: A002 - Textual's own parameter name
        classes: str | None = None,
    ) -> None:
        super().__init__(id=id, classes=classes)
        self._now = now or utc_now
        self.key_label: KeyLabel = key_label or _default_key_label
        """How badges name keys (set by the screen from the keymap)."""
        self.thread_id: str | None = None
        """The thread shown, or None."""
        self.has_older = False
        """Whether older messages exist above the first one mounted."""
        self.loading_older = False
        """True while the screen fetches an older page."""
        self.selected = -1
        """Index of the selected view in `views`, or -1."""
        self._placeholder = "Select a thread, or press n to start one."
        self.changes = 0
        """Counts changes made to the shown thread's messages in place (a message
        added, a reply started or finished, messages removed), so a page fetched
        meanwhile can tell it is out of date."""
        self._head: list[Message] = []
        self._shows = 0

    # --- content -------------------------------------------------------------------

    @property
    def views(self) -> list[AnyView]:
        """The message views, oldest first."""
        return [child for child in self.children if isinstance(child, AnyView)]

    def view_for(self, message_id: str) -> AnyView | None:
        """The view of a message, if mounted."""
        for view in self.views:
            if view.message_id == message_id:
                return view
        return None

    @property
    def messages(self) -> list[Message]:
        """The finished messages mounted, oldest first."""
        return [view.message for view in self.views if isinstance(view, MessageView)]

    @property
    def reply_view(self) -> ReplyView | None:
        """The live reply view, if one is mounted."""
        for view in self.views:
            if isinstance(view, ReplyView):
                return view
        return None

    def _make_view(self, message: Message) -> MessageView:
        return MessageView(message, now=self._now, key_label=self.key_label)

    def _older_marker(self) -> Static:
        text = "↑ older messages — scroll up to load" if self.has_older else ""
        return Static(Text(text), classes="older-marker")

    async def show_placeholder(self, text: str) -> None:
        """Show a hint instead of a thread (nothing open, opening…)."""
        self._shows += 1
        self._head = []
        self.thread_id = None
        self.has_older = False
        self.selected = -1
        self._placeholder = text
        await self.remove_children()
        await self.mount(Static(Text(text), classes="pane-placeholder"))

    async def show_thread(
        self,
        thread_id: str,
        messages: Sequence[Message],
        *,
        has_older: bool,
        live: ReplyState | None = None,
        select: str | None = None,
    ) -> None:
        """Replace the pane's content with a thread.

        Args:
            thread_id: The thread.
            messages: Its newest messages, oldest first.
            has_older: Whether older pages exist.
            live: A reply this app is streaming in the thread: its view replaces the
                stored (partial) copy of the message.
            select: A message to select and scroll to (a search hit), else the last.
        """
        self._shows += 1
        self.thread_id = thread_id
        self.has_older = has_older
        self.loading_older = False
        # Only what fills the first frame is drawn for it: each finished message is
        # rendered (Markdown, code highlighting) to be laid out, on screen or not.
        wait = 0 if select is not None else self._first_paint_split(messages)
        self._head = list(messages[:wait])
        messages = messages[wait:]
        views: list[Widget] = [self._older_marker()]
        if not messages and live is None:
            views.append(
                Static(
                    Text("No messages yet. Write below and press Enter."),
                    classes="pane-placeholder",
                )
            )
        for message in messages:
            if live is not None and message.id == live.message_id:
                continue
            views.append(self._make_view(message))
        if live is not None:
            views.append(ReplyView(live, now=self._now))
        with self.app.batch_update():
            await self.remove_children()
            await self.mount_all(views)
        self._mark_last_reply()
        all_views = self.views
        target = len(all_views) - 1
        if select is not None:
            for index, view in enumerate(all_views):
                if view.message_id == select:
                    target = index
        self._select(target, scroll=False)
        if select is not None and 0 <= target < len(all_views):
            found = all_views[target]
            found.add_class("-found")
            self.call_after_refresh(
                lambda: self.scroll_to_widget(found, animate=False, center=True)
            )
        else:
            self.anchor()
        if self._head:
            shows = self._shows
            self.call_after_refresh(
                lambda: self.run_worker(
                    self._mount_head(shows), group="pane-head", exit_on_error=False
                )
            )
        else:
            self.call_after_refresh(self._fill_viewport)

    def _first_paint_split(self, messages: Sequence[Message]) -> int:
        """How many of the oldest messages can be mounted after the first frame: the
        newest ones are kept until they surely fill `FIRST_PAINT_SCREENS` screens."""
        width = max(20, self.size.width - 8)
        budget = max(10, self.size.height) * FIRST_PAINT_SCREENS
        lines = 0
        for index in range(len(messages) - 1, 0, -1):
            lines += _estimated_lines(messages[index], width)
            if lines >= budget:
                return index
        return 0

    async def _mount_head(self, shows: int) -> None:
        """Mount the older messages held back for the first frame, above the rest."""
        if shows != self._shows or not self._head:
            return  # another thread (or none) is shown now
        head, self._head = self._head, []
        first = self.views[0] if self.views else None
        views = [self._make_view(message) for message in head]
        mounting = (
            self.mount_all(views)
            if first is None
            else self.mount_all(views, before=first)
        )
        # The views are children from here on: keep the selection on the same message
        # now, not once the mount completes (a key pressed meanwhile would select the
        # wrong view).
        if self.selected >= 0:
            self.selected += len(views)
        self._mark_last_reply()
        await mounting
        self.call_after_refresh(self._fill_viewport)

    def _fill_viewport(self) -> None:
        # Short messages may not fill the pane, and a pane that cannot scroll never
        # reaches "the top" by scrolling: load older ones until it can.
        if self.max_scroll_y == 0:
            self._want_older()

    async def prepend(self, messages: Sequence[Message], *, has_older: bool) -> None:
        """Mount an older page above the first message, keeping the view still."""
        self.loading_older = False
        self.has_older = has_older
        marker = self.query(".older-marker")
        if not messages:
            for old in marker:
                await old.remove()
            await self.mount(self._older_marker(), before=0)
            return
        before_height = self.virtual_size.height
        before_y = self.scroll_y
        first = self.views[0] if self.views else None
        new_views = [self._make_view(message) for message in messages]
        with self.app.batch_update():
            for old in marker:
                await old.remove()
            if first is not None:
                await self.mount_all(new_views, before=first)
            else:
                await self.mount_all(new_views)
            await self.mount(self._older_marker(), before=0)
        self.selected += len(new_views)
        self._mark_last_reply()

        def keep_position() -> None:
            grown = self.virtual_size.height - before_height
            self.scroll_to(y=before_y + grown, animate=False, immediate=True)
            self._fill_viewport()

        self.call_after_refresh(keep_position)

    async def add_message(self, message: Message) -> MessageView:
        """Append a finished message (such as the user's, just sent)."""
        self.changes += 1
        for hint in self.query(".pane-placeholder"):
            await hint.remove()
        view = self._make_view(message)
        await self.mount(view)
        self._mark_last_reply()
        self._select(len(self.views) - 1, scroll=False)
        return view

    async def start_reply(self, state: ReplyState) -> ReplyView:
        """Append a live view for a reply and keep the pane at the bottom."""
        self.changes += 1
        existing = self.view_for(state.message_id) if state.message_id else None
        view = ReplyView(state, now=self._now)
        if existing is not None:
            await self.mount(view, after=existing)
            await existing.remove()
        else:
            await self.mount(view)
        self._select(len(self.views) - 1, scroll=False)
        self.anchor()
        return view

    async def finish_reply(self, state: ReplyState, final: Message | None) -> None:
        """Swap a reply's live view for the cheap view of the stored message."""
        self.changes += 1
        view = None
        for candidate in self.views:
            if isinstance(candidate, ReplyView) and candidate.state is state:
                view = candidate
        if view is None:
            if final is not None:
                self.update_message(final)
            return
        await view.close()
        if final is None:
            await view.remove()
            return
        if not view.skipped_tail:
            # Let the last words paint in the live view before the swap: the collapse
            # renders the whole reply again, and that should not delay its last token.
            # (When the live view left its tail to the swap, the swap is what shows it.)
            painted = asyncio.Event()
            self.call_after_refresh(painted.set)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(painted.wait(), PAINT_WAIT)
        if view.parent is None:
            return  # the thread was switched meanwhile
        replacement = self._make_view(final)
        index = self.views.index(view)
        await self.mount(replacement, after=view)
        await view.remove()
        self._mark_last_reply()
        if self.selected == index:
            self._select(index, scroll=False)

    def update_message(self, message: Message) -> None:
        """Redraw a mounted message from a newer copy."""
        view = self.view_for(message.id)
        if isinstance(view, MessageView):
            view.update_message(message)
            self._mark_last_reply()

    async def remove_messages(self, message_ids: Iterable[str]) -> None:
        """Take messages off the pane (after an edit or a regenerate replaced them)."""
        self.changes += 1
        doomed = set(message_ids)
        for view in self.views:
            if view.message_id in doomed:
                await view.remove()
        self._mark_last_reply()
        self._select(min(self.selected, len(self.views) - 1), scroll=False)

    def _mark_last_reply(self) -> None:
        views = self.views
        last_assistant = None
        for view in reversed(views):
            if isinstance(view, MessageView) and view.message.role == "assistant":
                last_assistant = view
                break
            if isinstance(view, MessageView) and view.message.role == "user":
                break
        for view in views:
            if isinstance(view, MessageView):
                view.set_last_reply(view is last_assistant)

    def refresh_times(self) -> None:
        """Redraw every relative time (called once a minute)."""
        for view in self.views:
            if isinstance(view, MessageView):
                view.refresh_time()

    # --- selection -----------------------------------------------------------------

    @property
    def selected_view(self) -> AnyView | None:
        """The selected message view, if any."""
        views = self.views
        if 0 <= self.selected < len(views):
            return views[self.selected]
        return None

    def _select(self, index: int, *, scroll: bool = True) -> None:
        views = self.views
        for view in views:
            view.remove_class("-selected")
        if not views:
            self.selected = -1
            return
        self.selected = min(max(index, 0), len(views) - 1)
        view = views[self.selected]
        view.add_class("-selected")
        if scroll:
            self.scroll_to_widget(view, animate=False, top=False)

    def select_message(self, message_id: str) -> bool:
        """Select a mounted message and scroll to it."""
        for index, view in enumerate(self.views):
            if view.message_id == message_id:
                self._select(index)
                return True
        return False

    def action_select_previous(self) -> None:
        if self.selected <= 0:
            self.scroll_home(animate=False)
            self._want_older()
            return
        self._select(self.selected - 1)

    def action_select_next(self) -> None:
        if self.selected >= len(self.views) - 1:
            self.scroll_end(animate=False)
            return
        self._select(self.selected + 1)

    def action_select_first(self) -> None:
        self._select(0)
        self.scroll_home(animate=False)
        self._want_older()

    def action_select_last(self) -> None:
        self._select(len(self.views) - 1)
        self.anchor()

    def action_toggle_tools(self) -> None:
        view = self.selected_view
        if isinstance(view, MessageView):
            view.toggle_tools()

    def _want_older(self) -> None:
        if self._head:
            return  # the rest of this page is being mounted; then we look again
        if self.has_older and not self.loading_older and self.thread_id is not None:
            self.loading_older = True
            self.post_message(self.OlderWanted(self))

    def watch_scroll_y(self, old: float, new: float) -> None:
        super().watch_scroll_y(old, new)
        if new <= 1 and old > new:
            self._want_older()


def _estimated_lines(message: Message, width: int) -> int:
    """About how many lines a message takes at a width (header and margin included);
    Markdown may draw it a little shorter or taller."""
    body = sum(-(-len(line) // width) or 1 for line in message.content.split("\n"))
    extra = len(message.tool_calls) + len(message.attachments)
    return 2 + body + extra + (message.status != "complete")
