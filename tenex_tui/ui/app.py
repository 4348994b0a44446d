"""`TenexApp`: the terminal app. It paints "opening…" while the backend opens.

The app gets a *factory* for its `ChatBackend`, not a backend. The factory starts as the
app mounts, not after the first frame: importing the engine then no longer waits for
painting, and the database work runs on the engine's own thread meanwhile. The backend
is handed to the screen once the first frame is on screen, so a slow open (migrations,
a busy database) never keeps the window from appearing (cold-start budget, DESIGN.md
§8). Everything after that talks to the backend through workers on `ChatScreen`.

Safety decisions that live here: links open only for http(s) and after a confirmation
showing the real target (T31); the clipboard gets text without control characters
(T33); an unexpected crash prints a traceback *without local variables* and with
key-shaped strings masked (T40: Textual's default prints locals, and a local can hold
an API key).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import io
from collections.abc import Awaitable, Callable, Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import ClassVar

from rich.console import Console
from rich.segment import Segments
from rich.text import Text
from textual import on, work
from textual.app import App, SystemCommand
from textual.binding import Binding, BindingType
from textual.screen import Screen

from tenex_tui.config import UiSettings
from tenex_tui.core.backend import ChatBackend
from tenex_tui.core.errors import TenexError
from tenex_tui.core.secrets import redact
from tenex_tui.core.text import link_scheme, link_target, sanitize
from tenex_tui.ui.commands import ThreadCommands
from tenex_tui.ui.format import clipboard_text, display_error
from tenex_tui.ui.keys import binding_areas, defaults, help_sections
from tenex_tui.ui.messages import OpenLinkRequested
from tenex_tui.ui.render import warm_up as warm_up_renderer
from tenex_tui.ui.screens.chat import ChatScreen
from tenex_tui.ui.screens.conversation import ConversationScreen
from tenex_tui.ui.screens.help import HelpModal
from tenex_tui.ui.screens.modals import LinkModal
from tenex_tui.ui.widgets.live_markdown import live_markdown_class

BackendFactory = Callable[[], Awaitable[ChatBackend]]
"""Opens the backend (the local engine or a remote client)."""

WARM_RENDERER_AFTER = 0.3
"""Seconds after the backend arrives when the message renderer is warmed up."""
WARM_MARKDOWN = (
    "# a\n\np *b* `c`\n\n- d\n\n1. e\n\n> f\n\n```python\nx = 1\n```\n\n"
    "| g | h |\n| --- | --- |\n| i | j |\n\n---\n"
)
"""Every block type a reply commonly streams (see `_warm_up`)."""


class TenexApp(App[None]):
    """Threads on the left, the open thread on the right, the composer below."""

    # Absolute, so subclasses defined elsewhere (tests, scripts) find it too.
    CSS_PATH = Path(__file__).parent / "styles" / "app.tcss"
    TITLE = "tenex"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding(
            "ctrl+q",
            "quit",
            "Quit",
            show=False,
            priority=True,
            id="app.quit",
            tooltip="Save drafts and quit",
        ),
        Binding("f1", "help", "Keys", id="app.help", tooltip="Show every key"),
        Binding(
            "ctrl+b",
            "toggle_sidebar",
            "Sidebar",
            show=False,
            id="app.sidebar",
            tooltip="Show or hide the thread list",
        ),
        Binding(
            "ctrl+n",
            "screen.new_thread",
            "New thread",
            show=False,
            id="app.new_thread",
            tooltip="Start a new thread",
        ),
        Binding(
            "ctrl+p",
            "command_palette",
            "Commands",
            show=False,
            priority=True,
            id="app.palette",
            tooltip="Every action, and threads by title",
        ),
    ]
    COMMANDS: ClassVar = App.COMMANDS | {ThreadCommands}

    def __init__(
        self,
        backend_factory: BackendFactory,
        *,
        ui: UiSettings | None = None,
        now: Callable[[], datetime] | None = None,
        own_backend: bool = True,
        protected_paths: Sequence[Path] = (),
    ) -> None:
        """Build the app; nothing is opened until it runs.

        Args:
            backend_factory: Opens the backend; awaited after the first frame.
            ui: The `[ui]` settings (theme, sidebar, keymap).
            now: The clock for relative times (fixed in snapshots).
            own_backend: Close the backend when the app quits (tests that keep using
                their engine afterwards pass False).
            protected_paths: Files never read as attachments or documents (the
                database and its journals, the secrets file: see `Paths.own_files`).
        """
        super().__init__()
        self._backend_factory = backend_factory
        self.ui_settings = ui or UiSettings()
        """The `[ui]` settings in force."""
        self.now: Callable[[], datetime] = now or (lambda: datetime.now(UTC))
        """The clock for relative times."""
        self.own_backend = own_backend
        """Whether quitting closes the backend."""
        self.protected_paths = tuple(protected_paths)
        """Files the attachment loader refuses to open."""
        self.backend: ChatBackend | None = None
        """The backend, once opened."""
        self._backend_closed = False
        self._crash: BaseException | None = None
        self._gc_frozen = False
        self._painted = asyncio.Event()
        self._areas = binding_areas(
            self.BINDINGS, [*ChatScreen.BINDINGS, *ConversationScreen.BINDINGS]
        )
        self._defaults = defaults(self._areas)

    # --- start-up ------------------------------------------------------------------

    def get_default_screen(self) -> Screen[None]:
        return ChatScreen(
            now=self.now,
            key_label=self.key_label,
            show_sidebar=self.ui_settings.show_sidebar,
        )

    @property
    def chat(self) -> ChatScreen:
        """The main screen."""
        screen = self.screen_stack[0]
        assert isinstance(screen, ChatScreen)
        return screen

    def on_mount(self) -> None:
        settings = self.ui_settings
        if settings.theme in self.available_themes:
            self.theme = settings.theme
        else:
            self.notify(
                f"Unknown theme {sanitize(settings.theme)!r}; using the default.",
                severity="warning",
                markup=False,
            )
        unknown = sorted(set(settings.keys) - set(self._defaults))
        if unknown:
            self.notify(
                "Unknown key binding ids in [ui.keys]: " + sanitize(", ".join(unknown)),
                severity="warning",
                markup=False,
            )
        if settings.keys:
            self.set_keymap(dict(settings.keys))
        # Start opening the backend now, but hand it over only once the first frame
        # is on screen. (Starting after that frame, as this did, left the backend's
        # ~100 ms of imports and SQL to follow the painting instead of overlapping it:
        # threads appeared ~0.2 s later.)
        self.call_after_refresh(self._painted.set)
        self.open_backend()

    @work(group="backend", exit_on_error=False)
    async def open_backend(self) -> None:
        """Run the backend factory, then (once the first frame is painted) hand the
        backend to the main screen."""
        try:
            backend = await self._backend_factory()
        except TenexError as error:
            await self._painted.wait()
            message = display_error(str(error))
            self.chat.backend_failed(message)
            self.notify(message, title="Could not open", severity="error", markup=False)
            return
        await self._painted.wait()
        self.backend = backend
        self._freeze_startup_objects()
        self.chat.attach(backend)
        # While the user reads the list: the first message drawn with a code block
        # would otherwise import Pygments and a lexer (~30 ms) on the way to its frame.
        self.set_timer(WARM_RENDERER_AFTER, self._warm_up)

    async def _warm_up(self) -> None:
        """While the user reads the list: do once what the first reply would do on
        its way to the screen. Drawing a message imports rich's Markdown, Pygments and
        a lexer (~30 ms); the first live reply registers the CSS of Textual's Markdown
        widget and of each block type it mounts, and every new widget class makes
        Textual parse its CSS and restyle the whole screen (~60 ms)."""
        warm_up_renderer()
        body = live_markdown_class()()
        body.display = False
        try:
            await self.screen.mount(body)
            await body.update(WARM_MARKDOWN)
            await body.remove()
        except Exception:  # The screen changed meanwhile: the first reply pays.
            return

    def _freeze_startup_objects(self) -> None:
        # What is loaded by now (Textual, pydantic, the engine, this screen) lives as
        # long as the app, yet every full collection walks it again: ~120,000 objects,
        # a 50-200 ms stall of the event loop every so often (a sidebar key, a frame of
        # a streaming reply). Frozen, those passes only walk what came later. Undone on
        # unmount, so a process that runs many apps (the tests) keeps no garbage.
        if not self._gc_frozen:
            self._gc_frozen = True
            gc.freeze()

    # --- keys ------------------------------------------------------------------------

    def key_label(self, binding_id: str) -> str:
        """The key a user presses for a binding id, after their rebinding."""
        keys = self.ui_settings.keys.get(binding_id) or self._defaults.get(
            binding_id, ""
        )
        first = keys.split(",")[0].strip()
        if not first:
            return "?"
        return self.get_key_display(Binding(first, ""))

    def action_help(self) -> None:
        """Show every key, as the user's keymap has them."""
        sections = help_sections(
            self._areas,
            self.ui_settings.keys,
            lambda key: self.get_key_display(Binding(key, "")),
        )
        notes = (
            "Enter sends; Ctrl+J always adds a line (Shift+Enter too where the terminal "
            "reports it).",
            "Markers: ● unread reply  ◐ streaming  ✗ failed  ! interrupted  "
            "■ stopped  ⚑ pinned  ✓ marked",
        )
        self.push_screen(HelpModal(sections, notes=notes))

    def action_toggle_sidebar(self) -> None:
        """Show or hide the thread list."""
        sidebar = self.chat.query_one("#sidebar")
        sidebar.display = not sidebar.display
        if not sidebar.display and self.chat.threads.has_focus:
            self.chat.composer.focus()

    def get_system_commands(self, screen: Screen[object]) -> Iterable[SystemCommand]:
        chat = self.chat
        has_thread = chat.thread is not None
        yield SystemCommand(
            "New thread",
            "Start a thread (title, agent, system prompt)",
            chat.action_new_thread,
        )
        yield SystemCommand(
            "Search messages", "Full-text search over every thread", chat.action_search
        )
        yield SystemCommand(
            "Filter threads",
            "Show only threads whose title matches",
            chat.action_filter_threads,
        )
        yield SystemCommand(
            "Show threads" if chat.archived_view else "Show archived threads",
            "Switch the sidebar between live and archived threads",
            chat.action_toggle_archived,
        )
        if chat.threads.highlighted is not None:
            yield SystemCommand(
                "Rename thread", "Rename the selected thread", chat.action_rename_thread
            )
            yield SystemCommand(
                "Pin or unpin thread",
                "Pinned threads stay on top",
                chat.action_pin_threads,
            )
            yield SystemCommand(
                "Unarchive thread" if chat.archived_view else "Archive thread",
                "Move the selected (or marked) threads",
                chat.action_archive_threads,
            )
            yield SystemCommand(
                "Delete thread",
                "Delete the selected (or marked) threads",
                chat.action_delete_threads,
            )
        yield SystemCommand(
            "Undo delete",
            "Bring back the last deleted threads",
            chat.action_undo_delete,
        )
        if has_thread:
            yield SystemCommand(
                "Stop reply", "Stop the reply being written", chat.action_stop_reply
            )
            yield SystemCommand(
                "Regenerate reply",
                "Answer the last message again",
                chat.action_regenerate_reply,
            )
            yield SystemCommand(
                "Continue reply", "Let the model carry on", chat.action_continue_reply
            )
            yield SystemCommand(
                "Edit last message",
                "Edit your last message and resend",
                chat.action_edit_last,
            )
            yield SystemCommand(
                "Copy message", "Copy the selected message", chat.action_copy_message
            )
            yield SystemCommand(
                "Copy code block",
                "Copy the selected message's code",
                chat.action_copy_code,
            )
            yield SystemCommand(
                "Open a link",
                "List the selected message's links",
                chat.action_open_links,
            )
        yield from chat.workspace_commands()
        yield SystemCommand(
            "Focus threads", "Move to the thread list", chat.action_focus_sidebar
        )
        yield SystemCommand(
            "Focus messages", "Move to the messages", chat.action_focus_messages
        )
        yield SystemCommand(
            "Focus composer", "Move to the composer", chat.action_focus_composer
        )
        yield SystemCommand(
            "Toggle sidebar", "Show or hide the thread list", self.action_toggle_sidebar
        )
        yield SystemCommand("Keys", "Show every key", self.action_help)
        yield SystemCommand("Theme", "Change the colours", self.action_change_theme)
        yield SystemCommand("Quit", "Save drafts and quit", self.action_quit)

    # --- links and clipboard ---------------------------------------------------------

    @on(OpenLinkRequested)
    def link_requested(self, event: OpenLinkRequested) -> None:
        self.action_open_link(event.url)

    def action_open_link(self, url: str) -> None:
        """Open an http(s) link after showing its real target; refuse the rest."""
        target = link_target(url)
        if target is None:
            self.notify(
                f"blocked link: {link_scheme(url)}", severity="warning", markup=False
            )
            return

        def answered(yes: bool | None) -> None:
            if yes:
                self.open_url(target)

        self.push_screen(LinkModal(target), answered)

    def open_url(self, url: str, *, new_tab: bool = True) -> None:
        # Every path that opens a URL ends here: check it once more.
        target = link_target(url)
        if target is None:
            self.notify(
                f"blocked link: {link_scheme(url)}", severity="warning", markup=False
            )
            return
        super().open_url(target, new_tab=new_tab)

    def copy_to_clipboard(self, text: str) -> None:
        super().copy_to_clipboard(clipboard_text(text))

    # --- quitting --------------------------------------------------------------------

    async def action_quit(self) -> None:
        """Save drafts, finish pending deletes, close the backend, exit."""
        try:
            await self.chat.prepare_quit()
        finally:
            await self.close_backend()
            self.exit()

    async def on_unmount(self) -> None:
        # However the app ends (quit, crash, a test's exit), an owned backend closes.
        await self.close_backend()
        if self._gc_frozen:
            self._gc_frozen = False
            gc.unfreeze()

    async def close_backend(self) -> None:
        """Close the backend if this app owns it (once)."""
        if self.backend is not None and self.own_backend and not self._backend_closed:
            self._backend_closed = True
            # Quitting: nothing useful to tell the user any more.
            with contextlib.suppress(TenexError):
                await self.backend.aclose()

    # --- crashes ---------------------------------------------------------------------

    def _handle_exception(self, error: Exception) -> None:
        self._crash = error
        super()._handle_exception(error)

    def _fatal_error(self) -> None:
        """Print a crash without local variables and with secrets masked (T40)."""
        import rich
        import textual
        from rich.traceback import Traceback

        self.bell()
        error = self._crash
        if error is not None:
            traceback = Traceback.from_exception(
                type(error),
                error,
                error.__traceback__,
                show_locals=False,
                suppress=[rich, textual],
            )
        else:
            traceback = Traceback(show_locals=False, suppress=[rich, textual])
        width = self.console.width or 100
        buffer = Console(
            file=io.StringIO(),
            width=width,
            color_system=None,
            record=True,
            legacy_windows=False,
        )
        buffer.print(traceback)
        plain = sanitize(redact(buffer.export_text()))
        report = Text(
            "tenex-tui crashed. The details below have no variable values "
            "and masked keys; please include them in a bug report.\n\n",
            style="bold",
        )
        report.append(plain)
        self._exit_renderables.append(
            Segments(self.console.render(report, self.console.options))
        )
        self._close_messages_no_wait()
