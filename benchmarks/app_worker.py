"""The terminal app, headless (`App.run_test`), measured from inside a child process.

`python -m benchmarks.app_worker SCENARIO OUT.json [options]` builds `TenexApp` exactly
as `tenex-tui` does (CLI context, settings, backend factory), runs one scenario and
writes its timings to OUT.json. The parent (`bench_app`) spawns one child per run, so
every run is a cold start; the child's clock is CLOCK_MONOTONIC, shared with the parent
(which passes its spawn time as `--t0`) and with the loopback model server.

A *frame* is one call of `App._display` with a compositor update: what Textual would
write to the terminal (headless, it is computed but not encoded). `Frames` wraps that
method on the app instance to time frames and to look for text in them; nothing in the
product changes.

Scenarios:

- `big`: cold start on the big database (first frame, first frame listing threads),
  open the 10,000-message thread twice, the sidebar keys (PageDown, End, Home; End
  walks every page), resident memory before and after the walk.
- `start`: cold start only (the empty database).
- `stream`: open the 30-message thread, send `bench:full:N` or `bench:paced:N:MS`, time
  the last token's frame (and the first one's with `--first`) and the CPU.
- `first`: send `bench:paced:40:20` right after start-up (or after `--delay` seconds),
  time Enter → the first token's frame.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

T_IMPORT_START = time.monotonic()

from textual import events  # noqa: E402
from textual._compositor import ChopsUpdate, LayoutUpdate  # noqa: E402

from benchmarks.common import self_memory_mb  # noqa: E402

SIZE = (120, 40)
"""The terminal size of every app benchmark (columns, rows)."""

_PROFILE: dict[str, Any] = {}


@contextlib.contextmanager
def profiled(phase: str) -> Iterator[None]:
    """Profile this phase with pyinstrument when `--profile PHASE` names it.

    The text report (wall time of the event-loop thread, every 1 ms) goes to
    `--profile-out`. Phases: `open` (Enter on the big thread → its frame), `keys` (the
    sidebar keys), `stream` (Enter → the reply's last frame), `first` (Enter → first
    token frame).
    """
    if _PROFILE.get("phase") != phase:
        yield
        return
    from pyinstrument import Profiler

    profiler = Profiler(interval=0.001, async_mode="disabled")
    profiler.start()
    try:
        yield
    finally:
        profiler.stop()
        flat = profiler.output_text(unicode=True, flat=True, flat_time="self")
        tree = profiler.output_text(unicode=True, show_all=True)
        Path(_PROFILE["out"]).write_text(
            "# Self time per function\n" + flat + "\n# Call tree\n" + tree
        )


def make_app() -> Any:
    """`TenexApp` as `tenex-tui` builds it (`cli._launch_app`), not yet running."""
    from tenex_tui.cli import build_parser
    from tenex_tui.cli.context import CliContext
    from tenex_tui.cli.wiring import backend_factory
    from tenex_tui.ui.app import TenexApp

    ctx = CliContext(build_parser().parse_args([]))
    return TenexApp(backend_factory(ctx.paths, ctx.choice), ui=ctx.settings.ui)


def update_text(update: object) -> str:
    """The characters a compositor update draws (lines joined by newlines)."""
    if isinstance(update, LayoutUpdate):
        return "\n".join(
            "".join(strip.text for strip in line) for line in update.strips
        )
    if isinstance(update, ChopsUpdate):
        return "\n".join(
            "".join(strip.text for strip in line.values() if strip is not None)
            for line in update.chops
        )
    return ""


Predicate = Callable[[str], bool]


class Frames:
    """Times the app's frames and finds text in them (wraps `App._display`)."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.count = 0
        self.first: float | None = None
        self.last = 0.0
        self.scan = True
        """Look at frame text for waiters with a predicate (off: only count frames)."""
        self._waiters: list[tuple[Predicate | None, float, asyncio.Future[float]]] = []
        original = app._display

        def display(screen: object, renderable: object) -> None:
            original(screen, renderable)
            if renderable is None or app._batch_count:
                return
            now = time.monotonic()
            self.count += 1
            self.last = now
            if self.first is None:
                self.first = now
            if self._waiters:
                self._check(renderable, now)

        app._display = display

    def _check(self, renderable: object, now: float) -> None:
        text: str | None = None
        for waiter in list(self._waiters):
            predicate, after, future = waiter
            if future.done():
                self._waiters.remove(waiter)
                continue
            if now < after:
                continue
            if predicate is None:
                future.set_result(now)
            elif self.scan:
                if text is None:
                    text = update_text(renderable)
                if predicate(text):
                    future.set_result(now)
            if future.done():
                self._waiters.remove(waiter)

    def expect(
        self, predicate: Predicate | None = None, after: float | None = None
    ) -> asyncio.Future[float]:
        """A future for the time of the first frame after `after` that matches."""
        future: asyncio.Future[float] = asyncio.get_running_loop().create_future()
        self._waiters.append((predicate, after or time.monotonic(), future))
        return future

    async def quiet(self, period: float = 0.25, limit: float = 30.0) -> None:
        """Wait until no frame was drawn for `period` seconds (at most `limit` s)."""
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline:
            gap = time.monotonic() - self.last
            if gap >= period:
                return
            await asyncio.sleep(period - gap + 0.005)
        raise TimeoutError("the app never went quiet")


class GcPauses:
    """Garbage-collector pauses (the full ones stall the event loop for a while)."""

    def __init__(self) -> None:
        self.pauses: list[tuple[int, float]] = []
        self._started = 0.0
        gc.callbacks.append(self._callback)

    def _callback(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
        else:
            self.pauses.append(
                (info["generation"], time.perf_counter() - self._started)
            )

    def summary(self) -> dict[str, float]:
        full = [d for g, d in self.pauses if g == 2]
        return {
            "gc_count": len(self.pauses),
            "gc_full": len(full),
            "gc_max_ms": 1000 * max((d for _, d in self.pauses), default=0.0),
            "gc_full_max_ms": 1000 * max(full, default=0.0),
        }


def contains(*needles: str) -> Predicate:
    return lambda text: any(needle in text for needle in needles)


async def within(future: asyncio.Future[float], limit: float, what: str) -> float:
    """The frame time a future resolves to, waiting at most `limit` seconds."""
    try:
        return await asyncio.wait_for(future, limit)
    except TimeoutError:
        raise TimeoutError(f"no frame showed {what} within {limit} s") from None


async def until(
    predicate: Callable[[], bool], limit: float, what: str, every: float = 0.002
) -> None:
    """Poll app state until it holds (at most `limit` seconds).

    Polling, not an event: the state belongs to the app, which has no hook for it.
    """
    deadline = time.monotonic() + limit
    while True:
        if predicate():
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"waited {limit} s for {what}")
        await asyncio.sleep(every)


def send_key(app: Any, key: str, char: str | None = None) -> float:
    """Send one key the way the terminal driver does; returns when it was sent."""
    event = events.Key(key, char)
    event.set_sender(app)
    sent = time.monotonic()
    app._driver.send_message(event)
    return sent


async def timed_key(
    app: Any, frames: Frames, key: str, char: str | None = None
) -> float:
    """Seconds from sending a key to the next frame."""
    future = frames.expect()
    sent = send_key(app, key, char)
    return await within(future, 5, f"anything after {key}") - sent


async def start(
    app: Any, frames: Frames, marker: tuple[str, ...], out: dict[str, Any]
) -> None:
    interactive = frames.expect(contains(*marker), after=0.0)
    out["t_interactive"] = await within(interactive, 60, f"{marker}")
    out["t_first_frame"] = frames.first
    out["rss_start_mb"], _ = self_memory_mb()


async def scenario_big(
    pilot: Any, app: Any, frames: Frames, args: Any, out: dict[str, Any]
) -> None:
    from benchmarks.bigdb import BIG_END_MARKER, TOP_TITLE

    await start(app, frames, (TOP_TITLE,), out)
    await frames.quiet(0.4)
    out["rss_ready_mb"], _ = self_memory_mb()
    # Open the 10,000-message thread (sidebar row 1) twice: cold, then warm.
    opens = []
    for _ in range(args.opens):
        send_key(app, "down")
        future = frames.expect(contains(BIG_END_MARKER))
        with profiled("open"):
            sent = send_key(app, "enter", "\r")
            opens.append(await within(future, 30, BIG_END_MARKER) - sent)
        await frames.quiet(0.4)
        await pilot.press("escape")  # focus back to the sidebar
        send_key(app, "up")
        await frames.quiet(0.4)
    out["open_big_s"] = opens
    # The sidebar: PageDown, End (walks every page), Home.
    keys: dict[str, list[float]] = {"pagedown": [], "end": [], "home": []}
    pauses = GcPauses()
    with profiled("keys"):
        await sidebar_keys(app, frames, args, keys, out)
    out["keys_s"] = keys
    out["keys_gc"] = pauses.summary()


async def sidebar_keys(
    app: Any,
    frames: Frames,
    args: Any,
    keys: dict[str, list[float]],
    out: dict[str, Any],
) -> None:
    """PageDown ×pages, End (and its walk of every page), Home/End, PageDown."""
    for _ in range(args.pages):
        keys["pagedown"].append(await timed_key(app, frames, "pagedown"))
        await frames.quiet(0.3)
    threads = app.chat.threads
    walk_started = time.monotonic()
    keys["end"].append(await timed_key(app, frames, "end"))
    await until(lambda: threads.fully_loaded, 300, "every page", every=0.05)
    out["end_walk_s"] = time.monotonic() - walk_started
    out["rows_loaded"] = len(threads.rows)
    await frames.quiet(0.4)
    out["rss_all_rows_mb"], out["rss_peak_mb"] = self_memory_mb()
    for key in ("home", "end", "home", "end", "home")[: 1 if args.pages < 3 else 5]:
        keys[key].append(await timed_key(app, frames, key))
        await frames.quiet(0.3)
    for _ in range(args.pages // 2):
        keys["pagedown"].append(await timed_key(app, frames, "pagedown"))
        await frames.quiet(0.3)


async def scenario_start(
    pilot: Any, app: Any, frames: Frames, args: Any, out: dict[str, Any]
) -> None:
    await start(app, frames, tuple(args.marker), out)


async def scenario_stream(
    pilot: Any, app: Any, frames: Frames, args: Any, out: dict[str, Any]
) -> None:
    from benchmarks.bigdb import TOP_TITLE
    from benchmarks.llm_server import LAST_TOKEN
    from tenex_tui.ui import replies

    await start(app, frames, (TOP_TITLE,), out)
    await frames.quiet(0.4)
    await pilot.press("enter")  # open the 30-message thread; the composer has focus
    await until(lambda: app.focused is app.chat.composer, 10, "the composer's focus")
    await frames.quiet(0.5)
    out["mounted_messages"] = len(app.chat.pane.views)
    await pilot.press(*args.prompt)
    await frames.quiet(0.3)
    # Between the first token and the last one, frames are only counted: reading their
    # text costs CPU the app itself would not spend.
    original_apply = replies.ReplyState.apply

    def apply(state: Any, event: Any) -> None:
        original_apply(state, event)
        if LAST_TOKEN in event.delta:
            frames.scan = True
            out["t_last_delta"] = time.monotonic()

    replies.ReplyState.apply = apply  # type: ignore[method-assign, assignment]
    last_frame = frames.expect(contains(LAST_TOKEN))
    # At full speed the whole reply can arrive before the first frame, and the pane
    # stays at the bottom, so the first token may never be on screen: only a paced
    # reply waits for it.
    first_frame = frames.expect(contains("FIRSTTOKEN")) if args.first else None
    cpu0 = time.process_time()
    with profiled("stream"):
        out["t_enter"] = send_key(app, "enter", "\r")
        cpu_first = cpu0
        if first_frame is not None:
            out["t_first_token_frame"] = await within(
                first_frame, 30, "the first token"
            )
            cpu_first = time.process_time()
            frames.scan = "t_last_delta" in out
        out["t_last_token_frame"] = await within(last_frame, 120, LAST_TOKEN)
        cpu_last = time.process_time()
    # The reply ends: the live view is swapped for the stored message.
    await until(lambda: not app.chat.replies.live(), 30, "the reply's end", every=0.01)
    await frames.quiet(0.3)
    out["cpu_total_s"] = time.process_time() - cpu0
    out["cpu_streaming_s"] = cpu_last - cpu_first
    out["frames"] = frames.count


async def scenario_first(
    pilot: Any, app: Any, frames: Frames, args: Any, out: dict[str, Any]
) -> None:
    from benchmarks.bigdb import TOP_TITLE

    await start(app, frames, (TOP_TITLE,), out)
    if args.delay:
        await asyncio.sleep(args.delay)
    await pilot.press("enter")
    # The thread opens in a worker and then focuses the composer: type only then, or
    # the keys would land on the sidebar's triage bindings.
    await until(lambda: app.focused is app.chat.composer, 10, "the composer's focus")
    await pilot.press(*args.prompt)
    future = frames.expect(contains("FIRSTTOKEN"))
    with profiled("first"):
        out["t_enter"] = send_key(app, "enter", "\r")
        out["t_first_token_frame"] = await within(future, 30, "the first token")


SCENARIOS = {
    "big": scenario_big,
    "start": scenario_start,
    "stream": scenario_stream,
    "first": scenario_first,
}


async def main(args: argparse.Namespace) -> dict[str, Any]:
    out: dict[str, Any] = {"t_import_start": T_IMPORT_START}
    app = make_app()
    out["t_app_built"] = time.monotonic()
    frames = Frames(app)
    try:
        async with app.run_test(size=SIZE) as pilot:
            await SCENARIOS[args.scenario](pilot, app, frames, args, out)
            out["t_done"] = time.monotonic()
            with contextlib.suppress(Exception):
                await app.action_quit()
    except Exception as exc:
        out["error"] = f"{type(exc).__name__}: {exc}"
        with contextlib.suppress(Exception):
            args.out.with_suffix(".svg").write_text(app.export_screenshot())
    return out


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("scenario", choices=sorted(SCENARIOS))
    parser.add_argument("out", type=Path)
    parser.add_argument("--marker", action="append", default=[])
    parser.add_argument("--prompt", default="")
    parser.add_argument("--delay", type=float, default=0.0)
    parser.add_argument("--first", action="store_true")
    parser.add_argument("--pages", type=int, default=8)
    parser.add_argument("--opens", type=int, default=2)
    parser.add_argument("--profile", help="a phase to profile (see `profiled`)")
    parser.add_argument("--profile-out", default="profile.txt")
    arguments = parser.parse_args()
    if arguments.profile:
        _PROFILE.update(phase=arguments.profile, out=arguments.profile_out)
    result = asyncio.run(main(arguments))
    arguments.out.write_text(json.dumps(result))
    sys.exit(1 if "error" in result else 0)
