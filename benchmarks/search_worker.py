"""Time `LocalEngine.search` in a child process, so a runaway query can be stopped.

`python -m benchmarks.search_worker DB LOCKS QUERY REPEATS` opens the engine, runs the
query `REPEATS` times after one warm-up and prints one line per run: the milliseconds
it took. The parent kills the child when a run overruns its cap; a SQLite query that
is already running cannot be cancelled from the event loop (the engine lets a DB-thread
call run to its end), so a separate process is the only clean way to bound it.
"""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path


async def main(db: Path, locks: Path, query: str, repeats: int) -> None:
    from tenex_tui.engine.engine import LocalEngine

    engine = await LocalEngine.open(db, locks_dir=locks)
    try:
        for _ in range(repeats + 1):
            started = time.perf_counter()
            page = await engine.search(query)
            elapsed = (time.perf_counter() - started) * 1000
            sys.stdout.write(f"{elapsed:.4f} {len(page.items)} {page.total}\n")
            sys.stdout.flush()
    finally:
        await engine.aclose()


if __name__ == "__main__":
    asyncio.run(
        main(Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3], int(sys.argv[4]))
    )
