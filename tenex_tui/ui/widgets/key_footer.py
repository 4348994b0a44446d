"""The footer of key bindings, rebuilt once per change instead of once per signal.

Textual's `Footer` removes and mounts all its key widgets again after every "bindings
changed" signal, and it gets several for one change: a focus change sends two, and
start-up five (focus set twice, the screen stack, two deferred refreshes). Each rebuild
mounts and styles a dozen widgets (~20-30 ms here), and at start-up they ran between
the first page of threads arriving and the frame that shows it (~100 ms of the
cold-start budget).

`KeyFooter` schedules at most one rebuild at a time (a rebuild reads the bindings in
force when it runs, so signals that arrive meanwhile need nothing more) and skips one
that would show exactly the keys already shown.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from textual.widgets import Footer

if TYPE_CHECKING:
    from textual.screen import Screen

BindingsShown = tuple[object, ...]
"""What the footer shows: its keys, labels, actions and states, and its options."""


class KeyFooter(Footer):
    """Textual's footer, recomposed at most once per batch of binding changes."""

    _rebuild_pending = False
    _shown: BindingsShown | None = None

    def bindings_changed(self, screen: Screen[object]) -> None:
        if self._rebuild_pending and screen is self.screen:
            return
        super().bindings_changed(screen)
        # Mirrors the conditions under which `Footer` schedules a rebuild (textual
        # is pinned exactly in pyproject.toml).
        self._rebuild_pending = (
            screen.app.app_focus and self.is_attached and screen is self.screen
        )

    async def recompose(self) -> None:
        self._rebuild_pending = False
        if not self.is_attached or self._pruning:
            # Its screen went away before the rebuild ran (a screen closed right
            # after a focus change): nothing to show, as in `Widget.recompose`.
            return
        shown = self._bindings_shown()
        if shown == self._shown and self.children:
            return
        self._shown = shown
        await super().recompose()

    def _bindings_shown(self) -> BindingsShown:
        bindings = tuple(
            (binding.key, binding.description, binding.action, enabled, tooltip)
            for (_node, binding, enabled, tooltip) in (
                self.screen.active_bindings.values()
            )
            if binding.show
        )
        return (
            bindings,
            self.compact,
            self.show_command_palette,
            self.app.ENABLE_COMMAND_PALETTE,
        )
