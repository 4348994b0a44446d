"""The main screen: the conversation plus triage of the thread list.

Triage keys live on the sidebar (`ThreadList.BINDINGS`) and run actions here, where the
backend is: new, rename, pin, archive, delete (confirmed, then undoable for a few
seconds: rows disappear at once, the delete happens when the undo window closes or on
quit), marks for bulk actions, the archived view, filter-as-you-type and search.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import ClassVar

from rich.text import Text
from textual import on, work
from textual.binding import Binding, BindingType
from textual.timer import Timer
from textual.widgets import Input

from tenex_tui.core.errors import NotFound, TenexError
from tenex_tui.core.models import Agent, Page, SearchHit, Thread
from tenex_tui.ui.format import display_error, thread_title
from tenex_tui.ui.screens.base import NEW_THREAD_KEY
from tenex_tui.ui.screens.modals import (
    ConfirmModal,
    NewThreadModal,
    NewThreadRequest,
    RenameModal,
)
from tenex_tui.ui.screens.search import SearchModal
from tenex_tui.ui.screens.workspace import WorkspaceScreen
from tenex_tui.ui.widgets.message_view import KeyLabel
from tenex_tui.ui.widgets.panels import SidebarTitle
from tenex_tui.ui.widgets.thread_list import PageSource, ThreadList
from tenex_tui.ui.widgets.thread_rows import ThreadRow

UNDO_SECONDS = 5.0
"""How long a deleted thread can be brought back."""
FILTER_DEBOUNCE = 0.15
"""Seconds of quiet typing in the filter before the list reloads."""
SIDEBAR_PAGE = 100
"""Threads per sidebar page."""


@dataclass(eq=False)
class PendingDelete:
    """Threads hidden from the list, to be deleted when the undo window closes."""

    rows: list[tuple[int, ThreadRow]]
    """The rows taken out, with their positions (for the undo)."""
    timer: Timer | None = None
    """Fires the real delete."""
    ids: list[str] = field(default_factory=list)
    """The threads to delete."""


class ChatScreen(WorkspaceScreen):
    """The one main screen of the app."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding(
            "ctrl+f",
            "search",
            "Search",
            show=False,
            id="app.search",
            tooltip="Search every message and title",
        ),
        Binding(
            "f2",
            "knowledge",
            "Knowledge",
            show=False,
            id="app.knowledge",
            tooltip="Browse, search, add and remove knowledge documents",
        ),
        Binding(
            "f3",
            "leads",
            "Leads",
            show=False,
            id="app.leads",
            tooltip="List the leads and their fields",
        ),
    ]

    def __init__(
        self,
        *,
        now: Callable[[], datetime],
        key_label: KeyLabel,
        show_sidebar: bool = True,
    ) -> None:
        super().__init__(now=now, key_label=key_label, show_sidebar=show_sidebar)
        self.archived_view = False
        """True when the sidebar lists archived threads."""
        self.filter_query = ""
        """The sidebar's title filter."""
        self.undo_seconds = UNDO_SECONDS
        """How long a delete can be undone (tests shorten it)."""
        self._pending: list[PendingDelete] = []
        self._filter_timer: Timer | None = None
        self._agents: list[Agent] | None = None

    # --- the list's view ---------------------------------------------------------------

    def _source(self) -> PageSource:
        backend = self.backend
        archived = self.archived_view
        query = self.filter_query.strip() or None
        hidden = {thread_id for pending in self._pending for thread_id in pending.ids}

        async def fetch(cursor: str | None) -> Page[Thread]:
            assert backend is not None
            page = await backend.list_threads(
                limit=SIDEBAR_PAGE, cursor=cursor, archived=archived, q=query
            )
            if hidden:
                # Deleted but still undoable: the backend has them, the user does not.
                items = [thread for thread in page.items if thread.id not in hidden]
                return Page[Thread](
                    items=items, next_cursor=page.next_cursor, total=page.total
                )
            return page

        return fetch

    def reload_threads(self, *, select: str | None = None) -> None:
        if self.backend is None:
            return
        self.threads.load(self._source(), select=select)
        self._show_title()

    def _show_title(self) -> None:
        threads = self.threads
        count = threads.row_count if threads.fully_loaded else None
        if count is None and threads.rows:
            count = threads.row_count
        self.query_one("#sidebar-title", SidebarTitle).show(
            archived=self.archived_view, query=self.filter_query, count=count
        )

    @on(ThreadList.Highlighted, "#threads")
    def update_title_count(self) -> None:
        self._show_title()

    @on(ThreadList.PageLoaded, "#threads")
    def page_loaded(self, event: ThreadList.PageLoaded) -> None:
        self._show_title()
        if event.rows == 0 and self.thread is None:
            if self.archived_view:
                text = "The archive is empty. Press A to go back to your threads."
            elif self.filter_query:
                text = "No thread title matches the filter. Esc clears it."
            else:
                self.show_welcome("empty")
                return
            self.show_pane()
            self.run_worker(self.pane.show_placeholder(text), group="pane")
        elif event.rows and self.welcome.display:
            # Threads exist: the first one is previewed in a moment, in the pane.
            self.show_pane()

    @on(ThreadList.LoadFailed, "#threads")
    def threads_failed(self, event: ThreadList.LoadFailed) -> None:
        self.notify(event.error, title="Threads", severity="error", markup=False)
        if self.welcome.display and self.welcome.state == "opening":
            self.show_welcome("failed", event.error)

    def action_toggle_archived(self) -> None:
        """Switch the sidebar between live and archived threads."""
        self.archived_view = not self.archived_view
        self.reload_threads()
        self.threads.focus()

    def action_filter_threads(self) -> None:
        """Show the title filter and put the cursor in it."""
        box = self.query_one("#filter", Input)
        box.display = True
        box.focus()

    @on(Input.Changed, "#filter")
    def filter_changed(self, event: Input.Changed) -> None:
        if self._filter_timer is not None:
            self._filter_timer.stop()
        value = event.value

        def apply() -> None:
            if value != self.filter_query:
                self.filter_query = value
                self.reload_threads()

        self._filter_timer = self.set_timer(FILTER_DEBOUNCE, apply)

    @on(Input.Submitted, "#filter")
    def filter_submitted(self) -> None:
        self.threads.focus()

    def escape_to_sidebar(self) -> None:
        box = self.query_one("#filter", Input)
        if self.focused is box:
            box.value = ""
            box.display = False
            if self.filter_query:
                self.filter_query = ""
                self.reload_threads()
            self.threads.focus()
            return
        if self.focused is self.threads and self.threads.clear_marks():
            return
        if self.focused is self.threads and self.archived_view:
            self.action_toggle_archived()
            return
        super().escape_to_sidebar()

    # --- new and rename ----------------------------------------------------------------

    async def action_new_thread(self) -> None:
        """Ask for a title, agent and system prompt, then create and open the thread.

        The composer is emptied and focused *before* the dialog opens, so it is what
        has focus the moment the dialog closes: whatever the user types next lands in
        the new thread's message (not in the sidebar, where letters are commands), and
        an Enter pressed before the thread exists sends it once it does.
        """
        if self.backend is None:
            return
        if self._agents is None:
            try:
                self._agents = await self.backend.list_agents()
            except TenexError:
                self._agents = []
        before = self.focused
        self.stash_draft()
        composer = self.composer
        self._composer_thread = NEW_THREAD_KEY
        self._loading_composer = True
        composer.editing = None
        composer.set_text("")
        self._loading_composer = False
        self.set_attachments([])
        composer.locked = False
        self.set_focus(composer)

        def answered(request: NewThreadRequest | None) -> None:
            if request is None:
                self._new_thread_cancelled(before)
                return
            if request.typed_ahead:
                composer.insert(request.typed_ahead)
            self._send_when_created = self._send_when_created or request.send
            self.create_thread(request)

        self.app.push_screen(NewThreadModal(self._agents), answered)

    def _new_thread_cancelled(self, before: object) -> None:
        self._send_when_created = False
        self.composer.locked = False
        typed = self.composer.text
        self._composer_thread = None
        self._load_composer(self.thread)
        if typed.strip():
            # Typed while the dialog closed: keep it, after the thread's draft.
            joined = (
                (self.composer.text + "\n" + typed) if self.composer.text else typed
            )
            self.composer.set_text(joined)
        if before is self.threads and self.query_one("#sidebar").display:
            self.threads.focus()

    @work(group="triage", exit_on_error=False)
    async def create_thread(self, request: NewThreadRequest) -> None:
        """Create a thread and open it with the cursor in the composer; send what was
        typed meanwhile if Enter was pressed."""
        if self.backend is None:
            return
        try:
            thread = await self.backend.create_thread(
                title=request.title,
                system_prompt=request.system_prompt,
                agent=request.agent,
            )
        except TenexError as error:
            self._send_when_created = False
            self.notify(display_error(str(error)), severity="error", markup=False)
            self._new_thread_cancelled(self.composer)
            return
        composer = self.composer
        self.stash_draft()  # what was typed meanwhile, under the new-thread key
        self._drafts[thread.id] = self._drafts.pop(NEW_THREAD_KEY, "")
        self._attachments[thread.id] = self._attachments.pop(NEW_THREAD_KEY, [])
        self._saved_drafts[thread.id] = ""
        self._composer_thread = thread.id
        self._target_thread_id = thread.id
        self.thread = thread
        if self.archived_view or self.filter_query:
            self.archived_view = False
            self.filter_query = ""
            self.query_one("#filter", Input).display = False
            self.reload_threads(select=thread.id)
        else:
            self.threads.insert_top(thread)
        await self.pane.show_thread(thread.id, [], has_older=False)
        self.show_pane()
        self._show_info()
        composer.locked = False
        if self.app.screen is self:
            composer.focus()
        if self._send_when_created:
            self._send_when_created = False
            composer.action_submit()
        elif composer.text:
            self.persist_draft(thread.id, composer.text)

    def action_rename_thread(self) -> None:
        """Rename the thread under the cursor."""
        row = self.threads.highlighted
        if row is None or self.backend is None:
            return
        thread_id = row.id

        def done(title: str | None) -> None:
            if title is not None:
                self.rename_thread(thread_id, title)

        self.app.push_screen(RenameModal(row.title), done)

    @work(group="triage", exit_on_error=False)
    async def rename_thread(self, thread_id: str, title: str) -> None:
        """Save a new title."""
        if self.backend is None:
            return
        try:
            thread = await self.backend.update_thread(thread_id, title=title)
        except TenexError as error:
            self.notify(display_error(str(error)), severity="error", markup=False)
            return
        self.threads.update_row(thread)
        if self.thread is not None and self.thread.id == thread_id:
            self.thread = thread
            self._show_info()

    # --- pin, archive (bulk) -----------------------------------------------------------

    def action_pin_threads(self) -> None:
        """Pin the marked threads (or the one under the cursor); unpin if all are."""
        targets = self.threads.targets()
        if not targets:
            return
        rows = [self.threads.row_for(t) for t in targets]
        pin = not all(row is not None and row.pinned for row in rows)
        self.pin_threads(targets, pin)

    @work(group="triage", exit_on_error=False)
    async def pin_threads(self, thread_ids: list[str], pin: bool) -> None:
        """Pin or unpin threads, moving their rows to the right section."""
        if self.backend is None:
            return
        done = 0
        for thread_id in thread_ids:
            try:
                thread = await self.backend.update_thread(thread_id, pinned=pin)
            except TenexError as error:
                self.notify(display_error(str(error)), severity="error", markup=False)
                continue
            self.threads.move_to_section(thread)
            done += 1
        self.threads.clear_marks()
        if len(thread_ids) > 1:
            verb = "Pinned" if pin else "Unpinned"
            self.notify(f"{verb} {done} threads.", markup=False)

    def action_archive_threads(self) -> None:
        """Archive the marked threads (or the one under the cursor); in the archive
        view, bring them back."""
        targets = self.threads.targets()
        if targets:
            self.archive_threads(targets, not self.archived_view)

    @work(group="triage", exit_on_error=False)
    async def archive_threads(self, thread_ids: list[str], archive: bool) -> None:
        """Archive or unarchive threads; their rows leave this view."""
        if self.backend is None:
            return
        moved: list[str] = []
        for thread_id in thread_ids:
            try:
                await self.backend.update_thread(thread_id, archived=archive)
            except TenexError as error:
                self.notify(display_error(str(error)), severity="error", markup=False)
                continue
            moved.append(thread_id)
        self.threads.remove_rows(moved)
        self._show_title()
        verb = "Archived" if archive else "Restored"
        noun = "thread" if len(moved) == 1 else "threads"
        if moved:
            self.notify(f"{verb} {len(moved)} {noun}.", markup=False)

    # --- delete with undo --------------------------------------------------------------

    def action_delete_threads(self) -> None:
        """Ask, then hide the marked threads (or the cursor's) and delete them after
        the undo window."""
        targets = self.threads.targets()
        if not targets:
            return
        rows = [row for t in targets if (row := self.threads.row_for(t)) is not None]
        if len(rows) == 1:
            body = Text("Delete ")
            body.append(rows[0].title, "bold")
            body.append(" and all its messages?")
        else:
            body = Text(f"Delete {len(rows)} threads and all their messages?\n\n")
            for row in rows[:5]:
                body.append("  • " + row.title + "\n")
            if len(rows) > 5:
                body.append(f"  … and {len(rows) - 5} more\n")
        key = self.key_label("thread.undo")
        body.append(
            f"\nYou can undo for {self.undo_seconds:.0f} seconds ({key}).", "dim"
        )

        def confirmed(yes: bool | None) -> None:
            if yes:
                self._hide_for_delete(targets)

        title = "Delete thread?" if len(rows) == 1 else "Delete threads?"
        self.app.push_screen(ConfirmModal(title, body), confirmed)

    def _hide_for_delete(self, thread_ids: list[str]) -> None:
        removed = self.threads.remove_rows(thread_ids)
        pending = PendingDelete(rows=removed, ids=list(thread_ids))
        pending.timer = self.set_timer(
            self.undo_seconds, lambda: self._delete_now(pending)
        )
        self._pending.append(pending)
        if self.thread is not None and self.thread.id in thread_ids:
            self.thread = None
            self._target_thread_id = None
            self._composer_thread = None
            self.composer.set_text("")
            self.run_worker(self.pane.show_placeholder("Thread deleted."), group="pane")
            self._show_info()
        noun = (
            f"“{thread_title(removed[0][1].title, max_chars=40)}”"
            if len(removed) == 1
            else f"{len(thread_ids)} threads"
        )
        key = self.key_label("thread.undo")
        self.notify(
            f"Deleted {noun}. Press {key} to undo.",
            timeout=self.undo_seconds,
            markup=False,
        )
        self._show_title()

    def action_undo_delete(self) -> None:
        """Bring back the most recently deleted threads, if still possible."""
        if not self._pending:
            self.notify("Nothing to undo.", markup=False)
            return
        pending = self._pending.pop()
        if pending.timer is not None:
            pending.timer.stop()
        self.threads.restore_rows(pending.rows)
        self._show_title()
        self.threads.focus()
        self.notify("Restored.", markup=False)

    def _delete_now(self, pending: PendingDelete) -> None:
        if pending in self._pending:
            self._pending.remove(pending)
            self.delete_threads(pending.ids)

    @work(group="delete", exit_on_error=False)
    async def delete_threads(self, thread_ids: list[str]) -> None:
        """Delete threads for good."""
        await self._delete(thread_ids)

    async def _delete(self, thread_ids: list[str]) -> None:
        if self.backend is None:
            return
        for thread_id in thread_ids:
            try:
                await self.backend.delete_thread(thread_id)
            except NotFound:
                continue
            except TenexError as error:
                self.notify(display_error(str(error)), severity="error", markup=False)
            self._drafts.pop(thread_id, None)
            self._saved_drafts.pop(thread_id, None)

    async def flush_deletes(self) -> None:
        """Carry out every pending delete now (the app is quitting)."""
        while self._pending:
            pending = self._pending.pop()
            if pending.timer is not None:
                pending.timer.stop()
            await self._delete(pending.ids)

    def stash_draft(self) -> None:
        # A thread waiting to be deleted keeps no draft.
        key = self._composer_thread
        if key and any(key in pending.ids for pending in self._pending):
            return
        super().stash_draft()

    # --- search ----------------------------------------------------------------------

    def action_search(self) -> None:
        """Full-text search; the chosen hit opens its thread at the message."""
        backend = self.backend
        if backend is None:
            return

        async def search(query: str, cursor: str | None) -> Page[SearchHit]:
            return await backend.search(query, cursor=cursor, limit=50)

        self.app.push_screen(SearchModal(search, now=self.now), self._open_hit)

    def _open_hit(self, hit: SearchHit | None) -> None:
        if hit is None:
            return
        self.show_thread(hit.thread_id, select_message=hit.message_id)
        # The thread may be archived or not loaded yet: then the cursor stays put.
        self.threads.select(hit.thread_id)

    def open_thread_by_id(self, thread_id: str) -> None:
        """Open a thread chosen elsewhere (the command palette)."""
        self.show_thread(thread_id, focus_composer=True)
        self.threads.select(thread_id)

    # --- quitting ----------------------------------------------------------------------

    async def prepare_quit(self) -> None:
        """Save drafts and finish pending deletes before the app exits."""
        await self.save_drafts()
        await self.flush_deletes()
