"""Importing the headless layers loads no UI toolkit, and nothing runs at import."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

HEADLESS = [
    "tenex_tui.core",
    "tenex_tui.core.backend",
    "tenex_tui.core.text",
    "tenex_tui.engine",
]


def _modules_after_import(module: str, tmp_path: Path) -> set[str]:
    code = f"import {module}, sys, json; print(json.dumps(sorted(sys.modules)))"
    env = {"TENEX_HOME": str(tmp_path / "home"), "PATH": "/usr/bin:/bin"}
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env=env,
    )
    return set(json.loads(out.stdout))


@pytest.mark.parametrize("module", HEADLESS)
def test_headless_modules_load_no_textual_or_rich(module: str, tmp_path: Path) -> None:
    loaded = _modules_after_import(module, tmp_path)
    assert not {m for m in loaded if m.split(".")[0] in {"textual", "rich"}}


@pytest.mark.parametrize("module", HEADLESS)
def test_importing_creates_no_files(module: str, tmp_path: Path) -> None:
    _modules_after_import(module, tmp_path)
    assert not (tmp_path / "home").exists()
