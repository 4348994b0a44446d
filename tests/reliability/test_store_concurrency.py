"""Several writers: concurrent first start (T3), the deferred-upgrade trap (T4), and a
lock held past the busy timeout (T5)."""

from __future__ import annotations

import select
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tenex_tui.core.errors import StorageBusy
from tenex_tui.engine.engine import LocalEngine
from tenex_tui.engine.migrations import MIGRATIONS
from tenex_tui.engine.store_db import open_connection
from tests.engine.conftest import collect, within
from tests.support.scripted_llm import ScriptedLLM

ROOT = Path(__file__).resolve().parents[2]

STARTER = """
import sys, asyncio
from pathlib import Path
path = Path(sys.argv[1])
if sys.argv[2] == "engine":
    from tenex_tui.engine.engine import LocalEngine
else:
    from tenex_tui.engine.store_db import open_connection
print("ready", flush=True)
sys.stdin.readline()
if sys.argv[2] == "engine":
    async def main():
        engine = await LocalEngine.open(path)
        await engine.aclose()
    asyncio.run(main())
else:
    open_connection(path).close()
print("done", flush=True)
"""


def _read_line(proc: subprocess.Popen[bytes], deadline: float) -> str:
    assert proc.stdout is not None
    ready, _, _ = select.select(
        [proc.stdout], [], [], max(0.0, deadline - time.monotonic())
    )
    assert ready, "child did not answer in time"
    return proc.stdout.readline().decode().strip()


def _start_together(
    db: Path, how: str, count: int = 4
) -> list[subprocess.CompletedProcess[bytes]]:
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", STARTER, str(db), how],
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for _ in range(count)
    ]
    deadline = time.monotonic() + 60
    for proc in procs:
        assert _read_line(proc, deadline) == "ready"
    # The barrier: every child is imported and waiting; release them at once.
    for proc in procs:
        assert proc.stdin is not None
        proc.stdin.write(b"go\n")
        proc.stdin.flush()
    results = []
    for proc in procs:
        out, err = proc.communicate(timeout=60)
        results.append(
            subprocess.CompletedProcess(proc.args, proc.returncode, out, err)
        )
    return results


@pytest.mark.parametrize(("how", "repeats"), [("store", 8), ("engine", 2)])
def test_concurrent_first_start_applies_each_migration_once(
    tmp_path: Path, how: str, repeats: int
) -> None:
    names = [m.name for m in MIGRATIONS._migrations]
    for attempt in range(repeats):
        db = tmp_path / f"fresh-{attempt}.db"
        for result in _start_together(db, how):
            assert result.returncode == 0, result.stderr.decode()
            assert b"database is locked" not in result.stderr
        conn = sqlite3.connect(db)
        try:
            rows = conn.execute(
                "SELECT name, count(*) FROM _sqlite_migrations GROUP BY name ORDER BY min(id)"
            ).fetchall()
            assert rows == [(name, 1) for name in names]
            assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
            if how == "engine":
                assert (
                    conn.execute("SELECT count(*) FROM workspaces").fetchone()[0] == 1
                )
        finally:
            conn.close()


def _read_then_write(
    db: Path, begin: str
) -> tuple[BaseException | None, BaseException | None]:
    """The V6 recipe: A reads in a transaction, B commits a write, then A writes."""
    a = sqlite3.connect(db, isolation_level=None, timeout=5)
    a_error: BaseException | None = None
    b_error: list[BaseException] = []
    b_done = threading.Event()

    def writer_b() -> None:
        b = sqlite3.connect(db, isolation_level=None, timeout=5)
        try:
            b.execute("BEGIN IMMEDIATE")
            b.execute("INSERT INTO meta (key, value) VALUES ('b', 'b')")
            b.execute("COMMIT")
        except BaseException as exc:
            b_error.append(exc)
        finally:
            b.close()
            b_done.set()

    try:
        a.execute(begin)
        a.execute("SELECT count(*) FROM meta").fetchone()
        thread = threading.Thread(target=writer_b)
        thread.start()
        # With BEGIN IMMEDIATE, B must wait for A; with a deferred BEGIN it commits now.
        b_done.wait(0.3)
        try:
            a.execute("INSERT INTO meta (key, value) VALUES ('a', 'a')")
            a.execute("COMMIT")
        except sqlite3.OperationalError as exc:
            a_error = exc
            a.execute("ROLLBACK")
        thread.join(10)
    finally:
        a.close()
    return a_error, (b_error[0] if b_error else None)


def test_begin_immediate_waits_instead_of_failing(tmp_path: Path) -> None:
    db = tmp_path / "t.db"
    open_connection(db).close()
    a_error, b_error = _read_then_write(db, "BEGIN IMMEDIATE")
    assert a_error is None and b_error is None
    conn = sqlite3.connect(db)
    try:
        keys = {r[0] for r in conn.execute("SELECT key FROM meta")}
    finally:
        conn.close()
    assert {"a", "b"} <= keys


def test_plain_begin_fails_at_once_proving_the_test_can_see_the_bug(
    tmp_path: Path,
) -> None:
    db = tmp_path / "t.db"
    open_connection(db).close()
    started = time.monotonic()
    a_error, b_error = _read_then_write(db, "BEGIN")
    assert b_error is None
    assert isinstance(a_error, sqlite3.OperationalError)
    assert "locked" in str(a_error)
    assert time.monotonic() - started < 4  # it did not wait out the busy timeout


def test_the_store_write_path_reads_then_writes_under_begin_immediate(
    tmp_path: Path,
) -> None:
    """The repository's own write (`StoreConnection.write`) in the same V6 race."""
    db = tmp_path / "t.db"
    connection = open_connection(db)
    b_done = threading.Event()
    errors: list[BaseException] = []

    def writer_b() -> None:
        try:
            b = sqlite3.connect(db, isolation_level=None, timeout=5)
            b.execute("BEGIN IMMEDIATE")
            b.execute("INSERT INTO meta (key, value) VALUES ('b', 'b')")
            b.execute("COMMIT")
            b.close()
        except BaseException as exc:
            errors.append(exc)
        finally:
            b_done.set()

    try:
        with connection.write() as conn:
            conn.execute("SELECT count(*) FROM meta").fetchone()
            thread = threading.Thread(target=writer_b)
            thread.start()
            assert not b_done.wait(0.3)  # B waits for our write lock
            conn.execute("INSERT INTO meta (key, value) VALUES ('a', 'a')")
        thread.join(10)
    finally:
        connection.close()
    assert errors == []


HOLDER = """
import sqlite3, sys
conn = sqlite3.connect(sys.argv[1], isolation_level=None)
conn.execute("BEGIN IMMEDIATE")
conn.execute("INSERT INTO meta (key, value) VALUES ('holder', 'x')")
print("locked", flush=True)
sys.stdin.readline()
conn.execute("COMMIT")
print("released", flush=True)
"""


class LockHolder:
    """Another process holding the write lock until told to let go."""

    def __init__(self, db: Path) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-c", HOLDER, str(db)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )
        assert _read_line(self.proc, time.monotonic() + 30) == "locked"

    def release(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(b"go\n")
        self.proc.stdin.flush()
        assert _read_line(self.proc, time.monotonic() + 30) == "released"
        self.proc.wait(10)


async def test_a_lock_held_past_the_busy_timeout_is_storage_busy(
    tmp_path: Path,
) -> None:
    db = tmp_path / "t.db"
    llm = ScriptedLLM()
    engine = await LocalEngine.open(
        db, llm=llm, busy_timeout_ms=200, checkpoint_interval=0.01
    )
    try:
        thread = await engine.create_thread(title="t")
        holder = LockHolder(db)
        try:
            with pytest.raises(StorageBusy, match="another tenex-tui process"):
                await collect(engine.send_message(thread.id, "hello"))
            with pytest.raises(StorageBusy):
                await engine.update_thread(thread.id, title="renamed")
            # Reads still work while another process writes.
            assert (await engine.get_thread(thread.id)).title == "t"
        finally:
            holder.release()
        assert llm.calls == []
        assert (await engine.list_messages(thread.id)).items == []
        llm.enqueue("now it works")
        events = await collect(engine.send_message(thread.id, "hello"))
        assert events[-1].status == "complete"
    finally:
        await engine.aclose()


async def test_checkpoints_blocked_by_a_lock_are_kept_and_flushed_later(
    tmp_path: Path,
) -> None:
    db = tmp_path / "t.db"
    llm = ScriptedLLM()
    engine = await LocalEngine.open(
        db, llm=llm, busy_timeout_ms=100, checkpoint_interval=0.01
    )
    try:
        thread = await engine.create_thread(title="t")
        reply = llm.enqueue("x" * 5000, "tail", hold_at=(0, 1, 2))
        stream = engine.send_message(thread.id, "go")
        started = await within(anext(stream))
        live = engine._core.replies[(engine.scope.workspace_id, started.message_id)]
        await within(reply.held(0).wait())
        holder = LockHolder(db)
        try:
            reply.release(0)
            await within(reply.held(1).wait())
            assert not await live.checkpoint()  # busy: the data stays pending
            assert isinstance(live.save_error, StorageBusy)
        finally:
            holder.release()
        assert await live.checkpoint()
        assert live.save_error is None
        message = await engine.get_message(thread.id, started.message_id)
        assert message.content == "x" * 5000
        reply.release(1)
        await within(reply.held(2).wait())
        reply.release(2)
        events = await collect(stream)
        assert events[-1].status == "complete"
        final = await engine.get_message(thread.id, started.message_id)
        assert final.content == "x" * 5000 + "tail"
        replay = await collect(engine.stream_events(thread.id, started.message_id))
        assert [e.id for e in replay] == [started.id, *[e.id for e in events]]
    finally:
        await engine.aclose()
