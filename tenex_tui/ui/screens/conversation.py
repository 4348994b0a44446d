"""The chat half of the main screen: show a thread, write, stream, stop, retry.

`ConversationScreen` owns the backend calls for one thread at a time (workers do the
I/O, widgets get data pushed down) and every reply this app streams (`ReplyTracker`):
a reply keeps streaming when the user switches threads, and its view comes back when
they return (T24). The triage half (`ChatScreen`) builds on it.

The composer's drafts are kept per thread in memory and persisted through
`update_thread(draft=…)`: debounced while typing, on every thread switch, and on quit.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import datetime
from typing import ClassVar

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.timer import Timer
from textual.widgets import Footer, Input, Markdown, TextArea

from tenex_tui.core.backend import ChatBackend
from tenex_tui.core.errors import ModelNotConfigured, NotFound, TenexError
from tenex_tui.core.events import StreamEvent
from tenex_tui.core.models import BackendInfo, Message, Thread
from tenex_tui.ui.format import clipboard_text, code_blocks, display_error, first_line
from tenex_tui.ui.links import extract_links
from tenex_tui.ui.messages import OpenLinkRequested
from tenex_tui.ui.replies import ReplyState, ReplyTracker
from tenex_tui.ui.screens.modals import LinksModal
from tenex_tui.ui.widgets.composer import Composer
from tenex_tui.ui.widgets.message_pane import MessagePane
from tenex_tui.ui.widgets.message_view import KeyLabel, MessageView, ReplyView
from tenex_tui.ui.widgets.panels import NoModelPanel, SidebarTitle, ThreadHeader
from tenex_tui.ui.widgets.thread_list import ThreadList

FIRST_PAGE = 30
"""Messages mounted when a thread opens (the newest ones)."""
OLDER_PAGE = 50
"""Messages fetched per scroll-up."""
JUMP_PAGES = 5
"""Pages of 200 searched for a search hit's message before giving up."""
DRAFT_DEBOUNCE = 1.0
"""Seconds of quiet typing before a draft is saved."""
PREVIEW_DELAY = 0.12
"""Seconds the sidebar cursor rests on a thread before it is shown."""

StreamFactory = Callable[[], AsyncIterator[StreamEvent]]


class ConversationScreen(Screen[None]):
    """Sidebar, header, messages and composer, and the chat flows between them."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding(
            "escape",
            "escape",
            "Stop / back",
            show=False,
            id="reply.stop",
            tooltip="Stop the reply; else back to the thread list",
        ),
    ]

    def __init__(
        self,
        *,
        now: Callable[[], datetime],
        key_label: KeyLabel,
        show_sidebar: bool = True,
    ) -> None:
        super().__init__()
        self.now = now
        """The clock for relative times."""
        self.key_label = key_label
        """Names the key of a binding id (after the user's rebinding)."""
        self.backend: ChatBackend | None = None
        """The backend, once the app opened it."""
        self.info: BackendInfo | None = None
        """What the backend said about itself."""
        self.thread: Thread | None = None
        """The thread shown in the message pane."""
        self.replies = ReplyTracker()
        """Every reply this app streams."""
        self._show_sidebar = show_sidebar
        self._drafts: dict[str, str] = {}
        self._saved_drafts: dict[str, str] = {}
        self._composer_thread: str | None = None
        self._draft_timer: Timer | None = None
        self._preview_timer: Timer | None = None
        self._older: list[Message] = []
        self._older_cursor: str | None = None
        self._edit_restore: str | None = None
        self._loading_composer = False
        self._target_thread_id: str | None = None

    # --- layout --------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        with Horizontal(id="layout"):
            with Vertical(id="sidebar"):
                yield SidebarTitle(id="sidebar-title")
                yield Input(placeholder="Filter titles…", id="filter")
                yield ThreadList(now=self.now, id="threads")
            with Vertical(id="main"):
                yield ThreadHeader(id="header")
                yield NoModelPanel(id="no-model")
                yield MessagePane(now=self.now, key_label=self.key_label, id="messages")
                yield Composer(id="composer")
        yield Footer()

    @property
    def threads(self) -> ThreadList:
        """The sidebar list."""
        return self.query_one("#threads", ThreadList)

    @property
    def pane(self) -> MessagePane:
        """The message pane."""
        return self.query_one("#messages", MessagePane)

    @property
    def composer(self) -> Composer:
        """The composer."""
        return self.query_one("#composer", Composer)

    async def on_mount(self) -> None:
        self.query_one("#sidebar").display = self._show_sidebar
        self.query_one("#filter", Input).display = False
        self.query_one("#no-model", NoModelPanel).display = False
        self.query_one("#sidebar-title", SidebarTitle).show(
            archived=False, query="", count=None
        )
        await self.pane.show_placeholder("Opening your workspace…")
        if self._show_sidebar:
            self.threads.focus()
        else:
            self.composer.focus()
        self.set_interval(30, self._tick)

    def on_resize(self) -> None:
        self.set_class(self.size.width < 100, "-narrow")

    def _tick(self) -> None:
        self.threads.refresh()
        self.pane.refresh_times()

    # --- the backend arrives -----------------------------------------------------------

    def attach(self, backend: ChatBackend) -> None:
        """Start using a backend: load its info and the first page of threads."""
        self.backend = backend
        self.load_info()
        self.reload_threads()

    def backend_failed(self, error: str) -> None:
        """Say that the workspace could not be opened."""
        self.threads.empty_text = "Could not open the workspace."
        self.threads.refresh()
        self.run_worker(self.pane.show_placeholder(error), group="pane")

    @work(group="info", exclusive=True, exit_on_error=False)
    async def load_info(self) -> None:
        """Ask the backend about itself (model, workspace) and update the panels."""
        if self.backend is None:
            return
        self.info = await self.backend.info()
        self._show_info()

    def _show_info(self) -> None:
        self.query_one("#header", ThreadHeader).show(self.thread, self.info)
        self.query_one("#no-model", NoModelPanel).show(
            self.info, compact=self.thread is not None
        )

    def reload_threads(self, *, select: str | None = None) -> None:
        """Reload the sidebar's view (subclasses add filters)."""

    # --- showing a thread --------------------------------------------------------------

    @on(ThreadList.Highlighted, "#threads")
    def thread_highlighted(self, event: ThreadList.Highlighted) -> None:
        if self._preview_timer is not None:
            self._preview_timer.stop()
        thread_id = event.thread_id
        if thread_id is None or thread_id == self._target_thread_id:
            return
        self._preview_timer = self.set_timer(
            PREVIEW_DELAY, lambda: self.show_thread(thread_id)
        )

    @on(ThreadList.Opened, "#threads")
    def thread_opened(self, event: ThreadList.Opened) -> None:
        if self._preview_timer is not None:
            self._preview_timer.stop()
        if self.thread is not None and self.thread.id == event.thread_id:
            self._target_thread_id = event.thread_id
            self.composer.focus()
            self._mark_read(event.thread_id)
            return
        self.show_thread(event.thread_id, focus_composer=True)

    def show_thread(
        self,
        thread_id: str,
        *,
        focus_composer: bool = False,
        select_message: str | None = None,
    ) -> None:
        """Show a thread in the pane (a preview unless `focus_composer`)."""
        self._target_thread_id = thread_id
        self.stash_draft()
        self.load_thread(thread_id, focus_composer, select_message)

    @work(group="thread", exclusive=True, exit_on_error=False)
    async def load_thread(
        self, thread_id: str, focus_composer: bool, select_message: str | None
    ) -> None:
        """Fetch a thread and its newest messages, then show them."""
        backend = self.backend
        if backend is None:
            return
        try:
            thread = await backend.get_thread(thread_id)
            if select_message is not None:
                messages, cursor = await self._pages_until(
                    backend, thread_id, select_message
                )
            else:
                page = await backend.list_messages(
                    thread_id, limit=FIRST_PAGE, order="desc"
                )
                messages, cursor = list(reversed(page.items)), page.next_cursor
        except TenexError as error:
            self.notify(display_error(str(error)), severity="error", markup=False)
            return
        mounted = messages
        self._older = []
        if select_message is not None:
            index = next(
                (i for i, m in enumerate(messages) if m.id == select_message), None
            )
            if index is not None and index > 5:
                self._older = messages[: index - 5]
                mounted = messages[index - 5 :]
        self._older_cursor = cursor
        self.thread = thread
        live = self.replies.get(thread_id)
        if live is None and mounted and mounted[-1].status == "streaming":
            live = self._attach_stream(thread_id, mounted[-1])
        await self.pane.show_thread(
            thread_id,
            mounted,
            has_older=bool(self._older) or cursor is not None,
            live=live,
            select=select_message,
        )
        self._load_composer(thread)
        self._show_info()
        if focus_composer:
            self.composer.focus()
            self._mark_read(thread_id)
        elif select_message is not None:
            self.pane.focus()

    async def _pages_until(
        self, backend: ChatBackend, thread_id: str, message_id: str
    ) -> tuple[list[Message], str | None]:
        found: list[Message] = []
        cursor: str | None = None
        for _ in range(JUMP_PAGES):
            page = await backend.list_messages(
                thread_id, limit=200, cursor=cursor, order="desc"
            )
            found.extend(page.items)
            cursor = page.next_cursor
            if cursor is None or any(m.id == message_id for m in page.items):
                break
        return list(reversed(found)), cursor

    @on(MessagePane.OlderWanted, "#messages")
    def older_wanted(self) -> None:
        self.load_older()

    @work(group="older", exclusive=True, exit_on_error=False)
    async def load_older(self) -> None:
        """Mount the page above the first message shown."""
        backend, thread = self.backend, self.thread
        if backend is None or thread is None:
            return
        if self._older:
            batch = self._older[-OLDER_PAGE:]
            self._older = self._older[:-OLDER_PAGE]
            await self.pane.prepend(
                batch, has_older=bool(self._older) or self._older_cursor is not None
            )
            return
        if self._older_cursor is None:
            await self.pane.prepend([], has_older=False)
            return
        try:
            page = await backend.list_messages(
                thread.id, limit=OLDER_PAGE, cursor=self._older_cursor, order="desc"
            )
        except TenexError as error:
            self.pane.loading_older = False
            self.notify(display_error(str(error)), severity="error", markup=False)
            return
        if self.thread is None or self.thread.id != thread.id:
            return
        self._older_cursor = page.next_cursor
        await self.pane.prepend(
            list(reversed(page.items)), has_older=page.next_cursor is not None
        )

    def _mark_read(self, thread_id: str) -> None:
        row = self.threads.row_for(thread_id)
        if row is not None and row.unread:
            row.unread = False
            self.threads.refresh()
            self.mark_read(thread_id)

    @work(group="mark-read", exit_on_error=False)
    async def mark_read(self, thread_id: str) -> None:
        """Tell the backend the user saw the thread's latest reply."""
        if self.backend is not None:
            # A marker, not data: the next open tries again.
            with contextlib.suppress(TenexError):
                await self.backend.mark_read(thread_id)

    # --- drafts ----------------------------------------------------------------------

    def _load_composer(self, thread: Thread | None) -> None:
        composer = self.composer
        key = thread.id if thread is not None else ""
        if self._composer_thread == key and composer.editing is None:
            composer.locked = (
                self.replies.get(thread.id if thread else None) is not None
            )
            return
        self._composer_thread = key
        text = self._drafts.get(key)
        if text is None:
            text = thread.draft if thread is not None else ""
            self._drafts[key] = text
            if thread is not None:
                self._saved_drafts[key] = text
        self._loading_composer = True
        composer.editing = None
        composer.set_text(text)
        self._loading_composer = False
        composer.locked = self.replies.get(thread.id if thread else None) is not None

    def stash_draft(self) -> None:
        """Remember the composer's text for its thread and save it if it changed."""
        key = self._composer_thread
        if key is None:
            return
        composer = self.composer
        if composer.editing is not None:
            # An edit of a sent message is not a draft; the draft is what was there.
            return
        self._drafts[key] = composer.text
        if key and self._saved_drafts.get(key) != composer.text:
            self.persist_draft(key, composer.text)

    @on(TextArea.Changed, "#composer")
    def composer_changed(self) -> None:
        if self._loading_composer or self._composer_thread is None:
            return
        if self.composer.editing is None:
            self._drafts[self._composer_thread] = self.composer.text
        if self._draft_timer is not None:
            self._draft_timer.stop()
        self._draft_timer = self.set_timer(DRAFT_DEBOUNCE, self.stash_draft)

    @work(group="drafts", exit_on_error=False)
    async def persist_draft(self, thread_id: str, text: str) -> None:
        """Save one thread's draft through the backend."""
        await self._save_draft(thread_id, text)

    async def _save_draft(self, thread_id: str, text: str) -> None:
        if self.backend is None:
            return
        try:
            await self.backend.update_thread(thread_id, draft=text)
        except NotFound:
            return  # the thread was deleted meanwhile
        except TenexError as error:
            self.notify(
                "Could not save the draft: " + display_error(str(error)),
                severity="warning",
                markup=False,
            )
            return
        self._saved_drafts[thread_id] = text

    async def save_drafts(self) -> None:
        """Save every unsaved draft now (before quitting)."""
        composer = self.composer
        if self._composer_thread is not None and composer.editing is None:
            self._drafts[self._composer_thread] = composer.text
        for thread_id, text in list(self._drafts.items()):
            if thread_id and self._saved_drafts.get(thread_id) != text:
                await self._save_draft(thread_id, text)

    # --- sending and streaming -------------------------------------------------------

    @on(Composer.Submitted, "#composer")
    async def composer_submitted(self, event: Composer.Submitted) -> None:
        backend = self.backend
        if backend is None:
            self.notify("The workspace is still opening.", markup=False)
            return
        text = event.text
        composer = self.composer
        if event.editing is not None and self.thread is not None:
            self.resend_edited(self.thread.id, event.editing, text)
            return
        thread = self.thread
        if thread is None:
            try:
                thread = await backend.create_thread(title=first_line(text) or None)
            except TenexError as error:
                self.notify(display_error(str(error)), severity="error", markup=False)
                return
            self._drafts.pop("", None)
            self.thread = thread
            self._composer_thread = thread.id
            self.thread_created(thread)
            await self.pane.show_thread(thread.id, [], has_older=False)
            self._show_info()
        thread_id = thread.id
        self._loading_composer = True
        composer.clear()
        self._loading_composer = False
        self._drafts[thread_id] = ""
        request_id = uuid.uuid4().hex
        self.start_reply(
            thread_id,
            lambda: backend.send_message(thread_id, text, client_request_id=request_id),
            restore=text,
        )

    def thread_created(self, thread: Thread) -> None:
        """A thread was created by sending into an empty composer (sidebar updates)."""
        self.threads.insert_top(thread)

    def start_reply(
        self, thread_id: str, stream: StreamFactory, *, restore: str | None = None
    ) -> ReplyState:
        """Track a new reply and start consuming its stream."""
        state = self.replies.start(thread_id)
        if self.thread is not None and self.thread.id == thread_id:
            self.composer.locked = True
        self.stream_reply(state, stream, restore)
        return state

    @work(group="reply", exit_on_error=False)
    async def stream_reply(
        self, state: ReplyState, stream: StreamFactory, restore: str | None
    ) -> None:
        """Consume one reply's events until the terminal one (STYLE.md §4)."""
        thread_id = state.thread_id
        started = state.message_id is not None
        try:
            async for event in stream():
                if event.type == "message.started" and not started:
                    started = True
                    state.apply(event)
                    await self._reply_started(state)
                    continue
                state.apply(event)
                if event.terminal:
                    break
        except TenexError as error:
            if not started:
                self._send_failed(state, error, restore)
                return
            state.fail(display_error(str(error)), status="interrupted")
        finally:
            if self.thread is not None and self.thread.id == thread_id:
                self.composer.locked = (
                    self.replies.get(thread_id) is not None and not state.done
                )
        if not state.done:
            state.fail("The stream ended without a final event.", status="interrupted")
        await self._reply_finished(state)

    async def _reply_started(self, state: ReplyState) -> None:
        thread_id = state.thread_id
        self.threads.set_status(thread_id, "streaming", unread=False)
        self.threads.bump(thread_id, self.now())
        if self.pane.thread_id != thread_id:
            return
        user = state.user_message
        if user is not None and self.pane.view_for(user.id) is None:
            await self.pane.add_message(user)
        await self.pane.start_reply(state)

    async def _reply_finished(self, state: ReplyState) -> None:
        thread_id = state.thread_id
        final = state.final
        if final is None and state.message_id is not None and self.backend is not None:
            try:
                final = await self.backend.get_message(thread_id, state.message_id)
            except TenexError:
                final = None
        self.replies.finish(state)
        showing = self.pane.thread_id == thread_id
        if showing:
            await self.pane.finish_reply(state, final)
            if self.thread is not None and self.thread.id == thread_id:
                self.composer.locked = False
        status = final.status if final is not None else state.status
        self.threads.set_status(thread_id, status, unread=not showing)
        if showing and self.screen is self.app.screen:
            self.mark_read(thread_id)
        if status == "error" and not showing:
            self.notify(
                "A reply failed in another thread.", severity="warning", markup=False
            )

    def _send_failed(
        self, state: ReplyState, error: TenexError, restore: str | None
    ) -> None:
        self.replies.finish(state)
        thread_id = state.thread_id
        if restore is not None:
            # The message was not stored: give the text back, never lose it.
            if self.thread is not None and self.thread.id == thread_id:
                composer = self.composer
                composer.locked = False
                if not composer.text.strip():
                    composer.set_text(restore)
                else:
                    composer.set_text(restore + "\n" + composer.text)
            else:
                self._drafts[thread_id] = restore + self._drafts.get(thread_id, "")
        elif self.thread is not None and self.thread.id == thread_id:
            self.composer.locked = False
        message = display_error(str(error))
        if isinstance(error, ModelNotConfigured):
            message = "No model is connected: " + message
            self.load_info()
        self.notify(message, title="Not sent", severity="error", markup=False)

    def _attach_stream(self, thread_id: str, message: Message) -> ReplyState | None:
        backend = self.backend
        if backend is None:
            return None
        state = self.replies.start(thread_id)
        state.message_id = message.id
        state.started = message
        state.model = message.model
        message_id = message.id
        self.stream_reply(
            state, lambda: backend.stream_events(thread_id, message_id), None
        )
        return state

    # --- actions on the reply ----------------------------------------------------------

    def action_escape(self) -> None:
        """Esc: stop the reply streaming here; else leave edit mode; else go back."""
        live = self.replies.get(self.thread.id if self.thread else None)
        if live is not None:
            self.action_stop_reply()
            return
        composer = self.composer
        if composer.editing is not None:
            composer.editing = None
            composer.set_text(self._edit_restore or "")
            self._edit_restore = None
            return
        self.escape_to_sidebar()

    def escape_to_sidebar(self) -> None:
        """Esc with nothing to stop: back to the sidebar."""
        if self.query_one("#sidebar").display:
            self.threads.focus()

    def action_stop_reply(self) -> None:
        """Stop the reply streaming in the open thread."""
        live = self.replies.get(self.thread.id if self.thread else None)
        if live is None:
            return
        if live.message_id is None:
            self.workers.cancel_group(self, "reply")
            return
        self.cancel_reply(live.thread_id, live.message_id)

    @work(group="cancel", exit_on_error=False)
    async def cancel_reply(self, thread_id: str, message_id: str) -> None:
        """Ask the backend to stop a reply (the stream then ends `stopped`)."""
        if self.backend is None:
            return
        try:
            await self.backend.cancel_message(thread_id, message_id)
        except TenexError as error:
            self.notify(display_error(str(error)), severity="error", markup=False)

    def _can_rerun(self) -> str | None:
        if self.backend is None or self.thread is None:
            return None
        if self.replies.get(self.thread.id) is not None:
            self.notify("A reply is still being written.", markup=False)
            return None
        return self.thread.id

    async def action_regenerate_reply(self) -> None:
        """Answer the last user message again (also how a failed reply is retried)."""
        await self._rerun("regenerate")

    async def action_continue_reply(self) -> None:
        """Ask the model to carry on from where the last reply ended."""
        await self._rerun("continue")

    async def _rerun(self, mode: str) -> None:
        thread_id = self._can_rerun()
        backend = self.backend
        if thread_id is None or backend is None:
            return
        if mode == "regenerate":
            await self.pane.remove_messages(self._replies_after_last_user())
            stream: StreamFactory = lambda: backend.regenerate(thread_id)  # noqa: E731
        else:
            stream = lambda: backend.regenerate(thread_id, mode="continue")  # noqa: E731
        self.start_reply(thread_id, stream)

    def _replies_after_last_user(self) -> list[str]:
        doomed: list[str] = []
        for view in reversed(self.pane.views):
            if isinstance(view, MessageView) and view.message.role == "user":
                break
            if view.message_id is not None:
                doomed.append(view.message_id)
        return doomed

    def action_edit_last(self) -> None:
        """Put the last user message in the composer to edit and resend it."""
        if self._can_rerun() is None:
            return
        last_user = None
        for view in reversed(self.pane.views):
            if isinstance(view, MessageView) and view.message.role == "user":
                last_user = view.message
                break
        if last_user is None:
            self.notify("There is no message of yours to edit here.", markup=False)
            return
        composer = self.composer
        self._edit_restore = composer.text
        self._loading_composer = True
        composer.editing = last_user.id
        composer.set_text(last_user.content)
        self._loading_composer = False
        composer.focus()

    @work(group="edit", exit_on_error=False)
    async def resend_edited(self, thread_id: str, message_id: str, text: str) -> None:
        """Replace the last user message, drop what followed, and get a new reply."""
        backend = self.backend
        if backend is None:
            return
        try:
            edited = await backend.edit_message(thread_id, message_id, text)
        except TenexError as error:
            self.notify(display_error(str(error)), severity="error", markup=False)
            return
        composer = self.composer
        composer.editing = None
        composer.set_text(self._edit_restore or "")
        self._edit_restore = None
        after = False
        doomed = []
        for view in self.pane.views:
            if after and view.message_id is not None:
                doomed.append(view.message_id)
            if view.message_id == message_id:
                after = True
        await self.pane.remove_messages(doomed)
        self.pane.update_message(edited)
        self.start_reply(thread_id, lambda: backend.regenerate(thread_id))

    # --- copying and links -------------------------------------------------------------

    def action_copy_message(self) -> None:
        """Copy the selected message (controls removed, T33)."""
        view = self.pane.selected_view
        if view is None:
            return
        text = view.copy_text()
        self.app.copy_to_clipboard(text)
        self.notify(f"Copied {len(text)} characters.", markup=False)

    def action_copy_code(self) -> None:
        """Copy the last code block of the selected message."""
        view = self.pane.selected_view
        if view is None:
            return
        source = (
            view.message.content if isinstance(view, MessageView) else view.state.text
        )
        blocks = code_blocks(source)
        if not blocks:
            self.notify("No code block in this message.", markup=False)
            return
        self.app.copy_to_clipboard(clipboard_text(blocks[-1]))
        self.notify("Copied the code block.", markup=False)

    def action_open_links(self) -> None:
        """List the selected message's links to open one."""
        view = self.pane.selected_view
        if view is None:
            return
        source = (
            view.message.content if isinstance(view, MessageView) else view.state.text
        )
        links = extract_links(source)
        if not links:
            self.notify("No links in this message.", markup=False)
            return

        def chosen(url: str | None) -> None:
            if url is not None:
                self.app.post_message(OpenLinkRequested(url))

        self.app.push_screen(LinksModal(links), chosen)

    @on(Markdown.LinkClicked)
    def markdown_link_clicked(self, event: Markdown.LinkClicked) -> None:
        event.stop()
        self.app.post_message(OpenLinkRequested(event.href))

    # --- focus -----------------------------------------------------------------------

    def action_focus_sidebar(self) -> None:
        """Move focus to the thread list."""
        sidebar = self.query_one("#sidebar")
        sidebar.display = True
        self.threads.focus()

    def action_focus_messages(self) -> None:
        """Move focus to the message pane."""
        self.pane.focus()

    def action_focus_composer(self) -> None:
        """Move focus to the composer."""
        self.composer.focus()

    @property
    def selected_reply_view(self) -> ReplyView | None:
        """The live reply view in the pane, if any."""
        return self.pane.reply_view
