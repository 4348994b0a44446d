"""Display helpers: relative times, safe one-line labels, clipboard text.

Every untrusted string that reaches a widget goes through one of these (or through
`core.text.sanitize` directly) so that no terminal control sequence, bidi override or
markup ever reaches the screen (test-plan T26–T33).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

from tenex_tui.core.secrets import redact
from tenex_tui.core.text import sanitize, sanitize_line

UNTITLED = "New thread"
"""What a thread without a title is called on screen."""

_MONTHS = [
    "Jan",
    "Feb",
    "Mar",
    "Apr",
    "May",
    "Jun",
    "Jul",
    "Aug",
    "Sep",
    "Oct",
    "Nov",
    "Dec",
]

# C0 and C1 controls other than \n and \t, bidi controls and invisible characters:
# what must never reach a clipboard (a paste into a shell would carry them, T33).
_CLIPBOARD_UNSAFE = re.compile(
    "[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u180e\u200b\u200e\u200f\u202a-\u202e"
    "\u2060-\u2064\u2066-\u2069\ufeff\U000e0000-\U000e007f\U000e0100-\U000e01ef]"
)


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def relative_time(then: datetime | None, now: datetime, *, short: bool = False) -> str:
    """Say how long ago something happened, the way a person would.

    Args:
        then: The moment (None gives an empty string).
        now: The current time (injected so snapshots are deterministic).
        short: Compact form for narrow columns (`5m`, `3h`, `2d`, `Jan 5`).

    Returns:
        `just now`, `5 min ago`, `3 h ago`, `yesterday`, `4 d ago`, or a date.
    """
    if then is None:
        return ""
    seconds = (_aware(now) - _aware(then)).total_seconds()
    seconds = max(seconds, 0.0)
    minutes = int(seconds // 60)
    hours = int(seconds // 3600)
    days = int(seconds // 86400)
    local = _aware(then)
    if seconds < 60:
        return "now" if short else "just now"
    if minutes < 60:
        return f"{minutes}m" if short else f"{minutes} min ago"
    if hours < 24:
        return f"{hours}h" if short else f"{hours} h ago"
    if days < 7:
        if short:
            return f"{days}d"
        return "yesterday" if days == 1 else f"{days} d ago"
    if days < 300:
        return f"{_MONTHS[local.month - 1]} {local.day}"
    return (
        f"{_MONTHS[local.month - 1]} {local.year}"
        if short
        else local.date().isoformat()
    )


def thread_title(title: str, *, max_chars: int | None = None) -> str:
    """A thread's title made safe for a one-line slot, or "New thread" when empty."""
    clean = sanitize_line(title, max_chars=max_chars).strip()
    return clean or UNTITLED


def display_error(text: str | None) -> str:
    """Error text from a server, a model or an exception, ready to show.

    Secrets are masked first (T41/T42), then control sequences neutralised (T35).
    """
    if not text:
        return "Something went wrong."
    return sanitize(redact(text))


def clipboard_text(text: str) -> str:
    """The text to put on the clipboard for a message or code block (T33).

    C0 and C1 controls are removed except `\\n` and `\\t` (a lone `\\r` is dropped, so an
    overprint can no longer hide the text before it), and so are bidi and invisible
    characters: a paste into a shell must carry exactly what the user saw.
    """
    return _CLIPBOARD_UNSAFE.sub("", text.replace("\r\n", "\n"))


_FENCE = re.compile(r"^(```|~~~)[^\n]*\n(.*?)^\1[ \t]*$", re.MULTILINE | re.DOTALL)


def code_blocks(markdown: str) -> list[str]:
    """The fenced code blocks of a Markdown text, in order, without their fences."""
    return [match.group(2).rstrip("\n") for match in _FENCE.finditer(markdown)]


def first_line(text: str, max_chars: int = 60) -> str:
    """A title made from a message: its first non-empty line, cut to `max_chars`."""
    for line in text.splitlines():
        if line.strip():
            return sanitize_line(line.strip(), max_chars=max_chars)
    return ""
