"""Helpers for CLI tests: run `main()` in-process, or `tenex-tui` as a real process."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest

from tenex_tui.cli import main
from tests.support.fake_llm import FakeLLMServer

SUBPROCESS_TIMEOUT = 60.0
"""Seconds any one `tenex-tui` child may run before the test fails."""


@dataclass(frozen=True)
class Result:
    """What one run of the CLI did."""

    code: int
    out: str
    err: str


Run = Callable[..., Result]


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str]) -> Run:
    """Call `main(argv)` in this process and capture what it printed."""

    def run(*argv: str) -> Result:
        capsys.readouterr()
        code = main(list(argv))
        captured = capsys.readouterr()
        return Result(code, captured.out, captured.err)

    return run


@pytest.fixture
def llm(
    fake_llm_in_thread: FakeLLMServer, monkeypatch: pytest.MonkeyPatch
) -> FakeLLMServer:
    """A fake OpenAI-compatible server, and the environment that points the CLI at it."""
    monkeypatch.setenv("OPENAI_BASE_URL", fake_llm_in_thread.base_url)
    monkeypatch.setenv("TENEX_MODEL", "fake-model")
    return fake_llm_in_thread


@pytest.fixture
def fake_llm_in_thread() -> Iterator[FakeLLMServer]:
    """A fake LLM server running in its own thread (the CLI runs its own event loop)."""
    with FakeLLMServer() as server:
        yield server


def child_env(home: Path, **extra: str) -> dict[str, str]:
    """A minimal environment for a `tenex-tui` child: nothing inherited but PATH."""
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "TENEX_HOME": str(home),
        "LC_ALL": "C.UTF-8",
    }
    env.update(extra)
    return env


def tenex_command(*argv: str) -> list[str]:
    """`python -m tenex_tui …` with this interpreter (the venv's)."""
    return [sys.executable, "-m", "tenex_tui", *argv]


def run_child(
    *argv: str,
    env: Mapping[str, str],
    input: str | None = None,  # noqa: A002 - subprocess's name
) -> Result:
    """Run `tenex-tui` as a child process, bounded by `SUBPROCESS_TIMEOUT`."""
    done = subprocess.run(
        tenex_command(*argv),
        env=dict(env),
        input=input,
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=SUBPROCESS_TIMEOUT,
        check=False,
    )
    return Result(done.returncode, done.stdout, done.stderr)
