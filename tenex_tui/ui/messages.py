"""Messages that cross screens (widget-level messages live in their widgets)."""

from __future__ import annotations

from dataclasses import dataclass

from textual.message import Message


@dataclass
class OpenLinkRequested(Message):
    """Something wants a URL opened; the app checks the scheme and asks first (T31)."""

    url: str
    """The URL as written in the untrusted text (not yet checked)."""
