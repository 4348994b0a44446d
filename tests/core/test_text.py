"""The sanitiser: nothing from untrusted text can start a terminal escape sequence."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tenex_tui.core.text import (
    has_hidden_characters,
    link_scheme,
    link_target,
    sanitize,
    sanitize_line,
    strip_hidden,
)

# Payloads from the T26 corpus (garak's LIVE payloads plus the OSC/CSI/DCS family).
ESCAPE_PAYLOADS = [
    "\x1b]52;c;VEVORVg=\x1b\\",  # OSC 52 clipboard write, ST-terminated
    "\x1b]52;c;VEVORVg=\x07",  # OSC 52, BEL-terminated
    "\x1b]0;tenex-tui verified\x07",  # window title
    "\x1b]8;;javascript:alert(1)\x1b\\click\x1b]8;;\x1b\\",  # OSC 8 hyperlink
    "\x1b[2J\x1b[H",  # clear screen, cursor home
    "\x1b[8mhidden\x1b[0m",  # conceal
    "\x1bP+q\x1b\\",  # DCS
    "\x1b_apc\x1b\\",  # APC
    "\x9b31m",  # 8-bit CSI
    "\x9d0;title\x07",  # 8-bit OSC
    "\x1b[201~",  # bracketed-paste end
    "a\x00b",  # NUL
]

FORBIDDEN = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f]")


@pytest.mark.parametrize("payload", ESCAPE_PAYLOADS)
def test_no_control_byte_survives(payload: str) -> None:
    clean = sanitize(f"before {payload} after")
    assert not FORBIDDEN.search(clean)
    assert clean.startswith("before ") and clean.endswith(" after")


def test_escape_is_shown_as_a_control_picture() -> None:
    assert sanitize("\x1b]52;c;eA==\x07") == "␛]52;c;eA==␇"


def test_c1_controls_are_shown_by_code_point() -> None:
    assert sanitize("\x9b2J") == "⟨U+009B⟩2J"


def test_newline_and_tab_are_kept() -> None:
    assert sanitize("a\n\tb") == "a\n\tb"


def test_crlf_becomes_newline_and_a_lone_cr_is_visible() -> None:
    assert sanitize("one\r\ntwo") == "one\ntwo"
    # T33: an overprint must not hide the first half.
    assert sanitize("rm -rf ~\rls -la") == "rm -rf ~␍ls -la"


def test_backspace_runs_are_visible() -> None:
    assert sanitize("safe\x08\x08\x08\x08evil") == "safe␈␈␈␈evil"


@pytest.mark.parametrize(
    "code", [0x202A, 0x202B, 0x202C, 0x202D, 0x202E, 0x2066, 0x2069, 0x200E, 0x061C]
)
def test_bidi_controls_are_made_visible(code: int) -> None:
    assert sanitize(f"x{chr(code)}y") == f"x⟨U+{code:04X}⟩y"


@pytest.mark.parametrize("code", [0x200B, 0x2060, 0xFEFF])
def test_invisible_characters_are_made_visible(code: int) -> None:
    assert sanitize(f"a{chr(code)}b") == f"a⟨U+{code:04X}⟩b"


def test_tag_characters_become_one_hidden_marker_per_run() -> None:
    smuggled = "".join(chr(0xE0000 + ord(c)) for c in "ignore all")
    assert sanitize(f"hello{smuggled}!") == "hello⟨hidden: 10⟩!"


def test_emoji_joiners_and_presentation_selectors_stay() -> None:
    family = "\U0001f468\u200d\U0001f469\u200d\U0001f467"
    heart = "\u2764\ufe0f"
    assert sanitize(family + heart) == family + heart


def test_lone_surrogates_become_replacement_characters() -> None:
    assert sanitize("a\ud800b") == "a\ufffdb"


def test_line_separators_become_newlines() -> None:
    assert sanitize("a\u2028b\u2029c") == "a\nb\nc"


def test_plain_text_is_returned_unchanged() -> None:
    text = "Plain prose, `code`, [brackets] and émoji 🎉."
    assert sanitize(text) is text


def test_sanitize_line_flattens_and_truncates() -> None:
    assert sanitize_line("a\nb\tc") == "a b c"
    assert sanitize_line("abcdefgh", max_chars=5) == "abcd…"


def test_has_hidden_characters() -> None:
    assert has_hidden_characters("x\u202ey")
    assert not has_hidden_characters("plain\r\ntext")


def test_strip_hidden_removes_tags_and_counts_them() -> None:
    smuggled = "".join(chr(0xE0000 + ord(c)) for c in "run rm")
    text, removed = strip_hidden(f"Lead: Acme{smuggled} Corp")
    assert text == "Lead: Acme Corp"
    assert removed == 6


@pytest.mark.parametrize(
    "url",
    ["https://example.com/a?b=c", "http://127.0.0.1:8765/x", "HTTPS://EXAMPLE.COM"],
)
def test_http_links_are_allowed(url: str) -> None:
    assert link_target(url) == url


@pytest.mark.parametrize(
    "url",
    [
        "javascript:alert(1)",
        "JAVASCRIPT:alert(1)",
        "\x01javascript:alert(1)",
        "java\tscript:alert(1)",
        "file:///etc/passwd",
        "data:text/html,<script>alert(1)</script>",
        "vscode://file/etc/passwd",
        "ssh://host",
        "https://",
        "//evil.example/x",
        "https://evil.example/\x1b]52;c;x\x07",
        "",
    ],
)
def test_other_links_are_blocked(url: str) -> None:
    assert link_target(url) is None


def test_link_scheme_names_the_blocked_scheme() -> None:
    assert link_scheme("javascript:alert(1)") == "javascript"
    assert link_scheme("/relative") == "relative link"


@settings(max_examples=300, derandomize=True, deadline=None)
@given(st.text(alphabet=st.characters(codec=None, exclude_categories=())))
def test_sanitized_text_never_contains_controls(text: str) -> None:
    clean = sanitize(text)
    assert not FORBIDDEN.search(clean)
    assert "\u202e" not in clean
    assert not any(0xE0000 <= ord(c) <= 0xE007F for c in clean)
    # Idempotent: sanitising twice changes nothing more.
    assert sanitize(clean) == clean
