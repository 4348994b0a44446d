"""Where every key binding is declared, grouped by area, for the help screen and hints.

The bindings themselves live on the widgets they belong to (so the footer shows the keys
of the focused area); this module only collects them, applies the user's keymap
(`UiSettings.keys`, binding id → keys) and formats them for display.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence

from textual.binding import Binding, BindingType

from tenex_tui.ui.screens.help import HelpSection, KeyRow
from tenex_tui.ui.widgets.attachment_chips import AttachmentChips
from tenex_tui.ui.widgets.composer import Composer
from tenex_tui.ui.widgets.message_pane import MessagePane
from tenex_tui.ui.widgets.thread_list import ThreadList
from tenex_tui.ui.widgets.virtual_list import VirtualList


def _bindings(items: Iterable[BindingType]) -> list[Binding]:
    return [item for item in items if isinstance(item, Binding)]


def binding_areas(
    app_bindings: Sequence[BindingType], screen_bindings: Sequence[BindingType]
) -> list[tuple[str, list[Binding]]]:
    """Every binding with an id, by area, in the order the help screen shows them."""
    return [
        ("Threads (sidebar)", _bindings([*ThreadList.BINDINGS, *VirtualList.BINDINGS])),
        ("Messages", _bindings(MessagePane.BINDINGS)),
        ("Composer", _bindings([*Composer.BINDINGS, *AttachmentChips.BINDINGS])),
        ("Everywhere", _bindings([*screen_bindings, *app_bindings])),
    ]


def defaults(areas: Iterable[tuple[str, list[Binding]]]) -> dict[str, str]:
    """Binding id → default keys."""
    found: dict[str, str] = {}
    for _, bindings in areas:
        for binding in bindings:
            if binding.id is not None:
                found.setdefault(binding.id, binding.key)
    return found


def help_sections(
    areas: Iterable[tuple[str, list[Binding]]],
    keymap: Mapping[str, str],
    display: Callable[[str], str],
) -> list[HelpSection]:
    """Rows for the help screen, with the user's keymap applied.

    Args:
        areas: From `binding_areas`.
        keymap: Binding id → keys, overriding the defaults.
        display: Formats one key for display (`ctrl+n` → `^n`).
    """
    sections: list[HelpSection] = []
    seen: set[str] = set()
    for title, bindings in areas:
        rows: list[KeyRow] = []
        actions: set[str] = set()
        for binding in bindings:
            # One row per binding id, and per action within an area (the sidebar's
            # Enter is both the list's and the thread list's).
            if binding.id is None or binding.id in seen or binding.action in actions:
                continue
            seen.add(binding.id)
            actions.add(binding.action)
            keys = keymap.get(binding.id, binding.key)
            shown = " ".join(display(key.strip()) for key in keys.split(","))
            description = binding.tooltip or binding.description or binding.action
            rows.append((shown, description))
        sections.append((title, rows))
    return sections
