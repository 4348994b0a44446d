"""A child process that runs the engine under a file-size limit (test-plan T6, H7).

    python -m tests.support.disk_full_worker DB

`RLIMIT_FSIZE` (with SIGXFSZ ignored) makes writes past the limit fail the way a full
disk does (SQLite reports `SQLITE_FULL` / `SQLITE_IOERR_WRITE`), without root. The
worker prints one JSON object per step; the parent checks them and the file.
"""

from __future__ import annotations

import asyncio
import json
import resource
import signal
import sys
from pathlib import Path

from tenex_tui.core.errors import StorageError
from tenex_tui.engine.engine import LocalEngine
from tests.support.scripted_llm import ScriptedLLM

BIG_DELTA = "y" * 100_000


def _say(**fields: object) -> None:
    sys.stdout.write(json.dumps(fields) + "\n")
    sys.stdout.flush()


def _limit(size: int | None) -> None:
    _soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (hard if size is None else size, hard))


def _size(path: Path) -> int:
    return path.stat().st_size


async def main(path: Path) -> None:
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    llm = ScriptedLLM()
    engine = await LocalEngine.open(path, llm=llm, checkpoint_interval=0.01)
    thread = await engine.create_thread(title="disk full")
    llm.enqueue("baseline reply")
    async for event in engine.send_message(thread.id, "baseline"):
        if event.terminal:
            _say(step="baseline", status=event.status)

    def truncate_wal() -> None:
        connection = engine._core.db.connection
        assert connection is not None
        connection.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    await engine._core.db.run(truncate_wal)
    _limit(_size(path) + 4096)

    # 1. A message too big for the space left: refused whole, nothing half-written.
    try:
        async for _ in engine.send_message(thread.id, "x" * 190_000):
            pass
        _say(step="big_send", error=None)
    except StorageError as exc:
        _say(step="big_send", error=type(exc).__name__, message=exc.message)

    # 2. A reply that outgrows the space while streaming: kept in memory, saved later.
    reply = llm.enqueue(BIG_DELTA, BIG_DELTA, BIG_DELTA, "end", hold_at=(3,))
    stream = engine.send_message(thread.id, "small question")
    started = await anext(stream)
    await reply.held(3).wait()
    live = engine._core.replies[(engine.scope.workspace_id, started.message_id)]
    saved = await live.checkpoint()
    _say(
        step="stream_while_full",
        saved=saved,
        error=type(live.save_error).__name__ if live.save_error else None,
        message_id=started.message_id,
    )
    _limit(None)  # space comes back
    reply.release(3)
    async for event in stream:
        if event.terminal:
            _say(
                step="final",
                status=event.status,
                length=len(event.message.content) if event.message else -1,
            )
    await engine.aclose()


if __name__ == "__main__":
    asyncio.run(main(Path(sys.argv[1])))
