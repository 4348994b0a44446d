"""Render the app's main screens to `screenshots/*.svg` (shown in the README).

Each screenshot runs the real `TenexApp` headless on a fresh copy of the deterministic
demo workspace (`tests/support/demo_workspace.py`: a real `LocalEngine`, scripted model
replies, a fixed clock, with its extras: knowledge, leads, threads bound to agents),
drives it by keyboard like a user, and saves an SVG. The remote one runs the project's
own server on 127.0.0.1 in a background thread and cuts the app's network. Running it
twice gives the same files.

    python scripts/screenshots.py            # every screen
    python scripts/screenshots.py main help  # some of them
"""

from __future__ import annotations

import asyncio
import os
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # run as a file: make `tenex_tui` and `tests` importable
    sys.path.insert(0, str(REPO))

from textual.pilot import Pilot  # noqa: E402

from tenex_tui.attachments import load_attachment  # noqa: E402
from tenex_tui.ui.app import TenexApp  # noqa: E402
from tenex_tui.ui.pending import PendingAttachment  # noqa: E402
from tenex_tui.ui.screens import workspace  # noqa: E402
from tenex_tui.ui.screens.knowledge import KnowledgeScreen  # noqa: E402
from tenex_tui.ui.screens.search import SearchModal  # noqa: E402
from tests.support.demo_workspace import (  # noqa: E402
    DEMO_NOW,
    REMOTE_NOW,
    DemoApp,
    DemoWorkspace,
    demo_factory,
    freeze,
    offline_remote_factory,
    ready,
    seed_remote,
    send_offline,
    show,
    until,
)
from tests.support.threaded_stack import threaded_stack  # noqa: E402

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
    remote: bool = False
    """Run on an offline remote workspace instead of the demo (the scene gets the id
    of the thread to write in through `DemoApp.demo.pricing`)."""


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
    app = await ready(pilot)
    await pilot.press("j", "x", "x", "x")
    # The pane previews the highlighted thread once the cursor rests.
    await until(
        pilot, lambda: app.chat.pane.thread_id == app.chat.threads.highlighted_id
    )
    await app.workers.wait_for_complete()
    await pilot.pause(0.2)


async def _empty(pilot: Pilot[None], holder: DemoApp) -> None:
    await ready(pilot)


async def _attachments(pilot: Pilot[None], holder: DemoApp) -> None:
    assert holder.demo is not None and holder.engine is not None
    app = await show(pilot, holder.demo.pricing)
    chat = app.chat
    chat.composer.focus()
    chat.composer.set_text("Rewrite the pricing page intro for the launch")
    with tempfile.TemporaryDirectory() as folder:
        brief = Path(folder) / "launch-brief.md"
        brief.write_text(
            "# Launch brief\n\nDrafts ships on March 3. Lead with the time saved.\n",
            encoding="utf-8",
        )
        chat.add_pending(PendingAttachment.from_file(load_attachment(brief)))
    doc = await holder.engine.get_knowledge(holder.demo.docs[1])
    lead = await holder.engine.get_lead(holder.demo.leads[0])
    chat.add_pending(PendingAttachment.from_knowledge(doc))
    chat.add_pending(PendingAttachment.from_lead(lead))
    app.clear_notifications()
    await pilot.pause()
    freeze(pilot)


async def _triage(pilot: Pilot[None], holder: DemoApp) -> None:
    assert holder.demo is not None
    await show(pilot, holder.demo.triage)


async def _knowledge(pilot: Pilot[None], holder: DemoApp) -> None:
    app = await ready(pilot)
    await pilot.press("f2")
    await until(pilot, lambda: isinstance(app.screen, KnowledgeScreen))
    screen = app.screen
    assert isinstance(screen, KnowledgeScreen)
    await until(pilot, lambda: len(screen.docs) == 4)
    await pilot.press("down", "enter")
    await until(pilot, lambda: screen.shown is not None)
    await pilot.pause(0.1)
    freeze(pilot)


async def _offline(pilot: Pilot[None], holder: DemoApp) -> None:
    assert holder.demo is not None
    await send_offline(pilot, holder.demo.pricing, "ship it")


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
    Shot(
        "attachments",
        "A file, a knowledge document and a lead attached (Ctrl+O, Ctrl+G, Ctrl+L)",
        (120, 36),
        _attachments,
    ),
    Shot(
        "agent-thread",
        "A thread bound to the lead-triage agent, with attachments and a tool call",
        (120, 36),
        _triage,
    ),
    Shot(
        "knowledge", "The knowledge browser (F2; F3 for leads)", (120, 36), _knowledge
    ),
    Shot(
        "remote-offline",
        "A remote workspace offline: a message waits to be sent",
        (120, 36),
        _offline,
        remote=True,
    ),
]


async def render(shot: Shot, workdir: Path) -> Path:
    """Run one scene and save its SVG; returns the file written."""
    if shot.remote:
        return await _render_remote(shot, workdir)
    factory, holder = demo_factory(
        workdir / f"{shot.name}.db",
        with_model=shot.with_model,
        empty=shot.empty,
        extras=True,
    )
    app = TenexApp(factory, now=lambda: DEMO_NOW)
    async with app.run_test(size=shot.size) as pilot:
        await ready(pilot)
        await shot.scene(pilot, holder)
        path = Path(app.save_screenshot(f"{shot.name}.svg", str(OUT)))
    return path


async def _render_remote(shot: Shot, workdir: Path) -> Path:
    # The offline banner names the last sync in local time: pin the zone, and keep
    # the background sync from running while the scene is set up.
    os.environ["TZ"] = "UTC"
    time.tzset()
    workspace.SYNC_FIRST_DELAY = 1e6
    with threaded_stack(workdir / f"{shot.name}-server") as served:
        thread_id = served.call(lambda stack: seed_remote(stack.scoped("a1")))
        factory = offline_remote_factory(
            served.base_url, served.stack.keys["a1"], workdir / f"{shot.name}.db"
        )
        holder = DemoApp()
        holder.demo = DemoWorkspace(pricing=thread_id)
        app = TenexApp(factory, now=lambda: REMOTE_NOW)
        async with app.run_test(size=shot.size) as pilot:
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
