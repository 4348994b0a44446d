"""Secrets that cannot leak by accident, and redaction for text that might hold one.

A `Secret` prints as `tnx_abcd_****` in reprs, f-strings, logs and crash screens (a
Textual crash screen shows local variables, test-plan V5); only `reveal()` gives the value,
and only code that builds a request header should call it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

_KEY_PATTERNS = [
    # Our own keys: keep the prefix (safe to log, identifies the key), hide the secret.
    (re.compile(r"\b(tnx_[A-Za-z0-9]{1,32})_[A-Za-z0-9_\-]{4,}"), r"\1_****"),
    # OpenAI-style keys (sk-..., sk-proj-...).
    (re.compile(r"\b(sk-(?:proj-|ant-)?)[A-Za-z0-9_\-]{8,}"), r"\1****"),
    # Authorization headers echoed back in error bodies.
    (re.compile(r"(?i)\b(bearer)\s+[A-Za-z0-9._~+/\-]{6,}=*"), r"\1 ****"),
    # api_key=... / "api_key": "..." in URLs and JSON.
    (
        re.compile(r"(?i)(api[_-]?key[\"']?\s*[:=]\s*[\"']?)[^\s\"'&,}]{4,}"),
        r"\1****",
    ),
]


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """Remove secrets from text meant for a user, a log or a database.

    Args:
        text: Any text, such as a provider's error message.
        secrets: Exact values to remove as well (the configured keys).

    Returns:
        The text with key-shaped values and the given secrets replaced by `****`.
    """
    for value in secrets:
        if value and len(value) >= 4:
            text = text.replace(value, mask(value))
    for pattern, replacement in _KEY_PATTERNS:
        text = pattern.sub(replacement, text)
    return text


def mask(value: str) -> str:
    """Show a key as its public prefix plus `****` (`tnx_abcd_****`, `sk-****`)."""
    match = re.match(r"(tnx_[A-Za-z0-9]{1,32})_", value)
    if match:
        return f"{match.group(1)}_****"
    if value.startswith("sk-"):
        return "sk-****"
    return "****"


class Secret:
    """A string that never shows itself except through `reveal()`."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        """Return the secret value (for building a request header, nothing else)."""
        return self._value

    def __repr__(self) -> str:
        return f"Secret({mask(self._value)!r})"

    def __str__(self) -> str:
        return mask(self._value)

    def __bool__(self) -> bool:
        return bool(self._value)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(("Secret", self._value))
