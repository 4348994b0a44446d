"""Helpers for Pilot tests of the app on the real `LocalEngine` and the scripted model."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from textual.pilot import Pilot

from tenex_tui.config import UiSettings
from tenex_tui.engine.clock import FixedClock
from tenex_tui.engine.engine import LocalEngine
from tenex_tui.ui.app import TenexApp
from tests.support.scripted_llm import ScriptedLLM

NOW = datetime(2026, 1, 15, 12, 0, tzinfo=UTC)
"""The "now" every test app is given (relative times are stable)."""

TIMEOUT = 5.0
"""Seconds any wait may take before the test fails."""


def fixed_clock() -> FixedClock:
    """A clock that starts three hours before `NOW` and ticks a second per call."""
    return FixedClock(start=NOW - timedelta(hours=3), step=timedelta(seconds=1))


async def open_engine(
    path: Path, llm: ScriptedLLM | None, clock: FixedClock | None = None
) -> LocalEngine:
    """A fresh engine on `path` (None as `llm`: no model configured)."""
    return await LocalEngine.open(path, llm=llm, clock=clock or fixed_clock())


def make_app(engine: LocalEngine, *, ui: UiSettings | None = None) -> TenexApp:
    """The real app on an engine the test owns (the app does not close it)."""

    async def factory() -> LocalEngine:
        return engine

    return TenexApp(factory, ui=ui, now=lambda: NOW, own_backend=False)


async def wait_until(
    pilot: Pilot[None], predicate: Callable[[], bool], what: str = "condition"
) -> None:
    """Let the app run until `predicate()` holds; fail after `TIMEOUT` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + TIMEOUT
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await pilot.pause(0.01)


async def ready(pilot: Pilot[None]) -> TenexApp:
    """Wait until the backend is attached and the first page of threads is shown."""
    app = pilot.app
    assert isinstance(app, TenexApp)
    await wait_until(
        pilot,
        lambda: app.backend is not None and app.chat.threads.fully_loaded,
        "the first page of threads",
    )
    await pilot.pause()
    return app


async def shown(pilot: Pilot[None], thread_id: str) -> None:
    """Wait until the message pane shows a thread."""
    app = pilot.app
    assert isinstance(app, TenexApp)
    await wait_until(
        pilot,
        lambda: (
            app.chat.pane.thread_id == thread_id
            and app.chat.thread is not None
            and app.chat.thread.id == thread_id
        ),
        f"thread {thread_id} in the pane",
    )
    await pilot.pause()


async def settle(pilot: Pilot[None]) -> None:
    """Wait for every worker of the app to finish, then for the screen to be idle."""
    await pilot.app.workers.wait_for_complete()
    await pilot.pause()
