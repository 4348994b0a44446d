"""Textual's Markdown widget as a streaming reply uses it: one layout pass per write.

A reply streams into Textual's `Markdown` (STYLE.md §4.3) inside a `ReplyView` inside
the message pane, all of them as tall as their content. Textual, by default, lays the
whole screen out twice for every write that adds a line (once for the new size, once
more because the sizes changed) and measures the Markdown blocks three times in each
pass; with 30 messages in the pane that was ~40% of the CPU of a stream at 100 chunks/s.
The pieces here make one pass of one measurement do.
"""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING, Self, cast

from textual.css.scalar import Unit
from textual.geometry import Region, Size
from textual.reactive import Reactive
from textual.widget import Widget

if TYPE_CHECKING:
    from textual.layout import DockArrangeResult
    from textual.widgets import Markdown
    from textual.widgets.markdown import MarkdownBlock


def settled_virtual_size() -> Reactive[Size]:
    """A `virtual_size` that records a new size without asking for another layout.

    Textual sets `virtual_size` while it lays the screen out, and by default a change
    asks for a layout pass of its own: every time a streaming reply grew a line, the
    whole screen was laid out and drawn twice (the second pass finds nothing new). For
    widgets whose virtual size nothing else depends on (not scrollable, or scrolled by
    Textual itself), that second pass is pure cost: ~40% of the CPU of a stream.
    """
    return Reactive(Size(0, 0), layout=False, repaint=False)


def arrange_once(widget: Widget, size: Size, optimal: bool) -> Size:
    """The size to arrange a stack of auto-height children at.

    Textual arranges a height-auto container twice per layout pass: once to measure it
    (at its parent's height), once to place it (at its own), and caches by size, so the
    second misses. When no child's height depends on the container's (all `auto` or a
    fixed number of lines, stacked from the top), both give the same placements: use
    one canonical height so the second is a cache hit. A streaming reply is laid out
    ~10 times a second, and its Markdown blocks were measured three times in each.
    """
    if optimal or widget.styles.align_vertical != "top":
        return size
    for child in widget.displayed_children:
        styles = child.styles
        height = styles.height
        if height is None or height.unit not in (Unit.AUTO, Unit.CELLS):
            return size
        for limit in (styles.min_height, styles.max_height):
            if limit is not None and limit.unit is not Unit.CELLS:
                return size
    return Size(size.width, 0)


if TYPE_CHECKING:
    _WidgetMixin = Widget
else:
    _WidgetMixin = object  # not a DOM class: the block keeps its CSS type names


class LaidOutByParent(_WidgetMixin):
    """A Markdown block whose first content asks for no layout pass of its own.

    Textual's Markdown builds each new block and sets its content before mounting it;
    that marks the block as needing a layout, which it asks for once it is mounted, a
    moment after the mount has already laid its parent (and so the block) out. A
    streaming reply that grew a paragraph was laid out twice for every write. Once
    mounted, a block's changes ask for a layout as usual.
    """

    def refresh(
        self,
        *regions: Region,
        repaint: bool = True,
        layout: bool = False,
        recompose: bool = False,
    ) -> Self:
        if layout and not self.is_mounted:
            layout = False  # the mount lays the parent out
        return super().refresh(
            *regions, repaint=repaint, layout=layout, recompose=recompose
        )


@cache
def live_markdown_class() -> type[Markdown]:
    """Textual's `Markdown`, with blocks that settle in one layout pass (see above).

    Built on first use: only a streaming reply needs Textual's Markdown widget, and
    importing it costs start-up time.
    """
    from textual.widgets import Markdown

    @cache
    def settled(block: type[MarkdownBlock]) -> type[MarkdownBlock]:
        # Same name, so the blocks' CSS and the Markdown widget's own checks apply.
        namespace = {"virtual_size": settled_virtual_size(), "__module__": __name__}
        bases = (LaidOutByParent, block)
        return cast("type[MarkdownBlock]", type(block.__name__, bases, namespace))

    from markdown_it import MarkdownIt

    # Textual builds a new parser (~1.5 ms) for every append unless given a factory;
    # parsing keeps no state in it, so one serves every append of every reply.
    parser = MarkdownIt("gfm-like")

    class LiveMarkdown(Markdown):
        """The body of a reply while it streams."""

        virtual_size = settled_virtual_size()

        def __init__(self, *, classes: str | None = None) -> None:
            super().__init__(
                open_links=False, classes=classes, parser_factory=lambda: parser
            )

        def get_block_class(self, block_name: str) -> type[MarkdownBlock]:
            return settled(super().get_block_class(block_name))

        def arrange(self, size: Size, optimal: bool = False) -> DockArrangeResult:
            return super().arrange(arrange_once(self, size, optimal), optimal)

    return LiveMarkdown
