"""App figures (issue 3), headless: `App.run_test` in a fresh child process per run.

Each run spawns `benchmarks.app_worker`, which builds the app the way `tenex-tui` does
and times frames from inside (see its docstring). Cold-start figures count from the
parent's spawn, so they include the interpreter and every import. The same figures
measured in a real terminal (a pty) are in `bench_pty`.

Budgets: the stricter of issue 3's and DESIGN.md §8's; the other is in the note.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any, TypeVar

from benchmarks.bigdb import TOP_TITLE
from benchmarks.common import (
    REPO_ROOT,
    Bench,
    Context,
    Figure,
    child_env,
    median,
    ms,
    percentile,
    small_home,
)
from benchmarks.llm_server import LLMProcess

T = TypeVar("T")

COLD_BUDGET_NOTE = "issue 3: ≤ 0.6 s; DESIGN.md §8: ≤ 0.8 s"
EMPTY_MARKER = "No threads yet"


def run_worker(
    scenario: str,
    home: Path,
    *extra: str,
    llm: LLMProcess | None = None,
    timeout: float = 600,
) -> dict[str, Any]:
    """Run one app worker to its end; its JSON result plus `t0` (the spawn time)."""
    out = (
        Path(tempfile.gettempdir())
        / f"tenex-bench-{scenario}-{time.monotonic_ns()}.json"
    )
    env = child_env(TENEX_HOME=str(home))
    if llm is not None:
        env.update(
            OPENAI_BASE_URL=llm.base_url,
            OPENAI_API_KEY="sk-bench-not-secret",
            TENEX_MODEL="bench-model",
        )
    t0 = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks.app_worker", scenario, str(out), *extra],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if not out.exists():
        raise RuntimeError(
            f"app worker {scenario} wrote no result (exit {proc.returncode}): "
            f"{proc.stderr.strip()[-800:]}"
        )
    result: dict[str, Any] = json.loads(out.read_text())
    out.unlink()
    if "error" in result:
        raise RuntimeError(f"app worker {scenario}: {result['error']}")
    result["t0"] = t0
    return result


async def _runs(n: int, fn: Callable[..., T], *args: Any, **kwargs: Any) -> list[T]:
    """`fn(*args)` n times, one after the other, off the event loop."""
    return [await asyncio.to_thread(fn, *args, **kwargs) for _ in range(n)]


def empty_home(ctx: Context) -> Path:
    """A home whose database exists and is empty (created by one discarded start)."""
    home = ctx.tmp / "empty-home"
    if not (home / "tenex.db").exists():
        home.mkdir(parents=True, exist_ok=True)
        run_worker("start", home, "--marker", EMPTY_MARKER)
    return home


async def cold_start(ctx: Context) -> AsyncIterator[Figure]:
    """Start to first frame and to the first frame listing threads: empty and big DB."""
    if ctx.quick:
        return  # the smoke run measures cold start in the pty only
    empty = await asyncio.to_thread(empty_home, ctx)
    first_run = (
        None
        if ctx.quick
        else await asyncio.to_thread(
            run_worker, "start", ctx.scratch("first-run"), "--marker", EMPTY_MARKER
        )
    )
    runs_empty = await _runs(
        ctx.runs, run_worker, "start", empty, "--marker", EMPTY_MARKER
    )
    runs_big = await _runs(
        ctx.runs, run_worker, "start", ctx.db().home, "--marker", TOP_TITLE
    )
    empty_ready = [r["t_interactive"] - r["t0"] for r in runs_empty]
    big_ready = [r["t_interactive"] - r["t0"] for r in runs_big]
    for label, runs, ready in (
        ("empty DB", runs_empty, empty_ready),
        ("big DB", runs_big, big_ready),
    ):
        paint = [r["t_first_frame"] - r["t0"] for r in runs]
        imports = [r["t_app_built"] - r["t0"] for r in runs]
        yield Figure(
            f"cold start to threads on screen, {label}",
            median(ready),
            "s",
            0.6,
            samples=ready,
            note=f'{COLD_BUDGET_NOTE}; first frame ("Opening…") at '
            f"{median(paint):.3f} s; interpreter + imports {median(imports):.3f} s",
        )
    ratio = median(big_ready) / median(empty_ready)
    yield Figure(
        "cold start, big DB / empty DB",
        ratio,
        "x",
        1.10,
        samples=[b / e for b, e in zip(big_ready, empty_ready, strict=False)],
        note=f"within 10% (issue 3, DESIGN.md §8); {_scale(ctx)}",
    )
    if first_run is None:
        return
    yield Figure(
        "first run ever (creates and migrates the DB)",
        first_run["t_interactive"] - first_run["t0"],
        "s",
        kind="report",
        stat="single",
    )


def _scale(ctx: Context) -> str:
    threads, messages = ctx.scale
    return f"{threads:,} threads / {messages:,} messages"


async def big_db_session(ctx: Context) -> AsyncIterator[Figure]:
    """Open the 10,000-message thread, sidebar keys through every thread, memory."""
    pages, opens = ("2", "1") if ctx.quick else ("8", "2")
    runs = await _runs(
        ctx.runs, run_worker, "big", ctx.db().home, "--pages", pages, "--opens", opens
    )
    first_open = [ms(r["open_big_s"][0]) for r in runs]
    warm_open = [ms(r["open_big_s"][-1]) for r in runs]
    db = ctx.db()
    yield Figure(
        f"open a {db.big_thread_messages:,}-message thread to first frame",
        median(first_open),
        "ms",
        150,
        samples=first_open,
        note=f"Enter → the frame showing its last message, first open after start; "
        f"a second open: {median(warm_open):.0f} ms",
    )
    gc_full = max(r["keys_gc"]["gc_full_max_ms"] for r in runs)
    for key in ("pagedown", "end", "home"):
        samples = [ms(v) for r in runs for v in r["keys_s"][key]]
        yield Figure(
            f"sidebar {key}: key → next frame",
            max(samples),
            "ms",
            16,
            stat="max",
            samples=samples,
            note=f"{len(samples)} presses, median {median(samples):.1f} ms, p95 "
            f"{percentile(samples, 95):.1f} ms; DESIGN.md §8: ≤ 16 ms; issue 3: ≤ 50 ms; "
            f"longest full GC pause meanwhile {gc_full:.0f} ms; {_scale(ctx)}",
        )
    yield Figure(
        "sidebar End: every page loaded (background walk)",
        median([r["end_walk_s"] for r in runs]),
        "s",
        kind="report",
        note=f"{runs[0]['rows_loaded']:,} rows in the sidebar afterwards",
    )
    rss = [r["rss_all_rows_mb"] for r in runs]
    yield Figure(
        "resident memory, every thread loaded in the sidebar",
        median(rss),
        "MB",
        120,
        samples=rss,
        note=f"issue 3: ≤ 120 MB; DESIGN.md §8: ≤ 150 MB; after start: "
        f"{median([r['rss_ready_mb'] for r in runs]):.0f} MB; peak "
        f"{max(r['rss_peak_mb'] for r in runs):.0f} MB; {_scale(ctx)}",
    )


def _stream_run(ctx: Context, llm: LLMProcess, prompt: str) -> dict[str, Any]:
    home, _thread = small_home(ctx.scratch("stream-home"))
    before = len(llm.records)
    first = ["--first"] if prompt.startswith("bench:paced") else []
    result = run_worker("stream", home, "--prompt", prompt, *first, llm=llm)
    records = llm.wait_records(before + 1, 30)
    result["server"] = records[before]
    return result


async def streaming(ctx: Context) -> AsyncIterator[Figure]:
    """4,000 chunks at full speed under 30 finished messages; and 100 chunks/s."""
    chunks = 4000
    with LLMProcess() as llm:
        runs = await _runs(ctx.runs, _stream_run, ctx, llm, f"bench:full:{chunks}")
        paced_chunks = 100 if ctx.quick else 1000
        # The paced run takes its whole length in wall time: not in a smoke run.
        paced = (
            []
            if ctx.quick
            else await _runs(
                max(1, ctx.runs // 2),
                _stream_run,
                ctx,
                llm,
                f"bench:paced:{paced_chunks}:10",
            )
        )
    lag = [ms(r["t_last_token_frame"] - r["server"]["t_last_byte"]) for r in runs]
    cpu = [r["cpu_total_s"] * 1000 / chunks for r in runs]
    mounted = runs[0]["mounted_messages"]
    yield Figure(
        f"stream {chunks:,} chunks: last token on screen after the server's last byte",
        median(lag),
        "ms",
        100,
        samples=lag,
        note=f"DESIGN.md §8: ≤ 100 ms; issue 3: ≤ 150 ms; a thread of 30 finished "
        f"messages ({mounted} views mounted by the app); the server sent for "
        f"{median([ms(r['server']['t_last_byte'] - r['server']['t_request']) for r in runs]):.0f} ms",
    )
    yield Figure(
        f"stream {chunks:,} chunks: app CPU per chunk",
        median(cpu),
        "ms",
        1.0,
        samples=cpu,
        note="whole process (UI + engine + DB thread), Enter → reply stored and "
        f"redrawn; {median([r['frames'] for r in runs]):.0f} frames",
    )
    share = [
        100
        * r["cpu_streaming_s"]
        / (r["t_last_token_frame"] - r["t_first_token_frame"])
        for r in paced
    ]
    if not share:
        return
    yield Figure(
        "stream at 100 chunks/s: app CPU",
        median(share),
        "%",
        20,
        samples=share,
        note=f"% of one core from the first token's frame to the last ({paced_chunks} "
        "chunks); issue 3",
    )


def _first_run(ctx: Context, llm: LLMProcess, delay: float) -> float:
    home, _thread = small_home(ctx.scratch("first-home"), others=20)
    before = len(llm.records)
    result = run_worker(
        "first", home, "--prompt", "bench:paced:40:20", "--delay", str(delay), llm=llm
    )
    server = llm.wait_records(before + 1, 30)[before]
    model_latency = server["t_first_content"] - server["t_request"]
    return ms(result["t_first_token_frame"] - result["t_enter"] - model_latency)


async def first_message(ctx: Context) -> AsyncIterator[Figure]:
    """Enter → first token on screen, minus the model's own latency, after start-up."""
    if ctx.quick:
        return  # the smoke run measures it in the pty only
    with LLMProcess() as llm:
        delay = 0.3 if ctx.quick else 1.0
        typed = await _runs(ctx.runs, _first_run, ctx, llm, delay)
        at_once = [] if ctx.quick else await _runs(ctx.runs, _first_run, ctx, llm, 0.0)
    yield Figure(
        "first message after start-up: Enter → first token, beyond the model",
        median(typed),
        "ms",
        100,
        samples=typed,
        note=f"sent {delay} s after the threads appear (a person typing; the model "
        "client warms in the background meanwhile); issue 3",
    )
    if not at_once:
        return
    yield Figure(
        "the same, sent the instant the threads appear",
        median(at_once),
        "ms",
        kind="report",
        samples=at_once,
        note=f"p95 {percentile(at_once, 95):.0f} ms",
    )


BENCHMARKS = [
    Bench("app.start", cold_start, "headless cold start, empty and big DB"),
    Bench("app.big", big_db_session, "headless: open 10k thread, sidebar keys, RSS"),
    Bench("app.stream", streaming, "headless streaming lag and CPU"),
    Bench("app.first", first_message, "headless first message after start-up"),
]
