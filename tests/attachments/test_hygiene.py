"""The attachment package loads nothing heavy at import and touches no files."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

HEAVY = {
    "textual",
    "rich",
    "pypdf",
    "docx",
    "lxml",
    "defusedxml",
    "sqlite3",
    "openai",
    "httpx",
}


def _loaded_after(code: str, tmp_path: Path) -> set[str]:
    env = {"TENEX_HOME": str(tmp_path / "home"), "PATH": "/usr/bin:/bin"}
    out = subprocess.run(
        [
            sys.executable,
            "-c",
            f"{code}; import sys, json; print(json.dumps(sorted(sys.modules)))",
        ],
        capture_output=True,
        text=True,
        check=True,
        env=env,
        timeout=60,
    )
    return {m.split(".")[0] for m in json.loads(out.stdout)}


@pytest.mark.parametrize(
    "code",
    [
        "import tenex_tui.attachments",
        "from tenex_tui.attachments import load_attachment",
    ],
)
def test_importing_the_loader_loads_no_parser_and_no_ui(
    code: str, tmp_path: Path
) -> None:
    assert not _loaded_after(code, tmp_path) & HEAVY
    assert not (tmp_path / "home").exists()


def test_the_worker_entry_point_does_not_pay_for_pydantic(tmp_path: Path) -> None:
    loaded = _loaded_after("import tenex_tui.attachments.worker", tmp_path)
    assert "pydantic" not in loaded
    assert not loaded & HEAVY
