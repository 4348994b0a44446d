"""Command palette (Ctrl+P): every action, plus opening a thread by its title.

Actions come through `App.get_system_commands` (see `TenexApp`); this module adds the
thread provider. Titles are untrusted: hits carry `Text` built from the sanitised title
(the palette parses plain strings as markup, which a title like `[/` would crash).
"""

from __future__ import annotations

from functools import partial

from rich.text import Text
from textual.command import Hit, Hits, Provider

from tenex_tui.core.errors import TenexError
from tenex_tui.ui.format import thread_title
from tenex_tui.ui.screens.chat import ChatScreen


class ThreadCommands(Provider):
    """Open a thread by (part of) its title, live or archived."""

    async def search(self, query: str) -> Hits:
        screen = self.screen
        if not isinstance(screen, ChatScreen) or screen.backend is None:
            return
        words = query.strip()
        if not words:
            return
        try:
            page = await screen.backend.list_threads(limit=20, q=words, archived=None)
        except TenexError:
            return
        matcher = self.matcher(words)
        for thread in page.items:
            title = thread_title(thread.title, max_chars=80)
            display = Text("Open: ", style="dim")
            start = len(display)
            display.append(title)
            lowered = title.lower()
            at = lowered.find(words.lower())
            if at >= 0:
                display.stylize("bold underline", start + at, start + at + len(words))
            if thread.archived:
                display.append("  (archived)", style="dim")
            score = max(matcher.match(title), 0.5)
            yield Hit(
                score,
                display,
                partial(screen.open_thread_by_id, thread.id),
                text=title,
                help="Open this thread",
            )
