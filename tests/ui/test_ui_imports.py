"""Importing the app loads no backend, vendor client or lazy renderer (start-up cost)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

FORBIDDEN_ROOTS = {
    "openai",
    "httpx",
    "sqlite3",
    "sqlite_utils",
    "markdown_it",
    "pygments",
}
"""Backends' vendors (the UI never talks to them) and renderers loaded on first use."""


def test_importing_the_app_loads_no_backend_and_no_lazy_renderer(
    tmp_path: Path,
) -> None:
    code = "import tenex_tui.ui.app, sys, json; print(json.dumps(sorted(sys.modules)))"
    env = {"TENEX_HOME": str(tmp_path / "home"), "PATH": "/usr/bin:/bin"}
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env=env,
    )
    loaded = set(json.loads(result.stdout))
    assert "textual" in loaded
    assert not {m for m in loaded if m.split(".")[0] in FORBIDDEN_ROOTS}
    assert not {
        m for m in loaded if m.startswith(("tenex_tui.engine", "tenex_tui.remote"))
    }
    assert "rich.markdown" not in loaded
    assert not (tmp_path / "home").exists()
