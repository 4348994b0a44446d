"""Errors map to wire codes and back; secrets never show themselves."""

from __future__ import annotations

import pytest

from tenex_tui.core.errors import (
    Conflict,
    InvalidCursor,
    NotFound,
    TenexError,
    error_from_wire,
)
from tenex_tui.core.secrets import Secret, mask, redact


@pytest.mark.parametrize("cls", [NotFound, InvalidCursor, Conflict])
def test_errors_round_trip_through_the_envelope(cls: type[TenexError]) -> None:
    err = cls("thread not found")
    envelope = err.to_wire()
    rebuilt = error_from_wire(envelope["error"]["code"], envelope["error"]["message"])
    assert type(rebuilt) is cls
    assert str(rebuilt) == "thread not found"


def test_unknown_code_becomes_the_base_error() -> None:
    assert type(error_from_wire("teapot", "short and stout")) is TenexError


def test_not_found_is_404_and_cursor_errors_are_400() -> None:
    assert NotFound.status == 404
    assert InvalidCursor.status == 400 and issubclass(InvalidCursor, TenexError)


def test_secret_hides_itself_everywhere_but_reveal() -> None:
    key = Secret("tnx_abcd_CANARYSECRET123")
    assert "CANARY" not in repr(key)
    assert "CANARY" not in f"{key}"
    assert "CANARY" not in str([key])
    assert key.reveal() == "tnx_abcd_CANARYSECRET123"
    assert str(key) == "tnx_abcd_****"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("bad key tnx_abcd_CANARYSECRET123", "bad key tnx_abcd_****"),
        (
            "Incorrect API key provided: sk-proj-abcdefghijkl",
            "Incorrect API key provided: sk-proj-****",
        ),
        ("echo Authorization: Bearer abcdef123456", "echo Authorization: bearer ****"),
        ("GET /x?api_key=hunter2hunter2", "GET /x?api_key=****"),
    ],
)
def test_redact_removes_key_shaped_values(text: str, expected: str) -> None:
    assert redact(text).lower() == expected.lower()


def test_redact_removes_given_secrets_verbatim() -> None:
    assert "opensesame" not in redact("the key opensesame failed", ["opensesame"])


def test_mask_keeps_only_the_public_prefix() -> None:
    assert mask("tnx_ab12_secret") == "tnx_ab12_****"
    assert mask("whatever") == "****"
