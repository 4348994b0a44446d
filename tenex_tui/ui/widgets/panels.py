"""Small display widgets: the thread header, the sidebar title, the no-model panel, and
the welcome panel shown while no thread is open.

Everything shown here comes from the backend (titles, agent slugs, model names, the
workspace name, the model problem, the sync status) and is built as `Text`, sanitised,
never markup.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from datetime import datetime
from typing import Literal

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text
from textual.widgets import Static

from tenex_tui.core.models import BackendInfo, Thread
from tenex_tui.core.sync import SyncStatus
from tenex_tui.core.text import sanitize_line
from tenex_tui.ui.format import display_error, relative_time, thread_title


class ThreadHeader(Static):
    """`Title · agent · model` of the open thread, and the workspace on the right."""

    def __init__(self, *, id: str | None = None) -> None:  # noqa: A002
        super().__init__(id=id)
        self.thread: Thread | None = None
        """The thread shown."""
        self.info: BackendInfo | None = None
        """What the backend said about itself."""
        self.sync: SyncStatus | None = None
        """The sync status of a remote workspace's mirror (None for a local one)."""
        self._now: Callable[[], datetime] | None = None

    def on_mount(self) -> None:
        self._draw()

    def show(self, thread: Thread | None, info: BackendInfo | None) -> None:
        """Show a thread (or none) on a backend."""
        self.thread = thread
        self.info = info
        self._draw()

    def show_sync(self, status: SyncStatus | None, now: Callable[[], datetime]) -> None:
        """Show the sync status of a remote workspace (online, pending, last sync)."""
        self.sync = status
        self._now = now
        self._draw()

    def sync_text(self) -> Text:
        """`online · 2 pending · synced 5 min ago` (empty without a sync status)."""
        text = Text(no_wrap=True)
        status = self.sync
        if status is None:
            return text
        online = status.online
        if online is None and self.info is not None:
            online = self.info.online
        if online is False:
            text.append("offline", "bold")
        else:
            text.append("online")
        if status.pending:
            text.append(f" · {status.pending} pending", "bold")
        if status.failed:
            text.append(f" · {status.failed} not sent", "bold")
        if status.syncing:
            text.append(" · syncing…")
        elif status.last_sync_at is not None and self._now is not None:
            text.append(" · synced " + relative_time(status.last_sync_at, self._now()))
        else:
            text.append(" · never synced")
        return text

    def _draw(self) -> None:
        left = Text(no_wrap=True, overflow="ellipsis")
        thread = self.thread
        info = self.info
        if thread is None:
            left.append("tenex", "bold")
        else:
            left.append(thread_title(thread.title, max_chars=80), "bold")
            left.append("  ·  ", "dim")
            left.append(
                sanitize_line(thread.agent, max_chars=30)
                if thread.agent
                else "assistant",
                "dim",
            )
            model = thread.model or (info.model if info else None)
            if model:
                left.append("  ·  ", "dim")
                left.append(sanitize_line(model, max_chars=40), "dim")
        right = Text(no_wrap=True, overflow="ellipsis", style="dim")
        if info is not None:
            right.append(sanitize_line(info.workspace, max_chars=30))
            if self.sync is not None:
                right.append(" · ")
                right.append_text(self.sync_text())
            elif info.kind == "remote":
                right.append(" (remote)" if info.online else " (offline)")
            if info.read_only:
                right.append(" · read-only")
            if info.model is None and (info.kind == "local" or info.online):
                # Offline on a remote workspace, "offline" already says why.
                right.append(" · no model")
        grid = Table.grid(expand=True)
        grid.add_column(ratio=1, no_wrap=True, overflow="ellipsis")
        grid.add_column(justify="right", no_wrap=True)
        grid.add_row(left, right)
        self.update(grid)


class SidebarTitle(Static):
    """What the sidebar lists: `Threads`, `Archive`, or a filter, with a count."""

    _shown: tuple[bool, str, int | None] | None = None

    def show(self, *, archived: bool, query: str, count: int | None) -> None:
        """Describe the current view (a no-op when nothing changed: this runs on every
        cursor move, and an update costs a layout pass)."""
        if self._shown == (archived, query, count):
            return
        self._shown = (archived, query, count)
        text = Text(no_wrap=True, overflow="ellipsis")
        text.append("Archive" if archived else "Threads", "bold")
        if count is not None:
            text.append(f"  {count}", "dim")
        if query:
            text.append("  matching ", "dim")
            text.append(sanitize_line(query, max_chars=20))
        self.update(text)


CONNECT_HELP = (
    ("OpenAI", "export OPENAI_API_KEY=sk-…"),
    ("Ollama", "export OPENAI_BASE_URL=http://localhost:11434/v1"),
    ("llama.cpp", "export OPENAI_BASE_URL=http://localhost:8080/v1"),
    ("LM Studio", "export OPENAI_BASE_URL=http://localhost:1234/v1"),
)
"""How to connect a model, one line per kind of provider."""


class NoModelPanel(Static):
    """Says plainly that no model is connected and how to connect one.

    Triage and reading keep working; only sending needs a model.
    """

    def __init__(self, *, id: str | None = None) -> None:  # noqa: A002
        super().__init__(id=id)
        self.problem: str | None = None
        """Why chatting is impossible, as the backend said."""
        self.compact = False
        """One line instead of the full explanation (a thread is open)."""

    def show(self, info: BackendInfo | None, *, compact: bool) -> None:
        """Show the panel when the backend has no usable model; hide it otherwise."""
        missing = info is not None and (info.model is None or info.model_problem)
        self.display = bool(missing)
        if not missing or info is None:
            return
        self.problem = info.model_problem
        self.compact = compact
        self.set_class(compact, "-compact")
        reason = display_error(info.model_problem) if info.model_problem else ""
        if info.kind == "remote":
            # The remote's model is out of reach, not missing: no local setup helps.
            self.update(_remote_problem(reason, compact=compact))
            return
        if compact:
            line = Text()
            line.append("No model connected", "bold")
            line.append(" · reading, search and triage work. To chat, set ")
            line.append("OPENAI_API_KEY", "bold")
            line.append(" (OpenAI) or ")
            line.append("OPENAI_BASE_URL", "bold")
            line.append(" (Ollama, llama.cpp, LM Studio) and restart.")
            self.update(line)
            return
        parts: list[Text] = [Text("No model connected", "bold")]
        if reason:
            parts.append(Text(reason, "dim"))
        parts.append(Text(""))
        parts.append(
            Text(
                "Threads, search and triage work without one. To chat, point tenex at "
                "any OpenAI-compatible model, then restart:"
            )
        )
        for name, command in CONNECT_HELP:
            line = Text("  ")
            line.append(f"{name:<10}", "bold")
            line.append(command)
            parts.append(line)
        parts.append(Text(""))
        parts.append(
            Text(
                "Then choose a model with TENEX_MODEL=<name> (or `model` in "
                "config.toml); `tenex-tui models` lists what the server offers.",
                "dim",
            )
        )
        self.update(Group(*parts))


def _remote_problem(reason: str, *, compact: bool) -> RenderableType:
    line = Text()
    line.append(reason or "The remote workspace cannot be reached.", "bold")
    line.append(
        " Reading, search and triage work; what you send waits and goes out when "
        "the workspace is back online (Sync now in Ctrl+P).",
        "" if compact else "dim",
    )
    return line


WelcomeState = Literal["opening", "empty", "failed"]
"""What the welcome panel says: the workspace is opening, is empty, or failed."""


class WelcomePanel(Static):
    """Shown instead of the messages while no thread is open.

    While the workspace opens it says so; once it is open and has no thread, it says
    how to start one, what else there is (attachments, knowledge, the palette) and the
    state of the model; if the workspace could not be opened, it says why.
    """

    def __init__(self, *, id: str | None = None) -> None:  # noqa: A002
        super().__init__(id=id)
        self.state: WelcomeState = "opening"
        """What the panel says."""
        self.error: str | None = None
        """Why the workspace could not be opened (state `failed`)."""
        self.shown: RenderableType = ""
        """What the panel shows."""

    def show(
        self,
        state: WelcomeState,
        info: BackendInfo | None,
        *,
        key_label: Callable[[str], str],
        error: str | None = None,
    ) -> None:
        """Say what the workspace is doing.

        Args:
            state: Opening, empty, or failed.
            info: What the backend said about itself (model, workspace), if known.
            key_label: Names the key of a binding id, after the user's rebinding.
            error: Why it failed (state `failed`), untrusted.
        """
        self.state = state
        self.error = error
        self.shown = self.describe(state, info, key_label=key_label, error=error)
        self.update(self.shown)

    @property
    def plain(self) -> str:
        """What the panel says, as plain text (for tests and screen readers)."""
        from rich.console import Console

        console = Console(width=100, color_system=None, record=True, file=io.StringIO())
        console.print(self.shown)
        return console.export_text()

    @staticmethod
    def describe(
        state: WelcomeState,
        info: BackendInfo | None,
        *,
        key_label: Callable[[str], str],
        error: str | None = None,
    ) -> RenderableType:
        """What the panel shows for a state (see `show`)."""
        if state == "opening":
            return Text("Opening your workspace…", "dim")
        if state == "failed":
            return Group(
                Text("Could not open the workspace", "bold"),
                Text(display_error(error), "dim"),
            )
        parts: list[RenderableType] = [Text("Welcome to tenex", "bold")]
        name = sanitize_line(info.workspace, max_chars=40) if info else "This workspace"
        parts.append(Text(f"{name} has no threads yet.", "dim"))
        parts.append(Text(""))
        keys = Table.grid(padding=(0, 2))
        keys.add_column(style="bold", no_wrap=True)
        keys.add_column()
        keys.add_row(
            "Type below, Enter", "start a thread; its first line becomes the title"
        )
        keys.add_row(
            key_label("thread.new"),
            "a thread with a title, an agent or a system prompt",
        )
        keys.add_row(
            key_label("composer.attach"),
            f"attach a file ({key_label('composer.knowledge')} a knowledge document, "
            f"{key_label('composer.lead')} a lead)",
        )
        keys.add_row(
            key_label("app.knowledge"),
            f"the knowledge browser ({key_label('app.leads')} the leads)",
        )
        keys.add_row(
            key_label("app.palette"),
            f"every command · {key_label('app.help')} every key",
        )
        parts.append(keys)
        parts.append(Text(""))
        parts.append(_model_line(info))
        return Group(*parts)


def _model_line(info: BackendInfo | None) -> Text:
    line = Text()
    line.append("Model  ", "bold")
    if info is None:
        line.append("checking…", "dim")
    elif info.model is not None and not info.model_problem:
        line.append(sanitize_line(info.model, max_chars=60))
        line.append(" — ready: replies stream as they are written.", "dim")
    elif info.model is not None:
        line.append(sanitize_line(info.model, max_chars=60))
        line.append(" — " + display_error(info.model_problem), "dim")
    else:
        line.append("none connected", "bold")
        line.append(" — the panel above says how to connect one.", "dim")
    return line
