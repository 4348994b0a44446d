"""Render the app's main screens to `screenshots/*.svg` (shown in the README).

Each screenshot runs the real `TenexApp` headless on a fresh copy of the deterministic
demo workspace (`tests/support/demo_workspace.py`: a real `LocalEngine`, scripted model
replies, a fixed clock), drives it by keyboard like a user, and saves an SVG. Running it
twice gives the same files.

    python scripts/screenshots.py            # every screen
    python scripts/screenshots.py main help  # some of them
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # run as a file: make `tenex_tui` and `tests` importable
    sys.path.insert(0, str(REPO))

from textual.pilot import Pilot  # noqa: E402

from tenex_tui.ui.app import TenexApp  # noqa: E402
from tenex_tui.ui.screens.search import SearchModal  # noqa: E402
from tests.support.demo_workspace import (  # noqa: E402
    DEMO_NOW,
    DemoApp,
    demo_factory,
    freeze,
    ready,
    show,
    until,
)

OUT = REPO / "screenshots"

Scene = Callable[[Pilot[None], DemoApp], Awaitable[None]]


@dataclass(frozen=True)
class Shot:
    """One screenshot: a name, a terminal size, how the demo is opened, what to do."""

    name: str
    """The file name, without `.svg`."""
    title: str
    """What the README says under it."""
    size: tuple[int, int]
    scene: Scene
    with_model: bool = True
    empty: bool = False


async def _pricing(pilot: Pilot[None], holder: DemoApp) -> None:
    assert holder.demo is not None
    await show(pilot, holder.demo.pricing)


async def _tools(pilot: Pilot[None], holder: DemoApp) -> None:
    assert holder.demo is not None
    app = await show(pilot, holder.demo.globex)
    app.chat.pane.focus()
    await pilot.press("t")
    await pilot.pause()


async def _failed(pilot: Pilot[None], holder: DemoApp) -> None:
    assert holder.demo is not None
    await show(pilot, holder.demo.failed)


async def _streaming(pilot: Pilot[None], holder: DemoApp) -> None:
    assert holder.demo is not None and holder.llm is not None
    app = await show(pilot, holder.demo.email)
    reply = holder.llm.enqueue(
        "Here is the summary so far:\n\n- Dana asked for ",
        "pricing options\n- A pilot is on the table\n",
        "- Next step: a call on Thursday",
        hold_at=(2,),
    )
    await pilot.press("enter")
    for key in "Summarise this thread":
        await pilot.press("space" if key == " " else key)
    await pilot.press("enter")
    await until(pilot, lambda: reply.held(2).is_set())
    view = app.chat.pane.reply_view
    await until(pilot, lambda: view is not None and view.shown_text.count("\n") >= 3)
    await pilot.pause(0.2)
    freeze(pilot)


async def _search(pilot: Pilot[None], holder: DemoApp) -> None:
    app = await ready(pilot)
    await pilot.press("/")
    for key in "pilot":
        await pilot.press(key)
    await until(
        pilot,
        lambda: isinstance(app.screen, SearchModal) and bool(app.screen.results.hits),
    )
    await pilot.pause(0.2)
    freeze(pilot)


async def _palette(pilot: Pilot[None], holder: DemoApp) -> None:
    await ready(pilot)
    await pilot.press("ctrl+p")
    for key in "arch":
        await pilot.press(key)
    await pilot.pause(0.4)
    freeze(pilot)


async def _help(pilot: Pilot[None], holder: DemoApp) -> None:
    await ready(pilot)
    await pilot.press("question_mark")
    await pilot.pause(0.2)


async def _bulk(pilot: Pilot[None], holder: DemoApp) -> None:
    await ready(pilot)
    await pilot.press("j", "x", "x", "x")
    await pilot.pause()


async def _empty(pilot: Pilot[None], holder: DemoApp) -> None:
    await ready(pilot)


SHOTS = [
    Shot("main", "A thread with Markdown, a table and code", (120, 36), _pricing),
    Shot("streaming", "A reply streaming in (Esc stops it)", (120, 36), _streaming),
    Shot("tool-call", "A tool call, expanded with t", (120, 36), _tools),
    Shot(
        "failed-reply",
        "A failed reply, with the key that retries it",
        (120, 36),
        _failed,
    ),
    Shot("search", "Full-text search (/) over every thread", (120, 36), _search),
    Shot(
        "bulk-marks",
        "Marking threads for a bulk archive, pin or delete",
        (120, 36),
        _bulk,
    ),
    Shot("palette", "The command palette (Ctrl+P)", (120, 36), _palette),
    Shot("help", "Every key (? or F1)", (160, 50), _help),
    Shot(
        "no-model", "No model yet: how to connect one", (120, 36), _empty, False, True
    ),
    Shot("narrow", "At 80×24", (80, 24), _pricing),
]


async def render(shot: Shot, workdir: Path) -> Path:
    """Run one scene and save its SVG; returns the file written."""
    factory, holder = demo_factory(
        workdir / f"{shot.name}.db", with_model=shot.with_model, empty=shot.empty
    )
    app = TenexApp(factory, now=lambda: DEMO_NOW)
    async with app.run_test(size=shot.size) as pilot:
        await ready(pilot)
        await shot.scene(pilot, holder)
        path = Path(app.save_screenshot(f"{shot.name}.svg", str(OUT)))
    return path


async def main(names: list[str]) -> int:
    """Render the named screenshots (all when none are named)."""
    chosen = [shot for shot in SHOTS if not names or shot.name in names]
    unknown = set(names) - {shot.name for shot in SHOTS}
    if unknown:
        print(f"unknown screenshots: {', '.join(sorted(unknown))}", file=sys.stderr)
        return 2
    OUT.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        for shot in chosen:
            path = await render(shot, Path(tmp))
            print(f"{path.relative_to(REPO)}  —  {shot.title}")
    return 0


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main(sys.argv[1:])))
