"""kill -9 at random moments loses nothing committed (T1); a reply whose process was
killed is interrupted once, on the next start, and never regenerated (T13, T14, T25b)."""

from __future__ import annotations

import os
import random
import select
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tenex_tui.engine.clock import SystemClock
from tenex_tui.engine.engine import LocalEngine
from tests.support.scripted_llm import ScriptedLLM

ROOT = Path(__file__).resolve().parents[2]
ITERATIONS = int(os.environ.get("TENEX_CRASH_ITERS", "20"))


class Worker:
    """A crash worker subprocess and the lines it reported."""

    def __init__(self, db: Path, seed: int, *extra: str) -> None:
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tests.support.crash_worker",
                str(db),
                str(seed),
                *extra,
            ],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        self.lines: list[str] = []
        self._buffer = b""

    def read_until(self, deadline: float, *, want: int | None = None) -> None:
        """Collect reported lines until the deadline (or until `want` lines)."""
        assert self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        while time.monotonic() < deadline and (want is None or len(self.lines) < want):
            ready, _, _ = select.select(
                [fd], [], [], max(0.0, deadline - time.monotonic())
            )
            if not ready:
                break
            chunk = os.read(fd, 65536)
            if not chunk:
                break
            self._buffer += chunk
            *complete, self._buffer = self._buffer.split(b"\n")
            self.lines.extend(line.decode() for line in complete)

    def kill(self) -> None:
        """SIGKILL, then read what it had already written."""
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)
        assert self.proc.stdout is not None
        rest = self._buffer + self.proc.stdout.read()
        self.lines.extend(line.decode() for line in rest.split(b"\n") if line)
        self._buffer = b""
        assert self.proc.stderr is not None
        self.stderr = self.proc.stderr.read().decode()
        self.proc.stdout.close()
        self.proc.stderr.close()


def _check_invariants(
    db: Path, committed: set[str], finals: dict[str, tuple[str, int]]
) -> None:
    conn = sqlite3.connect(db)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert conn.execute("PRAGMA foreign_key_check").fetchall() == []
        present = {r[0] for r in conn.execute("SELECT id FROM messages")}
        missing = committed - present
        assert not missing, f"committed but lost: {sorted(missing)[:5]}"
        for message_id, (status, length) in finals.items():
            row = conn.execute(
                "SELECT status, length(content) FROM messages WHERE id = ?",
                (message_id,),
            ).fetchone()
            assert row == (status, length), message_id
        # No half-visible transaction: a reply's text is exactly its stored deltas, and
        # its event counter matches its stored events.
        replies = conn.execute(
            "SELECT workspace_id, id, content, event_seq FROM messages WHERE role = 'assistant'"
        ).fetchall()
        for workspace, message_id, content, event_seq in replies:
            events = conn.execute(
                "SELECT seq, type, delta FROM events WHERE workspace_id = ? AND message_id = ? "
                "ORDER BY seq",
                (workspace, message_id),
            ).fetchall()
            assert [e[0] for e in events] == list(range(1, event_seq + 1)), message_id
            assert "".join(e[2] for e in events if e[1] == "message.delta") == content
    finally:
        conn.close()


@pytest.mark.crash
def test_kill_nine_loop_loses_nothing_committed(tmp_path: Path) -> None:
    db = tmp_path / "crash.db"
    rng = random.Random(1234)
    committed: set[str] = set()
    finals: dict[str, tuple[str, int]] = {}
    for iteration in range(ITERATIONS):
        worker = Worker(db, iteration)
        worker.read_until(time.monotonic() + 30, want=1)
        assert worker.lines, f"worker {iteration} reported nothing"
        worker.read_until(time.monotonic() + rng.uniform(0.0, 0.25))
        worker.kill()
        assert worker.proc.returncode == -signal.SIGKILL, worker.stderr
        for line in worker.lines:
            words = line.split()
            if words[0] == "committed":
                committed.update(words[1:3])
            elif words[0] == "final":
                finals[words[1]] = (words[2], int(words[3]))
        _check_invariants(db, committed, finals)
    assert len(finals) > ITERATIONS  # replies did finish between kills
    # The next start reconciles every reply the killed workers left streaming.
    import asyncio

    async def reopen() -> int:
        engine = await LocalEngine.open(db, clock=SystemClock())
        try:
            return await engine._core.db.run(engine._core.store.reconcile)
        finally:
            await engine.aclose()

    assert asyncio.run(reopen()) == 0
    conn = sqlite3.connect(db)
    try:
        assert (
            conn.execute(
                "SELECT count(*) FROM messages WHERE status = 'streaming'"
            ).fetchone()[0]
            == 0
        )
    finally:
        conn.close()
    _check_invariants(db, committed, finals)


@pytest.mark.parametrize(("held_at", "partial"), [(0, ""), (2, "partial text ")])
async def test_a_killed_writers_reply_is_interrupted_once_and_never_rerun(
    tmp_path: Path, held_at: int, partial: str
) -> None:
    db = tmp_path / "held.db"
    worker = Worker(db, 0, "--hold", str(held_at))
    worker.read_until(time.monotonic() + 30, want=1)
    assert worker.lines and worker.lines[0].startswith("committed"), worker.lines
    _, user_id, reply_id, thread_id = worker.lines[0].split()
    worker.kill()

    llm = ScriptedLLM()
    engine = await LocalEngine.open(db, llm=llm, clock=SystemClock())
    try:
        user = await engine.get_message(thread_id, user_id)
        reply = await engine.get_message(thread_id, reply_id)
        assert (user.role, user.content) == ("user", "question")
        assert (reply.status, reply.content) == ("interrupted", partial)
        first = await engine._core.db.run(
            engine._core.store.workspace_rows, engine.scope
        )
    finally:
        await engine.aclose()
    again = await LocalEngine.open(db, llm=llm, clock=SystemClock())
    try:
        assert (
            await again._core.db.run(again._core.store.workspace_rows, again.scope)
            == first
        )
    finally:
        await again.aclose()
    assert llm.calls == []
    conn = sqlite3.connect(db)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    finally:
        conn.close()
