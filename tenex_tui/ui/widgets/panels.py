"""Small display widgets: the thread header, the sidebar title, the no-model panel.

Everything shown here comes from the backend (titles, agent slugs, model names, the
workspace name, the model problem) and is built as `Text`, sanitised, never markup.
"""

from __future__ import annotations

from rich.console import Group
from rich.table import Table
from rich.text import Text
from textual.widgets import Static

from tenex_tui.core.models import BackendInfo, Thread
from tenex_tui.core.text import sanitize_line
from tenex_tui.ui.format import display_error, thread_title


class ThreadHeader(Static):
    """`Title · agent · model` of the open thread, and the workspace on the right."""

    def __init__(self, *, id: str | None = None) -> None:  # noqa: A002
        super().__init__(id=id)
        self.thread: Thread | None = None
        """The thread shown."""
        self.info: BackendInfo | None = None
        """What the backend said about itself."""

    def on_mount(self) -> None:
        self._draw()

    def show(self, thread: Thread | None, info: BackendInfo | None) -> None:
        """Show a thread (or none) on a backend."""
        self.thread = thread
        self.info = info
        self._draw()

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
            if info.kind == "remote":
                right.append(" (remote)" if info.online else " (offline)")
            if info.read_only:
                right.append(" · read-only")
            if info.model is None:
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
