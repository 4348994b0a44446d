"""Printing for the CLI: tables, JSON and Markdown, safe for a terminal by default.

Everything that came from a model, a user or a file is untrusted (a reply can carry an
OSC 52 clipboard write, test-plan V1), so text goes through `core.text.sanitize` unless
the user asked for `--raw`. JSON output is escaped instead of sanitised: C1 controls, bidi
and invisible characters become `\\uXXXX` escapes, which a JSON parser turns back into
the original text, so `--json` is both faithful and safe to print (T34).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

from tenex_tui.core.models import Message, SearchHit, Thread, ToolCall
from tenex_tui.core.text import sanitize, sanitize_line

# What json.dumps(ensure_ascii=False) leaves raw but a terminal may act on: DEL, the C1
# controls (0x9b is an 8-bit CSI), bidi and invisible characters, line separators, lone
# surrogates, and the tag/variation-selector blocks that can smuggle hidden text.
_JSON_UNSAFE = re.compile(
    "[\x7f-\x9f\u061c\u180e\u200b-\u200f\u2028-\u202e\u2060-\u2064\u2066-\u2069"
    "\ufe00-\ufe0d\ufeff\ud800-\udfff\U000e0000-\U000e007f\U000e0100-\U000e01ef]"
)

RAW_WARNING = (
    "tenex-tui: warning: --raw prints untrusted text verbatim, "
    "including terminal control sequences"
)
"""Printed on stderr whenever `--raw` is used (T34)."""


def _escape_char(match: re.Match[str]) -> str:
    code = ord(match.group())
    if code > 0xFFFF:
        code -= 0x10000
        return f"\\u{0xD800 + (code >> 10):04x}\\u{0xDC00 + (code & 0x3FF):04x}"
    return f"\\u{code:04x}"


def terminal_safe_json(text: str) -> str:
    """Escape the characters of a JSON document that a terminal could act on.

    Only valid on JSON text: every such character can only be inside a string there,
    where `\\uXXXX` means the same character.
    """
    return _JSON_UNSAFE.sub(_escape_char, text)


def dumps(value: Any, *, indent: int | None = 2) -> str:
    """Serialise a JSON-compatible value for printing (Unicode kept, controls escaped)."""
    return terminal_safe_json(json.dumps(value, ensure_ascii=False, indent=indent))


def clean(text: str, *, raw: bool = False) -> str:
    """Sanitise untrusted text for display, unless `raw`."""
    return text if raw else sanitize(text)


def clean_line(text: str, *, max_chars: int | None = None) -> str:
    """Sanitise untrusted text for a one-line slot."""
    return sanitize_line(text, max_chars=max_chars)


def relative_time(when: datetime | None, now: datetime) -> str:
    """Say how long ago `when` was, briefly (`now`, `5m ago`, `3h ago`, a date)."""
    if when is None:
        return "-"
    seconds = (now - when).total_seconds()
    if seconds < 60:
        return "now"
    if seconds < 3600:
        return f"{int(seconds // 60)}m ago"
    if seconds < 86400:
        return f"{int(seconds // 3600)}h ago"
    if seconds < 7 * 86400:
        return f"{int(seconds // 86400)}d ago"
    return when.astimezone(UTC).strftime("%Y-%m-%d")


def format_time(when: datetime | None) -> str:
    """An absolute UTC time for humans: `2026-01-15 09:30:00 UTC`."""
    if when is None:
        return "-"
    return when.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


_STATUS_FLAGS = {
    "streaming": "S",
    "error": "E",
    "interrupted": "I",
    "stopped": "X",
}


def thread_flags(thread: Thread) -> str:
    """Four one-letter markers: pinned `P`, archived `A`, unread `U`, last reply status.

    Status letters: `S` streaming, `E` error, `I` interrupted, `X` stopped; `.` stands
    for "not set" in every position.
    """
    return "".join(
        (
            "P" if thread.pinned else ".",
            "A" if thread.archived else ".",
            "U" if thread.unread else ".",
            _STATUS_FLAGS.get(thread.last_status or "", "."),
        )
    )


def display_title(thread: Thread) -> str:
    """The thread's title for one line, or `New thread` when it has none."""
    return clean_line(thread.title) if thread.title.strip() else "New thread"


def threads_table(
    threads: Sequence[Thread], *, now: datetime, width: int | None = None
) -> list[str]:
    """Render threads as aligned rows: id, flags, relative time, title.

    Args:
        threads: One page of threads.
        now: The reference time for "5m ago".
        width: The terminal width; titles are cut to fit (None: never cut).

    Returns:
        The lines, header first.
    """
    rows = [
        (
            t.id,
            thread_flags(t),
            relative_time(t.last_message_at or t.updated_at, now),
            display_title(t),
        )
        for t in threads
    ]
    header = ("ID", "FLAGS", "UPDATED", "TITLE")
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(3)]
    lines = []
    for row in [header, *rows]:
        prefix = "  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row[:3]))
        title = row[3]
        if width is not None:
            room = max(10, width - len(prefix) - 2)
            if len(title) > room:
                title = title[: room - 1] + "…"
        lines.append(f"{prefix}  {title}".rstrip())
    return lines


def search_table(hits: Sequence[SearchHit]) -> list[str]:
    """Render search hits: thread id, message id, role, then title and snippet."""
    lines = []
    for hit in hits:
        head = f"{hit.thread_id}  {hit.message_id or '-'}  {hit.role or 'title'}"
        title = clean_line(hit.thread_title) if hit.thread_title.strip() else "-"
        lines.append(head)
        lines.append(f"    {title}: {clean_line(hit.snippet, max_chars=240)}")
    return lines


def tool_call_line(call: ToolCall) -> str:
    """One line about a tool call, for stderr notes and transcripts."""
    text = f"[tool] {clean_line(call.name, max_chars=60)} {call.status}"
    if call.error:
        text += f": {clean_line(call.error, max_chars=200)}"
    return text


def _tool_call_block(call: ToolCall, raw: bool) -> list[str]:
    args = json.dumps(call.arguments, ensure_ascii=False, sort_keys=True)
    lines = [f"> tool `{clean_line(call.name)}` ({call.status}) {clean(args, raw=raw)}"]
    if call.result is not None:
        result = (
            call.result
            if isinstance(call.result, str)
            else json.dumps(call.result, ensure_ascii=False)
        )
        for line in clean(result, raw=raw).splitlines() or [""]:
            lines.append(f"> {line}")
    if call.error:
        lines.append(f"> error: {clean_line(call.error)}")
    return lines


def message_heading(message: Message) -> str:
    """`assistant · gpt-4o-mini · 2026-01-15 09:30:00 UTC · stopped`."""
    parts: list[str] = [message.role]
    if message.model:
        parts.append(clean_line(message.model, max_chars=80))
    parts.append(format_time(message.created_at))
    if message.status != "complete":
        parts.append(message.status)
    return " · ".join(parts)


def message_body(message: Message, *, raw: bool = False) -> list[str]:
    """A message's text, attachments, tool calls and error, as lines."""
    lines: list[str] = []
    for att in message.attachments:
        lines.append(f"[{att.kind}] {clean_line(att.name)} ({att.size} bytes)")
    if message.content:
        lines.extend(clean(message.content, raw=raw).split("\n"))
    for call in message.tool_calls:
        lines.extend(_tool_call_block(call, raw))
    if message.error:
        lines.append(f"[{message.status}] {clean_line(message.error)}")
    return lines


def thread_header(thread: Thread) -> list[str]:
    """The first lines of `threads show`: title, then id and attributes."""
    facts = [thread.id]
    if thread.model:
        facts.append(f"model {clean_line(thread.model)}")
    if thread.agent:
        facts.append(f"agent {clean_line(thread.agent)}")
    if thread.pinned:
        facts.append("pinned")
    if thread.archived:
        facts.append("archived")
    facts.append(f"{thread.message_count} messages")
    facts.append(f"created {format_time(thread.created_at)}")
    return [display_title(thread), " · ".join(facts)]


def transcript(
    thread: Thread, messages: Iterable[Message], *, raw: bool = False
) -> list[str]:
    """The plain-text view of a thread that `threads show` prints."""
    lines = thread_header(thread)
    if thread.system_prompt:
        lines.append("system prompt:")
        lines.extend(
            f"  {line}" for line in clean(thread.system_prompt, raw=raw).split("\n")
        )
    for message in messages:
        lines.append("")
        lines.append(f"── {message_heading(message)} ──")
        lines.extend(message_body(message, raw=raw))
    return lines


def markdown_export(
    thread: Thread, messages: Iterable[Message], *, raw: bool = False
) -> str:
    """A thread as a Markdown document (`tenex-tui export --format md`)."""
    title = clean_line(thread.title) if not raw else thread.title.replace("\n", " ")
    lines = [f"# {title.strip() or 'New thread'}", ""]
    lines.append(f"- thread: `{thread.id}`")
    lines.append(f"- created: {format_time(thread.created_at)}")
    if thread.model:
        lines.append(f"- model: {clean_line(thread.model)}")
    if thread.agent:
        lines.append(f"- agent: {clean_line(thread.agent)}")
    if thread.system_prompt:
        lines.append("- system prompt:")
        lines.append("")
        lines.extend(
            f"  > {line}" for line in clean(thread.system_prompt, raw=raw).split("\n")
        )
    for message in messages:
        lines.extend(["", f"## {message_heading(message)}", ""])
        lines.extend(message_body(message, raw=raw))
    return "\n".join(lines) + "\n"


def thread_document(thread: Thread, messages: Iterable[Message]) -> dict[str, Any]:
    """A thread with its messages in API shapes (`show --json`, `export --format json`)."""
    return {
        "thread": thread.model_dump(mode="json"),
        "messages": [m.model_dump(mode="json") for m in messages],
    }
