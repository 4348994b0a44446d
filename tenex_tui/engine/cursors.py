"""Opaque, signed page cursors (Google AIP-158; test-plan T58).

A cursor is `base64url(json) "." base64url(hmac)`. The JSON names the list it belongs to
(`kind`), the caller's scope (workspace and user), a digest of the filters and the page
size it was issued with, and the keyset position. The HMAC key is a random secret kept
in the database's `meta` table, so a cursor cannot be forged or edited, and a cursor of
one scope, list or filter set is refused by another with `InvalidCursor`. The position
itself is still checked by the query's own `workspace_id` predicate: the signature is a
second wall, not the only one.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from collections.abc import Mapping
from typing import Any

from tenex_tui.core.errors import InvalidCursor

_INVALID = "The cursor is not valid for this list; start again without it."


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def filters_digest(filters: Mapping[str, Any]) -> str:
    """A short, stable digest of a filter set (canonical JSON, SHA-256)."""
    canonical = json.dumps(filters, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


class CursorSigner:
    """Issues and checks cursors with one secret."""

    def __init__(self, secret: bytes) -> None:
        if len(secret) < 16:
            raise ValueError("the cursor secret is too short")
        self._secret = secret

    def _mac(self, payload: bytes) -> bytes:
        return hmac.new(self._secret, payload, hashlib.sha256).digest()[:18]

    def encode(
        self,
        kind: str,
        scope: tuple[str, str],
        filters: Mapping[str, Any],
        position: Mapping[str, Any],
    ) -> str:
        """Make a cursor.

        Args:
            kind: Which list (`threads`, `messages`, `search`).
            scope: `(workspace_id, user_id)` of the caller.
            filters: Every other parameter of the call (filters, page size, order).
            position: Where the next page starts (the last row's keyset values).

        Returns:
            An opaque URL-safe string.
        """
        body = {
            "k": kind,
            "s": list(scope),
            "f": filters_digest(filters),
            "p": dict(position),
        }
        payload = json.dumps(body, separators=(",", ":"), sort_keys=True).encode()
        return f"{_b64(payload)}.{_b64(self._mac(payload))}"

    def decode(
        self,
        cursor: str,
        kind: str,
        scope: tuple[str, str],
        filters: Mapping[str, Any],
    ) -> dict[str, Any]:
        """Check a cursor and return its position.

        Raises:
            InvalidCursor: When it is malformed, tampered with, or was issued for
                another list, scope or filter set.
        """
        try:
            payload_text, mac_text = cursor.split(".", 1)
            payload = _unb64(payload_text)
            mac = _unb64(mac_text)
        except (ValueError, binascii.Error, UnicodeEncodeError):
            raise InvalidCursor(_INVALID) from None
        if not hmac.compare_digest(mac, self._mac(payload)):
            raise InvalidCursor(_INVALID)
        try:
            body = json.loads(payload)
        except ValueError:
            raise InvalidCursor(_INVALID) from None
        if (
            not isinstance(body, dict)
            or body.get("k") != kind
            or body.get("s") != list(scope)
            or body.get("f") != filters_digest(filters)
            or not isinstance(body.get("p"), dict)
        ):
            raise InvalidCursor(_INVALID)
        position: dict[str, Any] = body["p"]
        return position
