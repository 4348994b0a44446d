"""Fixtures for the engine tests: a fresh database, a fixed clock, a scripted model."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable
from pathlib import Path
from typing import TypeVar

import pytest

from tenex_tui.core.events import StreamEvent
from tenex_tui.engine.clock import FixedClock
from tenex_tui.engine.engine import LocalEngine
from tests.support.scripted_llm import ScriptedLLM

T = TypeVar("T")

WAIT = 5.0
"""Upper bound for any wait on an event in these tests (they finish far sooner)."""


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    """Where the test database lives."""
    return tmp_path / "data" / "tenex.db"


@pytest.fixture
def clock() -> FixedClock:
    """A deterministic clock: ids count up, time steps one second per reading."""
    return FixedClock()


@pytest.fixture
def llm() -> ScriptedLLM:
    """The scripted model; queue replies with `llm.enqueue(...)`."""
    return ScriptedLLM()


@pytest.fixture
async def engine(
    db_path: Path, clock: FixedClock, llm: ScriptedLLM
) -> AsyncIterator[LocalEngine]:
    """An engine on a fresh database, closed after the test."""
    engine = await LocalEngine.open(
        db_path, llm=llm, clock=clock, checkpoint_interval=0.01, poll_interval=0.01
    )
    yield engine
    await engine.aclose()


async def collect(stream: AsyncIterator[StreamEvent]) -> list[StreamEvent]:
    """Every event of a stream, up to its terminal one (bounded in time)."""
    events: list[StreamEvent] = []
    async with asyncio.timeout(WAIT):
        async for event in stream:
            events.append(event)
    return events


async def within(awaitable: Awaitable[T]) -> T:
    """Await something with the test-wide time bound."""
    async with asyncio.timeout(WAIT):
        return await awaitable


def text_of(events: list[StreamEvent]) -> str:
    """The reply text the deltas of a stream add up to."""
    return "".join(e.delta for e in events if e.type == "message.delta")
