"""One behavioural suite, two backends: `LocalEngine`, and `RemoteBackend` talking to the
project's own server on 127.0.0.1:0 over that same kind of engine."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tenex_tui.core.backend import ChatBackend
from tests.support.server_fixture import Stack, StepLLM, serve_stack


@dataclass
class Env:
    """The backends of one contract test, all on one engine."""

    kind: str
    """`local` or `remote`."""
    a1: ChatBackend
    """The user under test (workspace A)."""
    a2: ChatBackend
    """Another user of the same workspace."""
    b1: ChatBackend
    """A user of another workspace."""
    stack: Stack

    @property
    def llm(self) -> StepLLM:
        return self.stack.llm


@pytest.fixture(params=["local", "remote"])
async def env(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Env]:
    async with serve_stack(tmp_path) as stack:
        if request.param == "local":
            yield Env(
                "local",
                stack.scoped("a1"),
                stack.scoped("a2"),
                stack.scoped("b1"),
                stack,
            )
        else:
            yield Env(
                "remote",
                stack.remote("a1"),
                stack.remote("a2"),
                stack.remote("b1"),
                stack,
            )
