"""T54: what is sent is the snapshot taken at attach time, with its SHA-256."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from pathlib import Path

import pytest

from tenex_tui.attachments import load_attachment
from tenex_tui.attachments.worker import ParserResult

from . import builders as b

Write = Callable[[str, bytes | str], Path]


@pytest.mark.parametrize("change", ["modified", "deleted", "symlinked"])
def test_the_snapshot_survives_any_change_to_the_file(
    write: Write, files: Path, change: str
) -> None:
    original = b"version one\n"
    path = write("notes.txt", original)

    loaded = load_attachment(path)
    if change == "modified":
        path.write_bytes(b"version two, longer\n")
    elif change == "deleted":
        path.unlink()
    else:
        other = write("other.txt", "someone else's file")
        path.unlink()
        path.symlink_to(other)

    assert loaded.text == "version one\n"
    assert loaded.sha256 == hashlib.sha256(original).hexdigest()
    assert loaded.size == len(original)


def test_the_parser_is_given_the_snapshot_bytes_never_the_path(
    write: Write, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tenex_tui.attachments import loader

    data = b.text_pdf([["snapshot"]])
    path = write("r.pdf", data)
    seen: list[bytes] = []

    def fake_parser(kind: str, payload: bytes, **kwargs: object) -> ParserResult:
        seen.append(payload)
        os.truncate(path, 0)  # the file changes while the child parses
        return ParserResult("parsed", 6)

    monkeypatch.setattr(loader, "run_parser", fake_parser)

    loaded = load_attachment(path)

    assert seen == [data]
    assert loaded.sha256 == hashlib.sha256(data).hexdigest()
    assert loaded.size == len(data)
