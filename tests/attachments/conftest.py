"""Helpers for the attachment tests: files in a scratch folder."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest


@pytest.fixture
def files(tmp_path: Path) -> Path:
    """A folder for the files a test attaches."""
    folder = tmp_path / "files"
    folder.mkdir()
    return folder


@pytest.fixture
def write(files: Path) -> Callable[[str, bytes | str], Path]:
    """Write a file in `files` and return its path."""

    def _write(name: str, data: bytes | str) -> Path:
        path = files / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(data, str):
            path.write_bytes(data.encode("utf-8"))
        else:
            path.write_bytes(data)
        return path

    return _write
