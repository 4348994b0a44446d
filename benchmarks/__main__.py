"""`python -m benchmarks`: run every benchmark and print each figure beside its budget.

    python -m benchmarks                 # the full run (≥ 5 runs per figure)
    python -m benchmarks --quick         # a smoke run in under a minute
    python -m benchmarks --only engine   # one group (engine, app, pty, server) …
    python -m benchmarks --only engine.search,app.sidebar   # … or single benchmarks
    python -m benchmarks --list          # what exists

The table goes to stdout, progress to stderr, and the whole result (every sample, the
machine, the commit) to `benchmarks/results/<time>.json`. The exit status is 0 when every
budgeted figure is within budget, 1 otherwise.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from benchmarks.common import (
    REPO_ROOT,
    RESULTS_DIR,
    Bench,
    Context,
    Figure,
    failed,
)


def registry() -> list[Bench]:
    """Every benchmark, in run order (modules imported lazily: they are heavy)."""
    from benchmarks import (
        bench_app,
        bench_engine,
        bench_knowledge,
        bench_pty,
        bench_server,
        bench_sync,
    )

    return [
        *bench_engine.BENCHMARKS,
        *bench_knowledge.BENCHMARKS,
        *bench_app.BENCHMARKS,
        *bench_pty.BENCHMARKS,
        *bench_server.BENCHMARKS,
        *bench_sync.BENCHMARKS,
    ]


def select(benches: Sequence[Bench], only: str | None) -> list[Bench]:
    """The benchmarks `--only` names (group names or full ids, comma-separated)."""
    if not only:
        return list(benches)
    wanted = [w.strip() for w in only.split(",") if w.strip()]
    chosen = [
        b for b in benches if any(b.id == w or b.id.startswith(w + ".") for w in wanted)
    ]
    if not chosen:
        known = ", ".join(b.id for b in benches)
        raise SystemExit(f"--only {only!r} matches nothing; known: {known}")
    return chosen


# --------------------------------------------------------------------------- output


def _number(value: float) -> str:
    if float(value).is_integer() and abs(value) < 1e6:
        return f"{int(value):,}"
    if value >= 100:
        return f"{value:,.0f}"
    if value >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def measured_text(figure: Figure) -> str:
    if figure.value is None:
        return "—"
    suffix = "" if figure.stat in ("median", "single") else f" ({figure.stat})"
    floor = "> " if figure.lower_bound else ""
    return f"{floor}{_number(figure.value)} {figure.unit}{suffix}"


def budget_text(figure: Figure) -> str:
    if figure.error is not None and figure.budget is None:
        return "—"
    if figure.kind == "report" or figure.budget is None:
        return "report"
    return f"≤ {_number(figure.budget)} {figure.unit}"


def verdict_text(figure: Figure) -> str:
    if figure.error is not None:
        return "ERROR"
    ok = figure.ok
    if ok is None:
        return "—"
    return "ok" if ok else "MISS"


def table(figures: Sequence[Figure]) -> str:
    """The figures as a Markdown table, notes as numbered footnotes below it."""
    header = ("figure", "measured", "budget", "ok?")
    rows: list[tuple[str, str, str, str]] = []
    notes: list[str] = []
    for figure in figures:
        name = f"[{figure.group}] {figure.name}"
        text = figure.note if figure.error is None else f"error: {figure.error}"
        if text:
            notes.append(text)
            name += f" [{len(notes)}]"
        rows.append(
            (name, measured_text(figure), budget_text(figure), verdict_text(figure))
        )
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(4)]
    lines = [
        "| " + " | ".join(h.ljust(widths[i]) for i, h in enumerate(header)) + " |",
        "|" + "|".join("-" * (w + 2) for w in widths) + "|",
    ]
    for row in rows:
        lines.append(
            "| " + " | ".join(c.ljust(widths[i]) for i, c in enumerate(row)) + " |"
        )
    if notes:
        lines.append("")
        lines.extend(f"[{i}] {note}" for i, note in enumerate(notes, start=1))
    return "\n".join(lines)


def _git(*args: str) -> str:
    try:
        return subprocess.run(
            ["git", *args], cwd=REPO_ROOT, capture_output=True, text=True, check=False
        ).stdout.strip()
    except OSError:
        return ""


def machine() -> dict[str, object]:
    import sqlite3

    import textual

    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "loadavg": os.getloadavg(),
        "sqlite": sqlite3.sqlite_version,
        "textual": textual.__version__,
        "commit": _git("rev-parse", "HEAD"),
        "dirty": bool(_git("status", "--porcelain", "--untracked-files=no")),
    }


def write_results(
    figures: Sequence[Figure], args: argparse.Namespace, started: datetime
) -> Path:
    RESULTS_DIR.mkdir(exist_ok=True)
    stamp = started.strftime("%Y%m%dT%H%M%SZ")
    path = RESULTS_DIR / f"{stamp}{'-quick' if args.quick else ''}.json"
    data = {
        "started_at": started.isoformat(),
        "seconds": (datetime.now(UTC) - started).total_seconds(),
        "mode": "quick" if args.quick else "full",
        "only": args.only,
        "machine": machine(),
        "figures": [figure.as_json() for figure in figures],
    }
    path.write_text(json.dumps(data, indent=2, default=str) + "\n")
    return path


# --------------------------------------------------------------------------- running


def log(text: str) -> None:
    sys.stderr.write(f"bench: {text}\n")
    sys.stderr.flush()


async def _collect(bench: Bench, ctx: Context) -> list[Figure]:
    figures = []
    async for figure in bench.fn(ctx):
        figure.group = figure.group or bench.id.split(".")[0]
        figure.load = os.getloadavg()[0]
        log(f"  {figure.name}: {measured_text(figure)} ({verdict_text(figure)})")
        figures.append(figure)
    return figures


def run(benches: Sequence[Bench], ctx: Context) -> list[Figure]:
    figures: list[Figure] = []
    for bench in benches:
        log(f"{bench.id}: {bench.about}")
        started = time.perf_counter()
        try:
            figures.extend(asyncio.run(_collect(bench, ctx)))
        except Exception as exc:  # one broken benchmark must not hide the others
            traceback.print_exc(file=sys.stderr)
            figure = failed(bench.id, "", f"{type(exc).__name__}: {exc}")
            figure.group = bench.id.split(".")[0]
            figures.append(figure)
        log(f"{bench.id}: {time.perf_counter() - started:.1f} s")
    return figures


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument(
        "--quick", action="store_true", help="a smoke run (< 60 s, smaller database)"
    )
    parser.add_argument("--only", metavar="NAMES", help="groups or benchmark ids")
    parser.add_argument("--runs", type=int, help="repetitions per figure")
    parser.add_argument("--list", action="store_true", help="list the benchmarks")
    args = parser.parse_args(argv)
    benches = registry()
    if args.list:
        for bench in benches:
            print(f"{bench.id:<22} {bench.about}")
        return 0
    chosen = select(benches, args.only)
    runs = args.runs or (1 if args.quick else 5)
    started = datetime.now(UTC)
    tmp = Path(tempfile.mkdtemp(prefix="tenex-bench-"))
    try:
        ctx = Context(quick=args.quick, runs=runs, tmp=tmp, log=log)
        figures = run(chosen, ctx)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print()
    loads = [f.load for f in figures if f.load is not None] or [0.0]
    print(
        f"tenex-tui benchmarks ({'quick' if args.quick else 'full'} run, "
        f"{runs} runs per figure, {os.cpu_count()} CPUs, load average "
        f"{min(loads):.1f}–{max(loads):.1f} while measuring, "
        f"{(datetime.now(UTC) - started).total_seconds():.0f} s)"
    )
    print()
    print(table(figures))
    path = write_results(figures, args, started)
    print()
    print(f"results: {path.relative_to(REPO_ROOT)}")
    return 0 if all(f.ok is not False for f in figures) else 1


if __name__ == "__main__":
    raise SystemExit(main())
