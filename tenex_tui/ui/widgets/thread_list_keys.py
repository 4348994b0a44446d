"""The thread sidebar's keys: triage actions on the screen, with ids users rebind."""

from __future__ import annotations

from textual.binding import Binding, BindingType

THREAD_LIST_BINDINGS: list[BindingType] = [
    Binding(
        "enter",
        "activate",
        "Open",
        id="thread.open",
        tooltip="Open the thread and write in it",
    ),
    Binding(
        "n",
        "screen.new_thread",
        "New",
        id="thread.new",
        tooltip="Start a new thread",
    ),
    Binding(
        "r",
        "screen.rename_thread",
        "Rename",
        id="thread.rename",
        tooltip="Rename the thread",
    ),
    Binding(
        "p",
        "screen.pin_threads",
        "Pin",
        id="thread.pin",
        tooltip="Pin or unpin (all marked threads, if any)",
    ),
    Binding(
        "a",
        "screen.archive_threads",
        "Archive",
        id="thread.archive",
        tooltip="Archive, or unarchive in the archive (all marked, if any)",
    ),
    Binding(
        "d",
        "screen.delete_threads",
        "Delete",
        id="thread.delete",
        tooltip="Delete after confirming; undo for 5 seconds",
    ),
    Binding(
        "space,x",
        "toggle_mark",
        "Mark",
        show=False,
        id="thread.mark",
        tooltip="Mark for a bulk pin, archive or delete",
    ),
    Binding(
        "/",
        "screen.search",
        "Search",
        id="thread.search",
        tooltip="Search every message and title",
    ),
    Binding(
        "f",
        "screen.filter_threads",
        "Filter",
        show=False,
        id="thread.filter",
        tooltip="Filter the list by title as you type",
    ),
    Binding(
        "A",
        "screen.toggle_archived",
        "Archived",
        show=False,
        id="thread.archived_view",
        tooltip="Show archived threads (and back)",
    ),
    Binding(
        "u",
        "screen.undo_delete",
        "Undo",
        show=False,
        id="thread.undo",
        tooltip="Undo the last delete",
    ),
    Binding(
        "question_mark",
        "app.help",
        "Keys",
        show=False,
        id="app.keys",
        tooltip="Show every key",
    ),
]
"""The sidebar's bindings (`ThreadList.BINDINGS`); ids are what `[ui.keys]` rebinds."""
