"""End-to-end fixtures: the project's server in a background thread."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tenex_tui.cli import main
from tests.cli.conftest import Result, Run
from tests.support.threaded_stack import ThreadedStack, threaded_stack


@pytest.fixture
def served(tmp_path: Path) -> Iterator[ThreadedStack]:
    """`serve_stack` in its own thread, so in-process CLI runs can reach it."""
    with threaded_stack(tmp_path / "server") as running:
        yield running


@pytest.fixture
def remote_env(
    served: ThreadedStack, monkeypatch: pytest.MonkeyPatch
) -> dict[str, str]:
    """Point `--remote` at the served stack, as user a1 of workspace ws_a."""
    env = {"TENEX_API_BASE": served.base_url, "TENEX_API_KEY": served.key("a1")}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return env


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str]) -> Run:
    """Call `main(argv)` in this process and capture what it printed."""

    def run(*argv: str) -> Result:
        capsys.readouterr()
        code = main(list(argv))
        captured = capsys.readouterr()
        return Result(code, captured.out, captured.err)

    return run
