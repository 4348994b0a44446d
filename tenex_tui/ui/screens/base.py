"""The base of the main screen: the layout, the backend, showing a thread, drafts.

`ThreadScreen` lays out the sidebar, header, message pane and composer, receives the
backend from the app, shows the highlighted or opened thread (newest page first, older
pages on scroll-up), and keeps the composer's drafts per thread: in memory, and through
`update_thread(draft=…)` — debounced while typing, on every thread switch, and on quit.
`ConversationScreen` adds the chat flows and `ChatScreen` the triage.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from datetime import datetime

from textual import log, on, work
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.timer import Timer
from textual.widgets import Input, TextArea
from textual.worker import Worker, WorkerState

from tenex_tui.core.backend import ChatBackend
from tenex_tui.core.errors import NotFound, TenexError
from tenex_tui.core.models import BackendInfo, Message, Thread
from tenex_tui.ui.format import display_error
from tenex_tui.ui.pending import PendingAttachment
from tenex_tui.ui.replies import ReplyState, ReplyTracker
from tenex_tui.ui.widgets.attachment_chips import AttachmentChips
from tenex_tui.ui.widgets.composer import Composer
from tenex_tui.ui.widgets.key_footer import KeyFooter
from tenex_tui.ui.widgets.message_pane import MessagePane
from tenex_tui.ui.widgets.message_view import KeyLabel, ReplyView
from tenex_tui.ui.widgets.panels import (
    NoModelPanel,
    SidebarTitle,
    ThreadHeader,
    WelcomePanel,
    WelcomeState,
)
from tenex_tui.ui.widgets.thread_list import ThreadList

FIRST_MOUNT = 12
"""Messages mounted when a thread opens (the newest; enough to fill a tall screen)."""
MOUNT_BATCH = 15
"""Messages mounted per scroll-up."""
WARM_AFTER = 0.5
"""Seconds after the backend arrives when the streaming renderer is imported."""
MESSAGE_PAGE = 30
"""Messages per page fetched. One size for every page of a thread, because a cursor is
only valid with the page size it was made for."""
JUMP_PAGES = 40
"""Pages searched back for a search hit's message (1,200 messages) before giving up."""
DRAFT_DEBOUNCE = 1.0
"""Seconds of quiet typing before a draft is saved."""
FETCH_ATTEMPTS = 3
"""Times a thread's page is fetched when the pane changed during the fetch."""
PREVIEW_DELAY = 0.12
"""Seconds the sidebar cursor rests on a thread before it is shown."""
NEW_THREAD_KEY = "+new"
"""The composer's key while the new-thread dialog is open and the thread is being
created: what is typed meanwhile becomes the new thread's draft (never a thread id)."""


class ThreadScreen(Screen[None]):
    """Sidebar, header, messages and composer; shows threads and keeps drafts."""

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
        self._attachments: dict[str, list[PendingAttachment]] = {}
        self._composer_thread: str | None = None
        self._draft_timer: Timer | None = None
        self._preview_timer: Timer | None = None
        self._older: list[Message] = []
        self._older_cursor: str | None = None
        self._edit_restore: str | None = None
        self._loading_composer = False
        self._target_thread_id: str | None = None
        self._send_when_created = False
        self._sent_attachments: dict[ReplyState, list[PendingAttachment]] = {}

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
                yield WelcomePanel(id="welcome")
                yield MessagePane(now=self.now, key_label=self.key_label, id="messages")
                yield Composer(id="composer")
                yield AttachmentChips(id="chips")
        yield KeyFooter()

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

    @property
    def chips(self) -> AttachmentChips:
        """The attachment chips under the composer."""
        return self.query_one("#chips", AttachmentChips)

    @property
    def welcome(self) -> WelcomePanel:
        """The panel shown instead of the messages while no thread is open."""
        return self.query_one("#welcome", WelcomePanel)

    def show_welcome(self, state: WelcomeState, error: str | None = None) -> None:
        """Show the welcome panel (opening, empty workspace, failed) instead of the
        messages. Synchronous on purpose: no later, slower placeholder can cover it."""
        self.welcome.show(state, self.info, key_label=self.key_label, error=error)
        self.welcome.display = True
        self.pane.display = False

    def show_pane(self) -> None:
        """Show the messages (a thread, or a hint in the pane) instead of the welcome."""
        self.welcome.display = False
        self.pane.display = True

    async def on_mount(self) -> None:
        self.query_one("#sidebar").display = self._show_sidebar
        self.query_one("#filter", Input).display = False
        self.query_one("#no-model", NoModelPanel).display = False
        self.chips.display = False
        self.query_one("#sidebar-title", SidebarTitle).show(
            archived=False, query="", count=None
        )
        self.show_welcome("opening")
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

    @on(Worker.StateChanged)
    def worker_failed(self, event: Worker.StateChanged) -> None:
        # Expected failures are handled inside each worker; anything that escapes is a
        # bug, but it must not cost the user their work: say so and carry on.
        if event.state == WorkerState.ERROR and event.worker.error is not None:
            error = event.worker.error
            log.error(f"worker {event.worker.name} failed", error)
            self.notify(
                "Something went wrong: "
                + display_error(f"{type(error).__name__}: {error}"),
                severity="error",
                markup=False,
            )

    # --- the backend arrives -----------------------------------------------------------

    def attach(self, backend: ChatBackend) -> None:
        """Start using a backend: load its info and the first page of threads."""
        self.backend = backend
        self.load_info()
        self.reload_threads()
        self.set_timer(WARM_AFTER, _warm_renderers)

    def backend_failed(self, error: str) -> None:
        """Say that the workspace could not be opened."""
        self.threads.empty_text = "Could not open the workspace."
        self.threads.refresh()
        self.show_welcome("failed", error)

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
        welcome = self.welcome
        if welcome.display and welcome.state == "empty":
            welcome.show("empty", self.info, key_label=self.key_label)

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
        pane = self.pane
        for _attempt in range(FETCH_ATTEMPTS):
            # A send in this thread may change the pane while the page is fetched
            # (its message stored after the read, its reply finished before the page
            # lands): a page older than the pane is fetched again, not shown.
            changes = pane.changes if pane.thread_id == thread_id else None
            try:
                thread = await backend.get_thread(thread_id)
                if select_message is not None:
                    messages, cursor = await self._pages_until(
                        backend, thread_id, select_message
                    )
                else:
                    page = await backend.list_messages(
                        thread_id, limit=MESSAGE_PAGE, order="desc"
                    )
                    messages, cursor = list(reversed(page.items)), page.next_cursor
            except TenexError as error:
                self.notify(display_error(str(error)), severity="error", markup=False)
                return
            if changes is None or pane.changes == changes:
                break
        # Mount only what fills a screen or two: each finished message is rendered once
        # (Markdown, code highlighting), and that is what the first frame waits for. The
        # rest of the page waits in `_older` for a scroll-up.
        mounted = messages[-FIRST_MOUNT:]
        self._older = messages[:-FIRST_MOUNT]
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
        elif live is not None and live.held is not None:
            # A send waiting for the database: its message, and no reply yet.
            mounted, live = [*mounted, live.held], None
        elif (
            live is not None
            and (sent := live.user_message) is not None
            and all(message.id != sent.id for message in mounted)
        ):
            # A page fetched before a send stored its message can land after the
            # send showed it: keep the message above its reply.
            mounted = [*mounted, sent]
        await self.pane.show_thread(
            thread_id,
            mounted,
            has_older=bool(self._older) or cursor is not None,
            live=live,
            select=select_message,
        )
        self.show_pane()
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
                thread_id, limit=MESSAGE_PAGE, cursor=cursor, order="desc"
            )
            found.extend(page.items)
            cursor = page.next_cursor
            if cursor is None or any(m.id == message_id for m in page.items):
                break
        return list(reversed(found)), cursor

    def _attach_stream(self, thread_id: str, message: Message) -> ReplyState | None:
        """Follow a reply that is streaming without this app (ConversationScreen)."""
        return None

    @on(MessagePane.OlderWanted, "#messages")
    def older_wanted(self) -> None:
        self.load_older()

    @work(group="older", exclusive=True, exit_on_error=False)
    async def load_older(self) -> None:
        """Mount the page above the first message shown."""
        backend, thread = self.backend, self.thread
        if backend is None or thread is None:
            return
        if not self._older and self._older_cursor is not None:
            try:
                page = await backend.list_messages(
                    thread.id,
                    limit=MESSAGE_PAGE,
                    cursor=self._older_cursor,
                    order="desc",
                )
            except TenexError as error:
                self.pane.loading_older = False
                self.notify(display_error(str(error)), severity="error", markup=False)
                return
            if self.thread is None or self.thread.id != thread.id:
                return
            self._older_cursor = page.next_cursor
            self._older = list(reversed(page.items))
        batch = self._older[-MOUNT_BATCH:]
        del self._older[-MOUNT_BATCH:]
        await self.pane.prepend(
            batch, has_older=bool(self._older) or self._older_cursor is not None
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
            self._lock_composer(thread)
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
        self.set_attachments(self._attachments.get(key, []))
        self._lock_composer(thread)

    def _lock_composer(self, thread: Thread | None) -> None:
        # Locked while the thread has a reply in flight; saying so when that is a
        # message waiting for the database (T5).
        live = self.replies.get(thread.id if thread else None)
        self.composer.locked = live is not None
        self.composer.show_waiting(live is not None and live.held is not None)

    def set_attachments(self, items: list[PendingAttachment]) -> None:
        """Give the composer the next message's attachments, and show their chips."""
        self.composer.attachments = list(items)
        if self._composer_thread is not None:
            self._attachments[self._composer_thread] = list(items)
        self.chips.show(items)

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
        self._attachments[key] = list(composer.attachments)
        if (
            key
            and key != NEW_THREAD_KEY
            and self._saved_drafts.get(key) != composer.text
        ):
            self.persist_draft(key, composer.text)

    @on(TextArea.Changed, "#composer")
    def composer_changed(self) -> None:
        if self._loading_composer or self._composer_thread is None:
            return
        if self.composer.editing is None:
            self._drafts[self._composer_thread] = self.composer.text
        if self._draft_timer is not None:
            self._draft_timer.stop()
        if self._composer_thread != NEW_THREAD_KEY:
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
            if (
                thread_id
                and thread_id != NEW_THREAD_KEY
                and self._saved_drafts.get(thread_id) != text
            ):
                await self._save_draft(thread_id, text)

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


def _warm_renderers() -> None:
    # Textual's Markdown widget (and its parser) is kept off the start-up path, but the
    # first reply should not pay for importing it either: import it while idle.
    import textual.widgets._markdown  # noqa: F401
