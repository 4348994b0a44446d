"""The sanitiser for untrusted text: the single point where model output, titles, tool
results and attachment text become safe to display.

Neither Rich nor Textual neutralises terminal control sequences in content (test-plan V1:
an OSC 52 clipboard write in a model reply reaches the terminal verbatim), so every render
path passes text through `sanitize` first. Storage keeps the original bytes; only display
is neutralised, so exports and audits stay faithful (T26).

What it does, following git's fix for CVE-2024-52005 (make controls visible rather than
silently drop them):

- C0 controls and DEL become Unicode Control Pictures (`ESC` → `␛`, `NUL` → `␀`), so no
  escape sequence can start; `\\n` and `\\t` stay. `\\r\\n` becomes `\\n`; a lone `\\r`
  becomes `␍`, so an overprint such as `rm -rf ~\\rls -la` shows both halves (T33).
- C1 controls (U+0080–U+009F, including the 8-bit CSI `0x9b` and OSC `0x9d`) become a
  visible `⟨U+009B⟩`.
- Bidi controls (Trojan Source, CVE-2021-42574) become visible `⟨U+202E⟩` markers.
- Invisible characters (zero-width space, word joiner, BOM) become visible markers;
  Unicode tag characters and variation-selector supplements, which can smuggle text that
  humans cannot see but models read, become one `⟨hidden: N⟩` marker per run (T32).
- Lone surrogates become U+FFFD.

Zero-width joiner/non-joiner and the emoji variation selectors (U+FE0E/U+FE0F) stay: they
are needed by emoji and several scripts and cannot start an escape sequence.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

_HIDDEN_RUN = re.compile("[\U000e0000-\U000e007f\U000e0100-\U000e01ef\ufe00-\ufe0d]+")

# Everything `sanitize` rewrites. Text without any of these is returned unchanged, which
# keeps the common case (plain prose) at the cost of one regex scan.
_UNSAFE = re.compile(
    "[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u180e\u200b\u200e\u200f\u2028-\u202e"
    "\u2060-\u2064\u2066-\u2069\ufe00-\ufe0d\ufeff\ud800-\udfff"
    "\U000e0000-\U000e007f\U000e0100-\U000e01ef]"
)

_BIDI = [0x061C, 0x200E, 0x200F, *range(0x202A, 0x202F), *range(0x2066, 0x206A)]
_INVISIBLE = [0x180E, 0x200B, 0x2060, 0x2061, 0x2062, 0x2063, 0x2064, 0xFEFF]


def _build_table() -> dict[int, str]:
    table: dict[int, str] = {}
    for code in range(0x20):
        if code not in (0x09, 0x0A):
            table[code] = chr(0x2400 + code)
    table[0x7F] = "\u2421"  # ␡
    for code in range(0x80, 0xA0):
        table[code] = f"⟨U+{code:04X}⟩"
    for code in (*_BIDI, *_INVISIBLE):
        table[code] = f"⟨U+{code:04X}⟩"
    table[0x2028] = "\n"
    table[0x2029] = "\n"
    for code in range(0xD800, 0xE000):
        table[code] = "\ufffd"
    return table


_TABLE = _build_table()


def _hidden_marker(match: re.Match[str]) -> str:
    return f"⟨hidden: {len(match.group())}⟩"


def sanitize(text: str) -> str:
    """Make untrusted text safe to show in a terminal.

    Args:
        text: Any string: a model reply, a title, a tool result, a file's text.

    Returns:
        The text with every control, bidi and invisible character neutralised as the
        module docstring describes; `\\n` and `\\t` are kept.
    """
    if not _UNSAFE.search(text):
        return text
    text = text.replace("\r\n", "\n")
    text = _HIDDEN_RUN.sub(_hidden_marker, text)
    return text.translate(_TABLE)


def sanitize_line(text: str, *, max_chars: int | None = None) -> str:
    """Sanitise text for a one-line slot (a sidebar row, a header, a toast title).

    Line breaks and tabs become spaces, and the result is cut to `max_chars` with `…`.
    """
    clean = sanitize(text).replace("\n", " ").replace("\t", " ")
    if max_chars is not None and len(clean) > max_chars:
        return clean[: max(0, max_chars - 1)] + "…"
    return clean


def has_hidden_characters(text: str) -> bool:
    """True when `sanitize` would rewrite something (a hint for a warning badge)."""
    return _UNSAFE.search(text.replace("\r\n", "\n")) is not None


def strip_hidden(text: str) -> tuple[str, int]:
    """Remove characters that carry text humans cannot see, before text goes to a model.

    Unicode tag characters and variation-selector supplements are the "ASCII smuggling"
    carriers (test-plan T32); they are dropped from attachment and lead text and counted
    so the caller can warn.

    Returns:
        The text without them, and how many were removed.
    """
    removed = 0

    def drop(match: re.Match[str]) -> str:
        nonlocal removed
        removed += len(match.group())
        return ""

    return _HIDDEN_RUN.sub(drop, text), removed


SAFE_LINK_SCHEMES: frozenset[str] = frozenset({"http", "https"})
"""The only schemes a link may open (T31)."""


def link_target(url: str) -> str | None:
    """Return the URL to open for a link, or None when it must be blocked.

    Only `http` and `https` URLs with a host and no control or whitespace characters are
    allowed; `javascript:`, `file:`, `data:`, `vscode:` and the like are refused, as is
    anything that hides a scheme behind control characters.
    """
    candidate = url.strip()
    if (
        not candidate
        or _UNSAFE.search(candidate)
        or any(c.isspace() for c in candidate)
    ):
        return None
    try:
        parts = urlsplit(candidate)
    except ValueError:
        return None
    if parts.scheme.lower() not in SAFE_LINK_SCHEMES or not parts.hostname:
        return None
    return candidate


def link_scheme(url: str) -> str:
    """The scheme of a URL as a user would read it (for a "blocked link" notice)."""
    head = sanitize_line(url.strip(), max_chars=40)
    scheme, sep, _ = head.partition(":")
    return scheme.lower() if sep else "relative link"
