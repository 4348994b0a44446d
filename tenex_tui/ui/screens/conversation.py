"""The chat flows of the main screen: send, stream, stop, retry, continue, edit, copy.

`ConversationScreen` owns every reply this app streams (`ReplyTracker`): the worker
that consumes a reply's events writes into its `ReplyState`, so a reply keeps streaming
when the user switches threads and its view comes back when they return (T24).
Leaving a backend stream only detaches; Esc asks the backend to stop the reply
(`cancel_message`), and the stream then ends `stopped` (STYLE.md §4).
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, ClassVar

from textual import on, work
from textual.binding import Binding, BindingType

from tenex_tui.core.errors import ModelNotConfigured, StorageBusy, TenexError
from tenex_tui.core.events import StreamEvent
from tenex_tui.core.models import Message, Thread
from tenex_tui.ui.format import clipboard_text, code_blocks, display_error, first_line
from tenex_tui.ui.links import extract_links
from tenex_tui.ui.messages import OpenLinkRequested
from tenex_tui.ui.pending import send_parts
from tenex_tui.ui.replies import ReplyState
from tenex_tui.ui.screens.base import NEW_THREAD_KEY, ThreadScreen
from tenex_tui.ui.screens.modals import LinksModal
from tenex_tui.ui.widgets.attachment_chips import HELD_MESSAGE_PREFIX
from tenex_tui.ui.widgets.composer import Composer
from tenex_tui.ui.widgets.message_view import MessageView

if TYPE_CHECKING:
    from textual.widgets import Markdown

StreamFactory = Callable[[], AsyncIterator[StreamEvent]]

YIELD_EVERY = 64
"""Text deltas between two yields to the event loop while consuming a stream."""
QUEUED_STATUS = "queued"
"""The status a remote workspace's backend gives a send it saved offline (its stream
ends `message.failed` with this status): the message waits in the outbox, it did not
fail."""
BUSY_FIRST_PAUSE = 0.25
BUSY_MAX_PAUSE = 4.0
"""Seconds between two tries of a send while another process holds the database (on
top of the backend's own busy timeout, several seconds)."""
BUSY_GIVE_UP = 600.0
"""Seconds of pauses after which a held send is given back as failed."""
HELD_NOTICE = (
    "Your message is kept and will be saved as soon as the database is free "
    "(Esc takes it back)."
)
NOT_SENT_NOTICE = "Stopped before it was saved: your message is back in the composer."
QUEUED_NOTICE = (
    "You are offline: the message is saved and will be sent when the workspace is "
    "back online."
)


class ConversationScreen(ThreadScreen):
    """The main screen's chat flows (see the module docstring)."""

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

    # --- sending and streaming -------------------------------------------------------

    @on(Composer.Submitted, "#composer")
    async def composer_submitted(self, event: Composer.Submitted) -> None:
        backend = self.backend
        if backend is None:
            self.notify("The workspace is still opening.", markup=False)
            return
        text = event.text
        composer = self.composer
        if self._composer_thread == NEW_THREAD_KEY:
            # Enter before the new thread exists (the dialog just closed, its answer
            # may not even be handled yet): send as soon as the thread exists,
            # instead of dropping the key. A cancelled dialog unlocks the composer.
            self._send_when_created = True
            composer.locked = True
            return
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
            self._attachments.pop("", None)
            self.thread = thread
            self._composer_thread = thread.id
            # The new row is highlighted next: it is already the pane's thread, so
            # no preview reloads it while the send is under way.
            self._target_thread_id = thread.id
            self.thread_created(thread)
            await self.pane.show_thread(thread.id, [], has_older=False)
            self.show_pane()
            self._show_info()
        thread_id = thread.id
        attachments = list(event.attachments)
        parts = send_parts(attachments)
        self._loading_composer = True
        composer.clear()
        self._loading_composer = False
        self._drafts[thread_id] = ""
        self.set_attachments([])
        request_id = uuid.uuid4().hex
        state = self.start_reply(
            thread_id,
            lambda: backend.send_message(
                thread_id,
                text,
                attachments=parts.files,
                knowledge=parts.knowledge,
                lead=parts.lead,
                client_request_id=request_id,
            ),
            restore=text,
        )
        if attachments:
            self._sent_attachments[state] = attachments

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
        worker = self.stream_reply(state, stream, restore)
        state.cancel = worker.cancel
        return state

    @work(group="reply", exit_on_error=False)
    async def stream_reply(
        self, state: ReplyState, stream: StreamFactory, restore: str | None
    ) -> None:
        """Consume one reply's events until the terminal one (STYLE.md §4).

        A send refused because another process holds the database (`StorageBusy`)
        is held here, shown as waiting, and tried again until the lock clears
        (test-plan T5); stopping the reply meanwhile gives the text back.
        """
        thread_id = state.thread_id
        started = state.message_id is not None
        held: Message | None = None
        waited = 0.0
        tries = 0
        try:
            while True:
                try:
                    async for event in stream():
                        if event.type == "message.started" and not started:
                            started = True
                            if held is not None:
                                await self._release_held(state)
                                held = None
                            state.apply(event)
                            queued = bool(event.extra.get("queued"))
                            await self._reply_started(state, queued=queued)
                            continue
                        state.apply(event)
                        if event.terminal:
                            break
                        if state.deltas % YIELD_EVERY == 0:
                            # A stream that is already buffered (a replay, a fast
                            # local model) never suspends on its own; let the screen
                            # paint now and then.
                            await asyncio.sleep(0)
                    break
                except StorageBusy as error:
                    if started or restore is None or waited >= BUSY_GIVE_UP:
                        raise
                    if held is None:
                        held = await self._hold_send(state, restore, error)
                    # The busy timeout already waited seconds inside the backend.
                    delay = min(BUSY_MAX_PAUSE, BUSY_FIRST_PAUSE * 2**tries)
                    tries += 1
                    await asyncio.sleep(delay)
                    waited += delay
        except asyncio.CancelledError:
            if held is not None:
                # Stopped while waiting: nothing was stored, give the text back
                # (also when the app is closing: the draft is then saved with it).
                self._send_failed(state, None, restore)
                with contextlib.suppress(Exception):
                    await self._release_held(state)
            elif not started:
                self.replies.finish(state)  # the composer is unlocked below
            raise
        except TenexError as error:
            if held is not None:
                await self._release_held(state)
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

    async def _reply_started(self, state: ReplyState, *, queued: bool = False) -> None:
        thread_id = state.thread_id
        self._sent_attachments.pop(state, None)  # stored with the message now
        self.threads.set_status(
            thread_id, None if queued else "streaming", unread=False
        )
        self.threads.bump(thread_id, self.now())
        if self.pane.thread_id != thread_id:
            return
        user = state.user_message
        if user is not None and self.pane.view_for(user.id) is None:
            await self.pane.add_message(user)
        if not queued:
            await self.pane.start_reply(state)

    async def _reply_queued(self, state: ReplyState) -> None:
        """A send saved offline: it waits in the outbox (no error, nothing to retry)."""
        thread_id = state.thread_id
        self.replies.finish(state)
        if self.pane.thread_id == thread_id:
            await self.pane.finish_reply(state, None)
            if state.user_message is not None:
                self.pane.update_message(state.user_message)
            if self.thread is not None and self.thread.id == thread_id:
                self.composer.locked = False
        self.threads.set_status(thread_id, None, unread=False)
        self.notify(QUEUED_NOTICE, title="Pending", markup=False)
        self.sync_changed()

    def sync_changed(self) -> None:
        """Something changed what waits to be synced (a workspace screen refreshes
        its sync status)."""

    async def _reply_finished(self, state: ReplyState) -> None:
        if state.status == QUEUED_STATUS:
            await self._reply_queued(state)
            return
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
        if self.backend is not None:
            # The reply may have named the thread or changed its counts: redraw its
            # row (and the header) from the stored thread.
            with contextlib.suppress(TenexError):
                fresh = await self.backend.get_thread(thread_id)
                self.threads.update_row(fresh)
                if self.thread is not None and self.thread.id == thread_id:
                    self.thread = fresh
                    self._show_info()
        self.threads.set_status(thread_id, status, unread=not showing)
        if showing and self.screen is self.app.screen:
            self.mark_read(thread_id)
        if status == "error" and not showing:
            self.notify(
                "A reply failed in another thread.", severity="warning", markup=False
            )

    async def _hold_send(
        self, state: ReplyState, text: str, error: StorageBusy
    ) -> Message:
        """Show a send that waits for the database as a held message (T5)."""
        held = Message(
            id=f"{HELD_MESSAGE_PREFIX}_{uuid.uuid4().hex}",
            thread_id=state.thread_id,
            role="user",
            content=text,
            created_at=self.now(),
        )
        state.held = held
        if self.pane.thread_id == state.thread_id:
            await self.pane.add_message(held)
        if self.thread is not None and self.thread.id == state.thread_id:
            self.composer.show_waiting(True)
        self.notify(
            f"{display_error(str(error))}. {HELD_NOTICE}",
            title="Waiting for the database",
            severity="warning",
            markup=False,
        )
        return held

    async def _release_held(self, state: ReplyState) -> None:
        held, state.held = state.held, None
        if held is None:
            return
        if self.thread is not None and self.thread.id == held.thread_id:
            self.composer.show_waiting(False)
        if self.pane.thread_id == held.thread_id:
            await self.pane.remove_messages([held.id])

    def _send_failed(
        self, state: ReplyState, error: TenexError | None, restore: str | None
    ) -> None:
        """A send stored nothing: give its text and attachments back, and say why
        (no error: the user stopped it)."""
        self.replies.finish(state)
        thread_id = state.thread_id
        attachments = self._sent_attachments.pop(state, None)
        if attachments:
            # Not stored: the chips come back with the text.
            if self._composer_thread == thread_id:
                kept = [a for a in self.composer.attachments if a not in attachments]
                self.set_attachments([*attachments, *kept])
            else:
                self._attachments[thread_id] = [
                    *attachments,
                    *self._attachments.get(thread_id, []),
                ]
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
        if error is None:
            self.notify(NOT_SENT_NOTICE, title="Not sent", markup=False)
            return
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
            # Not started (or held while the database is busy): stop consuming this
            # reply only; other threads' replies go on.
            if live.cancel is not None:
                live.cancel()
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

    def on_markdown_link_clicked(self, event: Markdown.LinkClicked) -> None:
        # A link in a reply that is still streaming (Textual's Markdown widget, built
        # with open_links=False): the app checks and confirms it like any other.
        event.stop()
        self.app.post_message(OpenLinkRequested(event.href))
