"""The workspace features of the main screen: attachments, the knowledge browser, sync.

Attachments: the composer asks (`Composer.AttachRequested`); this screen shows a picker
(a file, a knowledge document, a lead), loads a file off the event loop with the
attachment loader, checks the message's budgets, and hands the chips down to the
composer. A refusal is one plain sentence in a notification; the draft and the other
chips stay as they were.

The knowledge browser (F2, F3 for leads) is its own screen (`screens/knowledge.py`),
imported when first opened.

Sync: when the backend keeps a local mirror of a remote workspace (`core.sync.Syncable`,
the `--remote` backend), a `sync` worker runs `sync_now()` every `SYNC_INTERVAL`
seconds and on "Sync now"; the header shows online/offline, what waits to be sent and
when the mirror was last brought up to date.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from textual import on, work
from textual.app import SystemCommand

from tenex_tui.core.backend import ChatBackend
from tenex_tui.core.errors import AttachmentError, TenexError
from tenex_tui.core.models import KnowledgeDoc, Lead, Page
from tenex_tui.core.sync import Syncable, SyncStatus
from tenex_tui.ui.format import display_error
from tenex_tui.ui.pending import (
    PendingAttachment,
    add_attachment,
    protected_paths,
    refusal,
)
from tenex_tui.ui.screens.conversation import ConversationScreen
from tenex_tui.ui.widgets.attachment_chips import AttachmentChips
from tenex_tui.ui.widgets.composer import Composer
from tenex_tui.ui.widgets.panels import ThreadHeader

if TYPE_CHECKING:
    from tenex_tui.attachments import AttachmentLimits, LoadedAttachment

SYNC_INTERVAL = 45.0
"""Seconds between two background syncs of a remote workspace."""
SYNC_FIRST_DELAY = 2.0
"""Seconds after start-up before the first background sync (after the first frame
and the first page of threads)."""
PICKER_HINT = "In the composer, Ctrl+G attaches a knowledge document and Ctrl+L a lead."


def syncable(backend: ChatBackend | None) -> Syncable | None:
    """The backend as a `Syncable` (a remote workspace's mirror), or None."""
    if backend is not None and isinstance(backend, Syncable):
        return backend
    return None


def attachment_limits(protected: Sequence[Path] = ()) -> AttachmentLimits:
    """The caps the composer loads files under: the loader's defaults, and never one
    of `protected` (tenex-tui's own files, which the app is given by the CLI)."""
    from tenex_tui.attachments import AttachmentLimits

    return AttachmentLimits(protected_paths=tuple(protected))


def _load_file(path: Path, limits: AttachmentLimits) -> LoadedAttachment:
    from tenex_tui.attachments import load_attachment

    return load_attachment(path, limits=limits)


class WorkspaceScreen(ConversationScreen):
    """Attachments, the knowledge browser and sync on top of the conversation."""

    sync_status: SyncStatus | None = None
    """The last sync status of a remote workspace (None for a local one)."""
    syncs = 0
    """How many syncs this screen ran (for tests)."""
    files_root: Path | None = None
    """Where the file picker starts (None: the working directory)."""

    # --- attachments --------------------------------------------------------------

    @on(Composer.AttachRequested, "#composer")
    def attach_requested(self, event: Composer.AttachRequested) -> None:
        backend = self.backend
        if backend is None:
            self.notify("The workspace is still opening.", markup=False)
            return
        if event.kind == "file":
            self._pick_file()
        elif event.kind == "knowledge":
            self._pick_knowledge(backend)
        else:
            self._pick_lead(backend)

    def _pick_file(self) -> None:
        from tenex_tui.ui.screens.pickers import FilePickerModal

        def picked(path: Path | None) -> None:
            self.composer.focus()
            if path is not None:
                self.load_file(path)

        self.app.push_screen(
            FilePickerModal(hint=PICKER_HINT, cwd=self.files_root), picked
        )

    def _pick_knowledge(self, backend: ChatBackend) -> None:
        from tenex_tui.ui.screens.pickers import KNOWLEDGE_PICKER, RecordPickerModal

        async def fetch(query: str | None, cursor: str | None) -> Page[KnowledgeDoc]:
            return await backend.list_knowledge(limit=50, cursor=cursor, q=query)

        def picked(doc: KnowledgeDoc | None) -> None:
            self.composer.focus()
            if doc is not None:
                self.add_pending(PendingAttachment.from_knowledge(doc))

        self.app.push_screen(RecordPickerModal(KNOWLEDGE_PICKER, fetch), picked)

    def _pick_lead(self, backend: ChatBackend) -> None:
        from tenex_tui.ui.screens.pickers import LEAD_PICKER, RecordPickerModal

        async def fetch(query: str | None, cursor: str | None) -> Page[Lead]:
            return await backend.list_leads(limit=50, cursor=cursor, q=query)

        def picked(lead: Lead | None) -> None:
            self.composer.focus()
            if lead is not None:
                self.add_pending(PendingAttachment.from_lead(lead))

        self.app.push_screen(RecordPickerModal(LEAD_PICKER, fetch), picked)

    @work(group="attach", exit_on_error=False)
    async def load_file(self, path: Path) -> None:
        """Read a file off the event loop and add it to the next message."""
        limits = attachment_limits(protected_paths(self.app))
        key = self._composer_thread
        try:
            loaded = await asyncio.to_thread(_load_file, path, limits)
        except AttachmentError as error:
            self.notify(
                display_error(str(error)),
                title="Not attached",
                severity="error",
                markup=False,
            )
            return
        item = PendingAttachment.from_file(loaded)
        if key is not None and key != self._composer_thread:
            # The user moved to another thread meanwhile: the file goes with the
            # draft it was picked for.
            pending = self._attachments.get(key, [])
            if refusal(pending, item, limits) is None:
                self._attachments[key] = [*pending, item]
            return
        self.add_pending(item, limits=limits)

    def add_pending(
        self, item: PendingAttachment, *, limits: AttachmentLimits | None = None
    ) -> bool:
        """Add a chip to the next message, unless it breaks a budget (then say why).

        Returns:
            Whether it was added.
        """
        existing = self.composer.attachments
        problem = refusal(
            existing, item, limits or attachment_limits(protected_paths(self.app))
        )
        if problem is not None:
            self.notify(
                display_error(problem),
                title="Not attached",
                severity="warning",
                markup=False,
            )
            return False
        items, replaced = add_attachment(existing, item)
        self.set_attachments(items)
        if replaced is not None:
            self.notify(
                f"A message carries one lead: {item.name} replaces {replaced.name}.",
                markup=False,
            )
        for warning in item.warnings[:2]:
            self.notify(display_error(warning), severity="warning", markup=False)
        return True

    @on(AttachmentChips.Removed, "#chips")
    def chip_removed(self, event: AttachmentChips.Removed) -> None:
        items = list(self.composer.attachments)
        if 0 <= event.index < len(items):
            removed = items.pop(event.index)
            self.set_attachments(items)
            self.notify(f"Removed {removed.name}.", markup=False)
        if not items:
            self.composer.focus()

    @on(AttachmentChips.Left, "#chips")
    def chips_left(self) -> None:
        self.composer.focus()

    # --- knowledge browser --------------------------------------------------------------

    def action_knowledge(self) -> None:
        """Open the knowledge browser on its documents."""
        self._open_browser("knowledge")

    def action_leads(self) -> None:
        """Open the knowledge browser on the leads."""
        self._open_browser("leads")

    def _open_browser(self, tab: str) -> None:
        if self.backend is None:
            self.notify("The workspace is still opening.", markup=False)
            return
        from tenex_tui.ui.screens.knowledge import KnowledgeScreen

        self.app.push_screen(
            KnowledgeScreen(
                self.backend, tab="leads" if tab == "leads" else "knowledge"
            )
        )

    def action_attach_file(self) -> None:
        """Attach a file to the next message (from the palette)."""
        self.composer.focus()
        self.composer.action_attach("file")

    def action_attach_knowledge(self) -> None:
        """Attach a knowledge document to the next message (from the palette)."""
        self.composer.focus()
        self.composer.action_attach("knowledge")

    def action_attach_lead(self) -> None:
        """Attach a lead to the next message (from the palette)."""
        self.composer.focus()
        self.composer.action_attach("lead")

    def workspace_commands(self) -> Iterable[SystemCommand]:
        """Palette commands for attachments, knowledge, leads and sync."""
        yield SystemCommand(
            "Knowledge browser",
            "List, search, add and remove brand documents",
            self.action_knowledge,
        )
        yield SystemCommand(
            "Leads", "List the leads and their fields", self.action_leads
        )
        yield SystemCommand(
            "Attach a file", "Add a file to your next message", self.action_attach_file
        )
        yield SystemCommand(
            "Attach a knowledge document",
            "Add a brand document to your next message",
            self.action_attach_knowledge,
        )
        yield SystemCommand(
            "Attach a lead", "Add a lead to your next message", self.action_attach_lead
        )
        if syncable(self.backend) is not None:
            yield SystemCommand(
                "Sync now",
                "Send what waits offline and fetch the remote workspace's changes",
                self.action_sync_now,
            )

    # --- sync ---------------------------------------------------------------------------

    def attach(self, backend: ChatBackend) -> None:
        super().attach(backend)
        if syncable(backend) is not None:
            self.refresh_sync_status()
            self.set_timer(SYNC_FIRST_DELAY, self.sync_workspace)
            self.set_interval(SYNC_INTERVAL, self.sync_workspace)

    def action_sync_now(self) -> None:
        """Sync the remote workspace now."""
        if syncable(self.backend) is None:
            self.notify(
                "This workspace is local: there is nothing to sync.", markup=False
            )
            return
        self.notify("Syncing…", timeout=2, markup=False)
        self.sync_workspace(announce=True)

    def sync_changed(self) -> None:
        if syncable(self.backend) is not None:
            self.refresh_sync_status()

    @work(group="sync-status", exclusive=True, exit_on_error=False)
    async def refresh_sync_status(self) -> None:
        """Read the sync status from the local store (no network) and show it."""
        backend = syncable(self.backend)
        if backend is None:
            return
        try:
            status = await backend.sync_status()
        except TenexError:
            return
        self._show_sync(status)

    @work(group="sync", exclusive=True, exit_on_error=False)
    async def sync_workspace(self, announce: bool = False) -> None:
        """Push the outbox and pull the remote's changes, then refresh what changed."""
        backend = syncable(self.backend)
        if backend is None:
            return
        before = self.sync_status
        try:
            status = await backend.sync_now()
        except TenexError as error:
            if announce:
                self.notify(display_error(str(error)), severity="error", markup=False)
            return
        self.syncs += 1
        self._show_sync(status)
        self.load_info()
        synced = status.last_sync_at is not None and (
            before is None or before.last_sync_at != status.last_sync_at
        )
        if synced:
            self.threads.reload()
        if before is not None and status.pending < before.pending:
            self._reload_open_thread()
        if announce:
            if status.last_error and not synced:
                self.notify(
                    "Not synced: " + display_error(status.last_error),
                    severity="warning",
                    markup=False,
                )
            else:
                waiting = f"; {status.pending} still waiting" if status.pending else ""
                self.notify(f"Synced{waiting}.", markup=False)

    def _show_sync(self, status: SyncStatus) -> None:
        self.sync_status = status
        self.query_one("#header", ThreadHeader).show_sync(status, self.now)

    def _reload_open_thread(self) -> None:
        # Messages that waited offline were sent: their placeholders became real
        # messages with replies. Show the thread again, unless the user is busy in it.
        thread = self.thread
        if thread is None or self.replies.get(thread.id) is not None:
            return
        if self.composer.editing is not None:
            return
        self.show_thread(thread.id, focus_composer=self.composer.has_focus)
