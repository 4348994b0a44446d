"""A served engine, and a fault proxy in front of it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.support.fault_proxy import FaultProxy
from tests.support.server_fixture import Stack, serve_stack


@pytest.fixture
async def stack(tmp_path: Path) -> AsyncIterator[Stack]:
    async with serve_stack(tmp_path) as served:
        yield served


@pytest.fixture
async def proxy(stack: Stack) -> AsyncIterator[FaultProxy]:
    async with FaultProxy(upstream=("127.0.0.1", stack.server.port)) as running:
        yield running
