"""Fixtures for the app's Pilot tests: a real engine on a temp file, a scripted model."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tenex_tui.engine.engine import LocalEngine
from tests.support.scripted_llm import ScriptedLLM
from tests.ui.harness import open_engine


@pytest.fixture
def llm() -> ScriptedLLM:
    """The scripted model; enqueue replies before sending."""
    return ScriptedLLM()


@pytest.fixture
async def engine(tmp_path: Path, llm: ScriptedLLM) -> AsyncIterator[LocalEngine]:
    """A real engine with the scripted model."""
    engine = await open_engine(tmp_path / "tenex.db", llm)
    yield engine
    await engine.aclose()


@pytest.fixture
async def engine_no_model(tmp_path: Path) -> AsyncIterator[LocalEngine]:
    """A real engine with no model configured."""
    engine = await open_engine(tmp_path / "tenex.db", None)
    yield engine
    await engine.aclose()
