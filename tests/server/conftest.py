"""A served engine with keys for three scopes (see `tests/support/server_fixture.py`)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tenex_tui.server.routes import ServerConfig
from tests.support.server_fixture import Stack, serve_stack


@pytest.fixture
async def stack(tmp_path: Path) -> AsyncIterator[Stack]:
    config = ServerConfig(
        ping_interval=0.2, max_body_bytes=64 * 1024, first_event_wait=0.3
    )
    async with serve_stack(tmp_path, config=config) as served:
        yield served
