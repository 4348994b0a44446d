"""Rich renderables for finished messages: cheap, safe, and clickable only on purpose.

A finished message is drawn as *one* widget holding these renderables (STYLE.md §4.6):
Textual's `Markdown` widget mounts a widget per block, and every widget in the scroll
container is laid out again on each streamed token, so keeping 30 of them above a live
reply costs ~14× the CPU (FACTS.md).

`SafeMarkdown` sanitises its text before parsing (no control sequence can reach the
terminal, T26), never parses Rich markup, and turns links into a click *action* that asks
the app to open them through its confirmation (T31), instead of OSC 8 hyperlinks that a
terminal would open directly, whatever the scheme.
"""

from __future__ import annotations

import io
import json
from collections.abc import Mapping
from functools import cache
from typing import TYPE_CHECKING, Any, ClassVar

from rich.console import Console, ConsoleOptions, RenderResult
from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from rich.theme import Theme
from textual.color import Color, ColorParseError

from tenex_tui.core.models import ToolCall
from tenex_tui.core.text import sanitize, sanitize_line

if TYPE_CHECKING:
    from rich.markdown import Markdown, MarkdownElement


@cache
def _chat_markdown() -> type[Markdown]:
    # Imported on first use: rich.markdown (and Pygments behind it) costs ~60 ms, which
    # does not belong on the start-up path before the first frame.
    from rich.markdown import Heading, Markdown

    class LeftHeading(Heading):
        # Centred headings read as document titles; in a chat every heading sits left.
        LEVEL_ALIGN: ClassVar[dict[str, Any]] = dict.fromkeys(
            ("h1", "h2", "h3", "h4", "h5", "h6"), "left"
        )

    class ChatMarkdown(Markdown):
        elements: ClassVar[dict[str, type[MarkdownElement]]] = {
            **Markdown.elements,
            "heading_open": LeftHeading,
        }

    return ChatMarkdown


def markdown_theme(palette: Mapping[str, str]) -> Theme:
    """Rich Markdown styles that follow the app's Textual theme.

    Args:
        palette: Textual theme variables (`primary`, `accent`, `foreground`, …).
    """
    background = _color(palette.get("background"), "#121212")

    def pick(name: str, default: str) -> str:
        return _solid(_color(palette.get(name), default), background)

    primary = pick("primary", "#0178d4")
    accent = pick("accent", "#ffa62b")
    muted = pick("foreground-muted", "#888888")
    code_bg = pick("surface", "#1e1e1e")
    return Theme(
        {
            "markdown.h1": Style.parse(f"bold {primary}"),
            "markdown.h2": Style.parse(f"bold underline {primary}"),
            "markdown.h3": Style.parse(f"bold {primary}"),
            "markdown.h4": Style.parse("bold underline"),
            "markdown.h5": Style.parse("bold"),
            "markdown.h6": Style.parse(f"bold {muted}"),
            "markdown.code": Style.parse(f"bold {accent} on {code_bg}"),
            "markdown.link": Style.parse(f"underline {primary}"),
            "markdown.link_url": Style.parse(f"underline {primary}"),
            "markdown.block_quote": Style.parse(f"italic {muted}"),
            "markdown.table.border": Style.parse(muted),
            "markdown.table.header": Style.parse(f"bold {primary}"),
            "markdown.item.bullet": Style.parse(f"bold {accent}"),
            "markdown.item.number": Style.parse(f"bold {accent}"),
            "markdown.hr": Style.parse(muted),
        },
        inherit=True,
    )


def _color(value: str | None, default: str) -> Color:
    try:
        return Color.parse(value or default)
    except ColorParseError:
        return Color.parse(default)


def _solid(color: Color, background: Color) -> str:
    # Rich styles take no alpha: flatten a translucent theme colour onto the background.
    if color.a < 1:
        color = background.blend(color.with_alpha(1.0), color.a)
    return color.hex6


def link_click_style(url: str) -> Style:
    """A style whose click runs `app.open_link(url)`.

    The action and its argument travel as a tuple, so the URL is never parsed as
    action syntax (a quote in it cannot inject a second argument or action).
    """
    return Style.from_meta({"@click": ("app.open_link", (url,))})


class SafeMarkdown:
    """Markdown for untrusted text, rendered once per width and then reused."""

    def __init__(
        self,
        text: str,
        *,
        theme: Theme | None = None,
        code_theme: str = "monokai",
    ) -> None:
        self.source = text
        """The text as stored (kept for copying)."""
        self.text = sanitize(text)
        """The text as displayed."""
        self._theme = theme
        self._code_theme = code_theme
        self._cache: dict[int, list[Segment]] = {}
        self.failed = False
        """True when the Markdown renderer raised and plain text was shown instead."""

    def __rich_console__(
        self, console: Console, options: ConsoleOptions
    ) -> RenderResult:
        width = options.max_width
        cached = self._cache.get(width)
        if cached is None:
            cached = self._render(console, options)
            # Resizes come in bursts; three widths are plenty to keep.
            if len(self._cache) > 3:
                self._cache.clear()
            self._cache[width] = cached
        yield from cached

    def _render(self, console: Console, options: ConsoleOptions) -> list[Segment]:
        markdown = _chat_markdown()(
            self.text,
            code_theme=self._code_theme,
            hyperlinks=True,
            inline_code_lexer=None,
        )
        try:
            if self._theme is not None:
                with console.use_theme(self._theme):
                    segments = list(console.render(markdown, options))
            else:
                segments = list(console.render(markdown, options))
        except Exception:
            # A renderer bug must never take the app down with the user's draft
            # (oterm#272, T30): show the text as it is instead.
            self.failed = True
            fallback = Text(self.text)
            fallback.append(
                "\n(shown as plain text: the Markdown could not be drawn)", "dim"
            )
            segments = list(console.render(fallback, options))
        return [_defang(segment) for segment in segments]


_WARM_SAMPLE = (
    "# Warm\n\n- **a** *b* `c` [d](https://e.example)\n\n```python\nx = 1\n```\n"
)


def warm_up() -> None:
    """Draw a sample message once, off screen, so the first real one does not pay for
    the imports behind it: rich's Markdown and Syntax, Pygments, its Python lexer and
    code theme (~100 ms here, most of it on the first code block of the session)."""
    console = Console(file=io.StringIO(), width=40, color_system=None)
    console.print(SafeMarkdown(_WARM_SAMPLE))


def _defang(segment: Segment) -> Segment:
    style = segment.style
    if style is None or not style.link:
        return segment
    url = style.link
    return Segment(segment.text, style.update_link(None) + link_click_style(url))


def format_json(value: Any, *, limit: int = 4000) -> str:
    """Pretty JSON (or text) for a tool call's arguments or result, cut at `limit`."""
    if isinstance(value, str):
        text = value
    else:
        try:
            text = json.dumps(value, indent=2, ensure_ascii=False, default=str)
        except (TypeError, ValueError):
            text = repr(value)
    if len(text) > limit:
        text = text[:limit] + f"\n… ({len(text) - limit} more characters)"
    return sanitize(text)


_TOOL_STATUS = {
    "requested": ("○", "requested"),
    "running": ("◐", "running"),
    "completed": ("✓", "done"),
    "failed": ("✗", "failed"),
}


def tool_call_text(
    call: ToolCall,
    *,
    expanded: bool,
    styles: Mapping[str, Style],
) -> Text:
    """One tool-call envelope as a collapsible block.

    Collapsed, one line: `▸ ✓ name  done  {"query": …}`. Expanded: the arguments and
    the result (or the error) below, indented.

    Args:
        call: The envelope.
        expanded: Whether to show arguments and result in full.
        styles: `tool`, `muted`, `ok`, `error`, `running` Rich styles.
    """
    glyph, label = _TOOL_STATUS.get(call.status, ("?", call.status))
    status_style = {
        "completed": styles.get("ok"),
        "failed": styles.get("error"),
        "running": styles.get("running"),
    }.get(call.status, styles.get("muted"))
    head = Text(no_wrap=True, overflow="ellipsis")
    head.append("▾ " if expanded else "▸ ", styles.get("muted"))
    head.append(glyph + " ", status_style)
    head.append(sanitize_line(call.name, max_chars=60), styles.get("tool"))
    head.append(f"  {label}", status_style)
    if not expanded:
        args = sanitize_line(_compact_args(call), max_chars=120)
        if args:
            head.append("  " + args, styles.get("muted"))
        return head
    text = Text()
    text.append_text(head)
    text.append("\n  arguments\n", styles.get("muted"))
    args_text = (
        call.raw_arguments
        if call.raw_arguments is not None and not call.arguments
        else call.arguments
    )
    text.append(_indent(format_json(args_text)))
    if call.status == "failed" and call.error:
        text.append("\n  error\n", styles.get("error"))
        text.append(_indent(sanitize(call.error)))
    elif call.result is not None:
        text.append("\n  result\n", styles.get("muted"))
        text.append(_indent(format_json(call.result)))
    return text


def _compact_args(call: ToolCall) -> str:
    if call.arguments:
        try:
            return json.dumps(
                call.arguments, ensure_ascii=False, separators=(", ", ": ")
            )
        except (TypeError, ValueError):
            return "…"
    return call.raw_arguments or ""


def _indent(text: str) -> str:
    return "\n".join("    " + line for line in text.splitlines() or [""])
