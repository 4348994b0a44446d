"""Printing: sanitised text, terminal-safe JSON, tables and the Markdown export."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from tenex_tui.cli import output
from tenex_tui.core.models import Message, SearchHit, Thread, ToolCall

T0 = datetime(2026, 1, 15, 9, 30, tzinfo=UTC)
HOSTILE = "a\x1b]52;c;cHduZWQ=\x07b\x9b31mc\u202ed\U000e0041"


def _thread(**fields: object) -> Thread:
    values: dict[str, object] = {
        "id": "thr_1",
        "workspace_id": "ws_local",
        "user_id": "usr_local",
        "title": "Plan",
        "created_at": T0,
        "updated_at": T0,
    }
    values.update(fields)
    return Thread.model_validate(values)


def _message(content: str, **fields: object) -> Message:
    values: dict[str, object] = {
        "id": "msg_1",
        "thread_id": "thr_1",
        "role": "assistant",
        "content": content,
        "created_at": T0,
    }
    values.update(fields)
    return Message.model_validate(values)


def _unsafe_bytes(text: str) -> bool:
    """ESC or a C1 control (0x9b is the 8-bit CSI) as a character.

    A raw 0x9b byte also occurs inside harmless UTF-8 sequences (the sanitiser's own
    `␛` is E2 90 9B), so the check is on characters, which is what a UTF-8 terminal
    acts on.
    """
    return any(c == "\x1b" or "\x80" <= c <= "\x9f" for c in text)


def test_json_is_faithful_and_terminal_safe() -> None:
    value = {"content": HOSTILE, "plain": "héllo ✓"}
    text = output.dumps(value)
    assert not _unsafe_bytes(text)
    assert "\u202e" not in text and "\U000e0041" not in text
    assert "héllo ✓" in text  # ordinary Unicode stays readable
    assert json.loads(text) == value


def test_json_escapes_lone_surrogates_instead_of_failing() -> None:
    text = output.dumps({"x": "a\ud800b"})
    text.encode("utf-8")  # would raise if a lone surrogate were left raw
    assert json.loads(text) == {"x": "a\ud800b"}


def test_clean_sanitises_unless_raw() -> None:
    assert not _unsafe_bytes(output.clean(HOSTILE))
    assert output.clean(HOSTILE, raw=True) == HOSTILE


def test_relative_time() -> None:
    assert output.relative_time(T0, T0 + timedelta(seconds=30)) == "now"
    assert output.relative_time(T0, T0 + timedelta(minutes=5)) == "5m ago"
    assert output.relative_time(T0, T0 + timedelta(hours=3)) == "3h ago"
    assert output.relative_time(T0, T0 + timedelta(days=2)) == "2d ago"
    assert output.relative_time(T0, T0 + timedelta(days=40)) == "2026-01-15"
    assert output.relative_time(None, T0) == "-"


def test_the_threads_table_shows_flags_time_and_a_clean_title() -> None:
    threads = [
        _thread(id="thr_a", pinned=True, title="Pinned one", last_message_at=T0),
        _thread(id="thr_b", archived=True, last_status="error", title=HOSTILE),
        _thread(id="thr_c", title="", unread=True, last_status="interrupted"),
    ]
    lines = output.threads_table(threads, now=T0 + timedelta(hours=2))
    assert lines[0].split() == ["ID", "FLAGS", "UPDATED", "TITLE"]
    assert lines[1].split()[:4] == ["thr_a", "P...", "2h", "ago"]
    assert lines[1].endswith("Pinned one")
    assert lines[2].split()[1] == ".A.E"
    assert not _unsafe_bytes(lines[2])
    assert lines[3].split()[1] == "..UI"
    assert lines[3].endswith("New thread")


def test_the_threads_table_cuts_titles_to_the_width() -> None:
    lines = output.threads_table([_thread(title="x" * 300)], now=T0, width=80)
    assert all(len(line) <= 80 for line in lines)
    assert lines[1].endswith("…")


def test_search_hits_are_two_clean_lines() -> None:
    hit = SearchHit(
        thread_id="thr_1",
        message_id="msg_2",
        thread_title="T\x1b[2J",
        role="user",
        snippet="the [fox]\x9b jumps",
    )
    lines = output.search_table([hit])
    assert lines[0] == "thr_1  msg_2  user"
    assert lines[1].startswith("    T")
    assert not any(_unsafe_bytes(line) for line in lines)


def test_the_transcript_has_headings_tool_calls_and_errors() -> None:
    call = ToolCall(
        id="call_1",
        name="search_knowledge",
        arguments={"q": "fox"},
        status="completed",
        result="found \x1b[31m it",
    )
    messages = [
        _message("hi", id="msg_1", role="user"),
        _message(HOSTILE, id="msg_2", tool_calls=[call], model="gpt-x"),
        _message("half", id="msg_3", status="error", error="boom\x1b]0;t\x07"),
    ]
    thread = _thread(system_prompt="Be brief", model="gpt-x", message_count=3)
    lines = output.transcript(thread, messages)
    text = "\n".join(lines)
    assert lines[0] == "Plan"
    assert "thr_1 · model gpt-x · 3 messages" in lines[1]
    assert "── user · 2026-01-15 09:30:00 UTC ──" in lines
    assert "── assistant · gpt-x · 2026-01-15 09:30:00 UTC ──" in lines
    assert '> tool `search_knowledge` (completed) {"q": "fox"}' in lines
    assert "[error] boom" in text
    assert "system prompt:" in lines and "  Be brief" in lines
    assert not _unsafe_bytes(text)
    assert _unsafe_bytes("\n".join(output.transcript(thread, messages, raw=True)))


def test_the_markdown_export_is_a_document() -> None:
    thread = _thread(title="Launch plan", agent="writer")
    document = output.markdown_export(thread, [_message("**bold**\nline 2")])
    assert document.startswith("# Launch plan\n\n- thread: `thr_1`\n")
    assert "- agent: writer" in document
    assert "## assistant · 2026-01-15 09:30:00 UTC\n\n**bold**\nline 2\n" in document


def test_the_json_document_uses_api_shapes() -> None:
    thread = _thread()
    message = _message("x")
    document = output.thread_document(thread, [message])
    assert document["thread"]["created_at"] == "2026-01-15T09:30:00.000000Z"
    assert Message.model_validate(document["messages"][0]) == message
