"""What every benchmark shares: the `Figure` it reports, timing and process helpers.

A figure is one number beside its budget. `kind="max"` figures pass when the measured
value is at most the budget; `kind="report"` figures have no budget and are printed for
information (build times, CPU of a peer, memory of the server). Every timed figure is a
statistic over several runs (`median`, or `p95`/`p99` where the budget says so) and
keeps its raw samples for the JSON result file.

Process helpers read `/proc` (Linux only, like the budgets' 2-core box): the CPU time and
resident memory of a child process, so an app running in a pty is measured from outside.

The synthetic big database lives in `benchmarks.bigdb` and is re-exported here.
"""

from __future__ import annotations

import math
import os
import statistics
import time
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

BENCH_DIR = Path(__file__).resolve().parent
"""The `benchmarks/` folder."""
REPO_ROOT = BENCH_DIR.parent
"""The repository root (the working directory of every child process)."""
CACHE_DIR = BENCH_DIR / ".cache"
"""Cached synthetic databases (gitignored)."""
RESULTS_DIR = BENCH_DIR / "results"
"""JSON result files (gitignored)."""

Kind = Literal["max", "report"]
Stat = Literal["median", "p95", "p99", "max", "total", "single"]


@dataclass
class Figure:
    """One measured figure beside its budget.

    Args:
        name: What was measured, as printed in the table.
        value: The statistic (None when the measurement failed: see `error`).
        unit: `ms`, `s`, `MB`, `%`, `x`, …
        budget: The budget in the same unit (the stricter of the issue's and
            DESIGN.md §8's when they differ); None for report-only figures.
        kind: `max` (pass when value ≤ budget) or `report` (no verdict).
        stat: Which statistic `value` is (`median`, `p95`, …).
        samples: The raw per-run values.
        note: The other budget, the workload, or why a figure is approximate.
        group: The benchmark group (`engine`, `app`, `pty`, `server`).
        error: Why the figure could not be measured.
        lower_bound: The measurement was stopped at a cap; the value is a floor.
    """

    name: str
    value: float | None
    unit: str
    budget: float | None = None
    kind: Kind = "max"
    stat: Stat = "median"
    samples: list[float] = field(default_factory=list)
    note: str = ""
    group: str = ""
    error: str | None = None
    lower_bound: bool = False
    """True when the run was stopped at a cap: the real value is larger."""
    load: float | None = None
    """The machine's 1-minute load average when the figure was taken."""

    @property
    def ok(self) -> bool | None:
        """True/False against the budget; None for report-only or failed figures."""
        if self.kind == "report" or self.budget is None:
            return None if self.error is None else False
        if self.value is None:
            return False
        return self.value <= self.budget

    def as_json(self) -> dict[str, Any]:
        """The figure as a JSON object (with its verdict)."""
        data = asdict(self)
        data["ok"] = self.ok
        return data


def failed(name: str, unit: str, error: str, *, budget: float | None = None) -> Figure:
    """A figure whose measurement raised (shown as a failure, never as a pass)."""
    return Figure(name, None, unit, budget, kind="max", error=error)


# --------------------------------------------------------------------------- statistics


def median(values: Sequence[float]) -> float:
    """The median (raises on an empty sequence, which is a benchmark bug)."""
    return float(statistics.median(values))


def percentile(values: Sequence[float], q: float) -> float:
    """The `q`-th percentile (0–100) by the nearest-rank method.

    Nearest rank never interpolates below a real sample, so a p95 of 20 samples is
    the 19th smallest: an honest upper figure for a budget.
    """
    if not values:
        raise ValueError("no samples")
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return float(ordered[rank - 1])


def stat(values: Sequence[float], which: Stat) -> float:
    """Apply a named statistic."""
    if which == "median":
        return median(values)
    if which == "p95":
        return percentile(values, 95)
    if which == "p99":
        return percentile(values, 99)
    if which == "max":
        return float(max(values))
    if which == "total":
        return float(sum(values))
    return float(values[-1])


# --------------------------------------------------------------------------- timing


@dataclass
class Span:
    """Wall and CPU time of a block (`with timed() as span:`)."""

    wall: float = 0.0
    """Seconds of wall-clock time."""
    cpu: float = 0.0
    """Seconds of CPU time of this whole process (every thread)."""


@contextmanager
def timed() -> Iterator[Span]:
    """Measure a block's wall time (`perf_counter`) and process CPU (`process_time`)."""
    span = Span()
    wall0, cpu0 = time.perf_counter(), time.process_time()
    try:
        yield span
    finally:
        span.wall = time.perf_counter() - wall0
        span.cpu = time.process_time() - cpu0


def repeat(fn: Callable[[], float], runs: int, *, warmup: int = 1) -> list[float]:
    """Call `fn` `warmup` times (discarded), then `runs` times; its results in order."""
    for _ in range(warmup):
        fn()
    return [fn() for _ in range(runs)]


def ms(seconds: float) -> float:
    """Seconds to milliseconds."""
    return seconds * 1000.0


# --------------------------------------------------------------------------- processes

_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def proc_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a live process and all its threads (`/proc`).

    The resolution is one clock tick (10 ms); figures built on it span seconds.
    """
    with open(f"/proc/{pid}/stat", "rb") as handle:
        raw = handle.read().decode()
    # The command name is in parentheses and may contain spaces: split after it.
    fields = raw[raw.rindex(")") + 2 :].split()
    utime, stime = int(fields[11]), int(fields[12])
    return (utime + stime) / _CLOCK_TICKS


def proc_memory_mb(pid: int) -> tuple[float, float]:
    """`(VmRSS, VmHWM)` of a live process in MB (resident now, and its peak)."""
    rss = hwm = 0.0
    with open(f"/proc/{pid}/status") as handle:
        for line in handle:
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1]) / 1024
            elif line.startswith("VmHWM:"):
                hwm = int(line.split()[1]) / 1024
    return rss, hwm


def self_memory_mb() -> tuple[float, float]:
    """`(VmRSS, VmHWM)` of this process in MB."""
    return proc_memory_mb(os.getpid())


def child_env(**extra: str) -> dict[str, str]:
    """An environment for a child process: this one, minus provider variables.

    The children must talk to the loopback server the benchmark starts, never to a
    provider configured in the shell that runs the benchmark.
    """
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("OPENAI_", "TENEX_", "TEXTUAL"))
    }
    env["PYTHONPATH"] = str(REPO_ROOT)
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    env.update(extra)
    return env


def wait_for(
    predicate: Callable[[], bool], timeout: float, *, interval: float = 0.001
) -> bool:
    """Poll `predicate` until it holds or `timeout` seconds pass (bounded)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()


from benchmarks.bigdb import BigDb, big_db, small_home  # noqa: E402

BenchFn = Callable[["Context"], AsyncIterator[Figure]]
"""A benchmark: an async generator of figures, given the run's context."""


@dataclass
class Bench:
    """One registered benchmark."""

    id: str
    """`group.name`, what `--only` matches."""
    fn: BenchFn
    about: str = ""


@dataclass
class Context:
    """What one `python -m benchmarks` run gives every benchmark."""

    quick: bool
    """The smoke run: a smaller database, fewer repetitions."""
    runs: int
    """Repetitions per timed figure (≥ 5 in a full run)."""
    tmp: Path
    """A scratch folder, removed at the end."""
    log: Callable[[str], None]
    """Progress lines (stderr)."""
    _db: BigDb | None = None

    @property
    def scale(self) -> tuple[int, int]:
        """Threads and messages of the synthetic database for this run."""
        return (2_000, 20_000) if self.quick else (100_000, 1_000_000)

    def db(self) -> BigDb:
        """The synthetic database (built and cached on first use)."""
        if self._db is None:
            self._db = big_db(*self.scale, log=self.log)
        return self._db

    def scratch(self, name: str) -> Path:
        """A fresh folder under the scratch folder."""
        path = self.tmp / name
        counter = 1
        while path.exists():
            counter += 1
            path = self.tmp / f"{name}-{counter}"
        path.mkdir(parents=True)
        return path


__all__ = [
    "BENCH_DIR",
    "CACHE_DIR",
    "REPO_ROOT",
    "RESULTS_DIR",
    "Bench",
    "BigDb",
    "Context",
    "Figure",
    "Span",
    "big_db",
    "child_env",
    "failed",
    "median",
    "ms",
    "percentile",
    "proc_cpu_seconds",
    "proc_memory_mb",
    "repeat",
    "self_memory_mb",
    "small_home",
    "stat",
    "timed",
    "wait_for",
]
