"""The display helpers: relative times, clipboard text, code blocks, links, errors."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tenex_tui.ui.format import (
    clipboard_text,
    code_blocks,
    display_error,
    first_line,
    relative_time,
    thread_title,
)
from tenex_tui.ui.links import extract_links

NOW = datetime(2026, 1, 15, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("ago", "long", "short"),
    [
        (timedelta(seconds=5), "just now", "now"),
        (timedelta(minutes=5), "5 min ago", "5m"),
        (timedelta(hours=3), "3 h ago", "3h"),
        (timedelta(days=1, hours=2), "yesterday", "1d"),
        (timedelta(days=4), "4 d ago", "4d"),
        (timedelta(days=20), "Dec 26", "Dec 26"),
        (timedelta(days=400), "2024-12-11", "Dec 2024"),
    ],
)
def test_relative_time_reads_like_a_person(
    ago: timedelta, long: str, short: str
) -> None:
    assert relative_time(NOW - ago, NOW) == long
    assert relative_time(NOW - ago, NOW, short=True) == short


def test_relative_time_of_the_future_or_nothing() -> None:
    assert relative_time(NOW + timedelta(minutes=3), NOW) == "just now"
    assert relative_time(None, NOW) == ""
    naive = datetime(2026, 1, 15, 11, 0)
    assert relative_time(naive, NOW) == "1 h ago"


def test_clipboard_text_drops_controls_but_keeps_lines_and_tabs() -> None:
    text = "rm -rf ~\rls -la\r\nnext\tcol \x1b]52;c;QQ==\x07 \u202eevil\u202c \x9b31m"
    assert clipboard_text(text) == "rm -rf ~ls -la\nnext\tcol ]52;c;QQ== evil 31m"


def test_code_blocks_are_extracted_without_fences() -> None:
    text = "Intro\n\n```python\nprint(1)\n```\n\nand\n\n~~~\nls -la\n~~~\n"
    assert code_blocks(text) == ["print(1)", "ls -la"]
    assert code_blocks("no code") == []


def test_links_are_listed_with_their_real_targets() -> None:
    text = (
        "See [the bank](https://evil.example/login) and <https://ok.example> or "
        "[x](vscode://open) and https://bare.example/path. "
        "[js](javascript:alert(1)) is not even a link to the parser."
    )
    assert extract_links(text) == [
        ("the bank", "https://evil.example/login"),
        ("https://ok.example", "https://ok.example"),
        ("x", "vscode://open"),
        ("https://bare.example/path", "https://bare.example/path"),
    ]


def test_errors_are_masked_and_neutralised_before_display() -> None:
    shown = display_error(
        "bad key sk-abcdefghijklmnop \x1b]0;pwn\x07 [@click=app.quit]"
    )
    assert "abcdefghijklmnop" not in shown and "sk-****" in shown
    assert "\x1b" not in shown and "[@click=app.quit]" in shown
    assert display_error(None) == "Something went wrong."


def test_titles_and_first_lines_are_one_safe_line() -> None:
    assert thread_title("  ") == "New thread"
    assert thread_title("a\nb\x1bc") == "a b␛c"
    assert first_line("\n\n  Hello there\nsecond") == "Hello there"
    assert len(first_line("x" * 100)) == 60
