"""How one message looks: a cheap finished view, and a live view while it streams.

`MessageView` is a single widget whose renderable is built once (header, tool calls,
body, status badge) and cached per width: that is what keeps a long thread cheap to lay
out while a reply streams below it (STYLE.md §4.6).

`ReplyView` shows a reply as it arrives through Textual's Markdown streaming, writing at
most every ~100 ms (a batch per frame, not a layout pass per token), then the pane swaps
it for a `MessageView` of the stored message.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime
from functools import partial
from typing import TYPE_CHECKING, ClassVar

from rich.console import Group, RenderableType
from rich.style import Style
from rich.text import Text
from textual import events
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.geometry import Size
from textual.timer import Timer
from textual.widget import Widget
from textual.widgets import Static

from tenex_tui.core.models import Message, ToolCall
from tenex_tui.core.text import sanitize, sanitize_line
from tenex_tui.ui.format import clipboard_text, display_error, relative_time
from tenex_tui.ui.render import SafeMarkdown, markdown_theme, tool_call_text
from tenex_tui.ui.replies import ReplyState
from tenex_tui.ui.widgets.attachment_chips import message_extras
from tenex_tui.ui.widgets.live_markdown import (
    arrange_once,
    live_markdown_class,
    settled_virtual_size,
)

if TYPE_CHECKING:
    from textual.layout import DockArrangeResult
    from textual.widgets import Markdown
    from textual.widgets.markdown import MarkdownStream

FLUSH_INTERVAL = 0.1
"""Seconds between writes to the Markdown stream while a reply streams."""
LONG_REPLY = 10_000
"""Characters after which writes get rarer (see `flush_interval`)."""
MAX_FLUSH_INTERVAL = 0.4
"""The longest wait between two writes, however long the reply."""
CATCH_UP_CHARS = 2_000
"""A finished reply with more text than this not yet written is not written at all: the
pane's swap to the stored message shows it (see `ReplyView.flush`)."""


FIRST_WRITE = CATCH_UP_CHARS
"""Characters the first write of a reply may hold and still go out without waiting."""


def flush_interval(shown: int) -> float:
    """Seconds between two writes once `shown` characters are on screen.

    Each write re-lays out the reply's last Markdown block, and a long reply may be one
    huge block: writing less often as it grows keeps the cost per character flat. Up to
    `LONG_REPLY` characters it is every `FLUSH_INTERVAL`.
    """
    if shown <= LONG_REPLY:
        return FLUSH_INTERVAL
    return min(MAX_FLUSH_INTERVAL, FLUSH_INTERVAL * shown / LONG_REPLY)


KeyLabel = Callable[[str], str]
"""Maps a binding id to the key the user presses for it (after rebinding)."""

ROLE_LABELS = {
    "user": "You",
    "assistant": "Assistant",
    "system": "System",
    "tool": "Tool",
}

_STYLE_NAMES = (
    "message--role",
    "message--meta",
    "message--error",
    "message--warning",
    "message--ok",
    "message--tool",
    "message--running",
    "message--action",
)


def _action(name: str) -> Style:
    # A tuple action: nothing in it is parsed, so no text can smuggle an action in.
    return Style.from_meta({"@click": (name, ())})


def status_badge(
    status: str,
    error: str | None,
    *,
    styles: dict[str, Style],
    key_label: KeyLabel,
    actionable: bool,
) -> Text | None:
    """The line under a reply that says what went wrong and how to fix it.

    Args:
        status: The message's status.
        error: Its error text (untrusted: sanitised and redacted here).
        styles: Component styles by short name.
        key_label: The key for a binding id, shown beside each action.
        actionable: Whether to offer the actions (only for the thread's last reply).
    """
    if status in ("complete", "streaming"):
        return None
    text = Text()
    if status == "error":
        text.append("✗ Failed", styles["error"])
        if error:
            text.append(": " + display_error(error), styles["error"])
    elif status == "interrupted":
        text.append("! Interrupted", styles["warning"])
        if error:
            text.append(": " + display_error(error), styles["warning"])
    elif status == "stopped":
        text.append("■ Stopped", styles["warning"])
    else:
        text.append(sanitize_line(status), styles["meta"])
    if not actionable:
        return text
    actions: list[tuple[str, str, str]] = []
    if status in ("error", "interrupted"):
        actions.append(("reply.regenerate", "retry", "screen.regenerate_reply"))
    if status in ("stopped", "interrupted"):
        actions.append(("reply.continue", "continue", "screen.continue_reply"))
    if status == "stopped":
        actions.append(("reply.regenerate", "regenerate", "screen.regenerate_reply"))
    if actions:
        text.append("  —  ", styles["meta"])
        for position, (binding_id, label, action) in enumerate(actions):
            if position:
                text.append(" · ", styles["meta"])
            key = key_label(binding_id)
            text.append(f"{key} {label}", styles["action"] + _action(action))
    return text


class MessageView(Widget):
    """A finished message (or one streamed by another process): one cheap widget.

    Click a tool-call line (or press t on the selected message) to expand it; links
    ask the app to open them (`app.open_link`), which checks and confirms first.
    """

    COMPONENT_CLASSES: ClassVar[set[str]] = set(_STYLE_NAMES)

    def __init__(
        self,
        message: Message,
        *,
        now: Callable[[], datetime],
        key_label: KeyLabel,
        last_reply: bool = False,
    ) -> None:
        super().__init__(classes=f"-{message.role} -status-{message.status}")
        self.message = message
        """The message shown (as stored)."""
        self.tools_expanded = False
        """Whether tool-call envelopes show their arguments and results."""
        self.last_reply = last_reply
        """The thread's newest assistant message: its badge offers retry/continue."""
        self._now = now
        self._key_label = key_label
        self._body: RenderableType | None = None
        self._renderable: RenderableType | None = None

    @property
    def message_id(self) -> str:
        """The id of the message shown."""
        return self.message.id

    def update_message(self, message: Message) -> None:
        """Show a newer copy of the same message."""
        self.set_class(False, f"-status-{self.message.status}")
        self.message = message
        self.set_class(True, f"-status-{message.status}")
        self._body = None
        self._renderable = None
        self.refresh(layout=True)

    def set_last_reply(self, value: bool) -> None:
        """Offer (or stop offering) the retry / continue actions."""
        if value != self.last_reply:
            self.last_reply = value
            self._renderable = None
            self.refresh(layout=True)

    def toggle_tools(self) -> None:
        """Expand or collapse the tool-call envelopes."""
        if self.message.tool_calls:
            self.tools_expanded = not self.tools_expanded
            self._renderable = None
            self.refresh(layout=True)

    def refresh_time(self) -> None:
        """Redraw the relative time in the header."""
        self._renderable = None
        self.refresh()

    def copy_text(self) -> str:
        """What `y` puts on the clipboard: the message as seen, without controls."""
        return clipboard_text(self.message.content)

    def on_click(self, event: events.Click) -> None:
        # The header and tool lines sit above the body; a click there toggles tools.
        if self.message.tool_calls and event.y <= len(self.message.tool_calls):
            self.toggle_tools()

    def _styles(self) -> dict[str, Style]:
        return {
            # Partial: only what the component sets (colour, weight). A full style would
            # bake today's background into a cached renderable and the selection
            # highlight would not show through it.
            name.removeprefix("message--"): self.get_component_rich_style(
                name, partial=True
            )
            for name in _STYLE_NAMES
        }

    def _build_body(self) -> RenderableType:
        message = self.message
        if message.role == "assistant":
            dark = self.app.current_theme.dark
            return SafeMarkdown(
                message.content,
                theme=markdown_theme(self.app.theme_variables),
                code_theme="monokai" if dark else "friendly",
            )
        # The user's own words are shown as typed (no Markdown surprises), but still
        # sanitised: they may have been pasted from anywhere.
        return Text(sanitize(message.content))

    def render(self) -> RenderableType:
        if self._renderable is None:
            self._renderable = self._build()
        return self._renderable

    def _build(self) -> RenderableType:
        message = self.message
        styles = self._styles()
        parts: list[RenderableType] = [
            message_header(message, styles=styles, now=self._now())
        ]
        for call in message.tool_calls:
            parts.append(
                tool_call_text(
                    call,
                    expanded=self.tools_expanded,
                    styles={
                        "tool": styles["tool"],
                        "muted": styles["meta"],
                        "ok": styles["ok"],
                        "error": styles["error"],
                        "running": styles["running"],
                    },
                )
            )
        if self.tools_expanded and message.tool_calls:
            parts.append(Text(""))
        if message.content or message.role != "assistant":
            if self._body is None:
                self._body = self._build_body()
            parts.append(self._body)
        # Attachment chips, and "pending" / "Not sent" for offline messages.
        parts.extend(message_extras(message, styles))
        badge = status_badge(
            message.status,
            message.error,
            styles=styles,
            key_label=self._key_label,
            actionable=self.last_reply,
        )
        if badge is not None:
            parts.append(badge)
        return Group(*parts)


def message_header(
    message: Message, *, styles: dict[str, Style], now: datetime
) -> Text:
    """`You · 5 min ago` / `Assistant · model · 5 min ago`, built from plain text."""
    text = Text(no_wrap=True, overflow="ellipsis")
    text.append(ROLE_LABELS.get(message.role, message.role), styles["role"])
    if message.role == "assistant" and message.model:
        text.append(" · " + sanitize_line(message.model, max_chars=40), styles["meta"])
    text.append(" · " + relative_time(message.created_at, now), styles["meta"])
    if message.usage and message.usage.completion_tokens:
        text.append(f" · {message.usage.completion_tokens} tokens", styles["meta"])
    return text


class ToolCallBlock(Static):
    """One tool-call envelope while a reply streams; click to expand."""

    COMPONENT_CLASSES: ClassVar[set[str]] = set(_STYLE_NAMES)

    def __init__(self, call: ToolCall) -> None:
        super().__init__(classes="tool-call")
        self.call = call
        """The envelope shown."""
        self.expanded = False
        """Whether arguments and result are shown."""

    def on_mount(self) -> None:
        self._redraw()

    def set_call(self, call: ToolCall) -> None:
        """Show the envelope's newest state."""
        self.call = call
        self._redraw()

    def on_click(self) -> None:
        self.expanded = not self.expanded
        self._redraw()

    def _redraw(self) -> None:
        get = partial(self.get_component_rich_style, partial=True)
        self.update(
            tool_call_text(
                self.call,
                expanded=self.expanded,
                styles={
                    "tool": get("message--tool"),
                    "muted": get("message--meta"),
                    "ok": get("message--ok"),
                    "error": get("message--error"),
                    "running": get("message--running"),
                },
            )
        )


class ReplyView(Vertical):
    """A reply as it streams: header, tool-call blocks, Markdown, and a hint line."""

    COMPONENT_CLASSES: ClassVar[set[str]] = set(_STYLE_NAMES)
    virtual_size = settled_virtual_size()

    def arrange(self, size: Size, optimal: bool = False) -> DockArrangeResult:
        return super().arrange(arrange_once(self, size, optimal), optimal)

    def __init__(self, state: ReplyState, *, now: Callable[[], datetime]) -> None:
        super().__init__(classes="-assistant -status-streaming")
        self.state = state
        """The reply this view follows."""
        self._now = now
        self._shown = 0
        self._tools_version = -1
        self._stream: MarkdownStream | None = None
        self._flush_pending = False
        self._flush_timer: Timer | None = None
        self._drawn: tuple[str, str] | None = None
        self._last_flush = 0.0
        self._stream_closed = False
        self.writes = 0
        """How many batches were written to the Markdown stream (for tests)."""
        self.skipped_tail = False
        """True when the reply ended with its last text left to the swap (see
        `flush`): then the pane swaps at once instead of waiting for a paint."""

    @property
    def message_id(self) -> str | None:
        """The assistant message being streamed, once known."""
        return self.state.message_id

    @property
    def shown_text(self) -> str:
        """The text handed to the Markdown widget so far (sanitised)."""
        return sanitize(self.state.text[: self._shown])

    def compose(self) -> ComposeResult:
        yield Static(classes="reply-header")
        yield Vertical(classes="reply-tools")
        yield live_markdown_class()(classes="reply-body")
        yield Static(classes="reply-hint")

    async def on_mount(self) -> None:
        self._draw_header()
        body = self._markdown()
        # What arrived before this view existed (the user was in another thread).
        text = self.state.text
        cut = _safe_cut(text)
        if cut:
            await body.update(sanitize(text[:cut]))
        self._shown = cut
        self._stream = type(body).get_stream(body)
        self.state.add_listener(self._changed)
        self._changed()

    def on_unmount(self) -> None:
        self.state.remove_listener(self._changed)
        self._stream_closed = True
        stream, self._stream = self._stream, None
        if stream is not None:
            # Gone before the reply ended (a thread switch, quitting): end the stream's
            # task, or it would wait for text forever. The reply itself goes on.
            self.app.run_worker(
                stream.stop(), group="markdown-streams", exit_on_error=False
            )

    def _markdown(self) -> Markdown:
        from textual.widgets import Markdown

        return self.query_one(".reply-body", Markdown)

    def copy_text(self) -> str:
        """What `y` copies while the reply streams: the text so far."""
        return clipboard_text(self.state.text)

    def _changed(self) -> None:
        # Called for every event; the write happens at most every flush_interval, but
        # the first token after a pause goes out at once (first-token latency).
        if self._stream_closed:
            return
        if self._flush_pending:
            if self.state.done and self._flush_timer is not None:
                # The reply ended: its last words go out now, not at the next tick.
                self._flush_timer.stop()
                self._flush_timer = None
                self.call_later(self.flush)
            return
        self._flush_pending = True
        wait = flush_interval(self._shown) - (time.monotonic() - self._last_flush)
        # The first words go out at once, whatever the interval (the view's own flush
        # at mount just started one). Not a flood: a model that sent a screenful in
        # its first read is fast, and may be done before the next batch, when the
        # stored message replaces this view more cheaply than writing it here.
        first = self.writes == 0 and self.state.length - self._shown <= FIRST_WRITE
        if wait <= 0 or self.state.done or first:
            self.call_later(self.flush)
        else:
            self._flush_timer = self.set_timer(wait, self.flush)

    async def flush(self) -> None:
        """Write what arrived since the last flush to the Markdown stream."""
        self._flush_pending = False
        self._flush_timer = None
        self._last_flush = time.monotonic()
        if self._stream_closed:
            return
        state = self.state
        if state.tools_version != self._tools_version:
            self._tools_version = state.tools_version
            await self._draw_tools()
        text = state.text
        cut = _safe_cut(text)
        if cut > self._shown and self._stream is not None:
            if state.done and cut - self._shown > CATCH_UP_CHARS:
                # A fast model outran the batches and the reply is over. Writing the
                # rest would mount a Markdown widget per paragraph (a 4,000-chunk reply:
                # ~60, 150-250 ms before its last word shows) only for the pane to swap
                # this view for the stored message, which draws the whole reply anyway
                # in one cheap widget: leave the rest to that swap.
                self.skipped_tail = True
            else:
                fragment = sanitize(text[self._shown : cut])
                self._shown = cut
                self.writes += 1
                await self._stream.write(fragment)
        self._draw_header()

    async def close(self) -> None:
        """Write the last text, then stop the Markdown stream (before the pane replaces
        this view); returns once every fragment is in the Markdown widget."""
        if not self._stream_closed and self._stream is not None:
            await self.flush()
        self._stream_closed = True
        if self._flush_timer is not None:
            self._flush_timer.stop()
            self._flush_timer = None
        self.state.remove_listener(self._changed)
        if self._stream is not None:
            await self._stream.stop()
            self._stream = None

    async def _draw_tools(self) -> None:
        box = self.query_one(".reply-tools", Vertical)
        blocks = {block.call.id: block for block in box.query(ToolCallBlock)}
        new: list[ToolCallBlock] = []
        for call in self.state.tool_calls.values():
            block = blocks.get(call.id)
            if block is None:
                new.append(ToolCallBlock(call))
            else:
                block.set_call(call)
        if new:
            await box.mount_all(new)

    def _draw_header(self) -> None:
        get = partial(self.get_component_rich_style, partial=True)
        state = self.state
        header = Text(no_wrap=True, overflow="ellipsis")
        header.append("Assistant", get("message--role"))
        if state.model:
            header.append(
                " · " + sanitize_line(state.model, max_chars=40), get("message--meta")
            )
        started = state.started.created_at if state.started else None
        if started is not None:
            header.append(
                " · " + relative_time(started, self._now()), get("message--meta")
            )
        hint = Text()
        if not state.done:
            hint.append("◐ ", get("message--running"))
            hint.append("writing…", get("message--meta"))
            hint.append("  Esc stops", get("message--meta"))
        # An update costs a layout pass; most flushes change neither line.
        key = (header.plain, hint.plain)
        if key != self._drawn:
            self._drawn = key
            self.query_one(".reply-header", Static).update(header)
            self.query_one(".reply-hint", Static).update(hint)


def _safe_cut(text: str) -> int:
    """How much of a growing text can be shown now.

    A trailing `\\r` is held back one batch: if `\\n` follows it is a line break, not an
    overprint marker.
    """
    return len(text) - 1 if text.endswith("\r") else len(text)


def utc_now() -> datetime:
    """The real time (the default clock of the views)."""
    return datetime.now(UTC)
