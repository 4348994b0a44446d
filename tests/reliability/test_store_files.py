"""The database file in bad shape: read-only (T7), corrupt (T8), backed up while a reply
streams (T9), and a long reader pinning the WAL (T11)."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import random
import shutil
import sqlite3
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from tenex_tui.core.errors import StorageCorrupt, StorageError, StorageReadOnly
from tenex_tui.engine.clock import SystemClock
from tenex_tui.engine.engine import LocalEngine
from tests.engine.conftest import collect, within
from tests.support.scripted_llm import ScriptedLLM

ROOT = Path(__file__).resolve().parents[2]


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _wal_bytes(db: Path) -> int:
    wal = Path(f"{db}-wal")
    return wal.stat().st_size if wal.exists() else 0


def _exists(path: Path) -> bool:
    return path.exists()


async def _populated(db: Path, threads: int = 3) -> None:
    llm = ScriptedLLM()
    engine = await LocalEngine.open(db, llm=llm, clock=SystemClock())
    try:
        for i in range(threads):
            thread = await engine.create_thread(title=f"thread {i}")
            llm.enqueue("reply " * 200)
            await collect(engine.send_message(thread.id, f"question {i} " * 100))
    finally:
        await engine.aclose()


# -- T7 read-only ------------------------------------------------------------------


async def test_read_only_open_reads_and_refuses_writes(tmp_path: Path) -> None:
    db = tmp_path / "t.db"
    await _populated(db)
    before = _digest(db)
    llm = ScriptedLLM()
    engine = await LocalEngine.open(db, llm=llm, read_only=True)
    try:
        assert (await engine.info()).read_only
        page = await engine.list_threads()
        assert len(page.items) == 3
        assert (await engine.search("question")).items
        thread_id = page.items[0].id
        with pytest.raises(StorageReadOnly):
            await engine.create_thread(title="nope")
        with pytest.raises(StorageReadOnly):
            await engine.update_thread(thread_id, pinned=True)
        with pytest.raises(StorageReadOnly):
            await collect(engine.send_message(thread_id, "hello"))
        assert llm.calls == []
    finally:
        await engine.aclose()
    assert _digest(db) == before


async def test_read_only_engine_sees_another_writers_commits(tmp_path: Path) -> None:
    db = tmp_path / "t.db"
    writer = await LocalEngine.open(db, clock=SystemClock())
    try:
        reader = await LocalEngine.open(db, read_only=True)
        try:
            created = await writer.create_thread(title="fresh")
            assert [t.id for t in (await reader.list_threads()).items] == [created.id]
        finally:
            await reader.aclose()
    finally:
        await writer.aclose()


async def test_read_only_cannot_create_or_upgrade(tmp_path: Path) -> None:
    with pytest.raises(StorageReadOnly):
        await LocalEngine.open(tmp_path / "missing.db", read_only=True)
    old = tmp_path / "old.db"
    conn = sqlite3.connect(old)
    conn.execute("CREATE TABLE unrelated (x)")
    conn.close()
    with pytest.raises(StorageReadOnly, match="needs upgrading"):
        await LocalEngine.open(old, read_only=True)


CHILD_READ_ONLY = """
import asyncio, json, sys
from tenex_tui.core.errors import StorageReadOnly
from tenex_tui.engine.engine import LocalEngine

async def main():
    engine = await LocalEngine.open(sys.argv[1])
    info = await engine.info()
    threads = len((await engine.list_threads()).items)
    try:
        await engine.create_thread(title="x")
        refused = False
    except StorageReadOnly:
        refused = True
    await engine.aclose()
    print(json.dumps({"read_only": info.read_only, "threads": threads, "refused": refused}))

asyncio.run(main())
"""


def test_chmod_read_only_file_and_folder_open_read_only() -> None:
    """`chmod 0444` on the file and `0555` on its folder (T7), as an ordinary user."""
    folder = Path(tempfile.mkdtemp(prefix="tenex-t7-", dir="/tmp"))
    try:
        db = folder / "data" / "t.db"
        asyncio.run(_populated(db, threads=2))
        command = [sys.executable, "-c", CHILD_READ_ONLY, str(db)]
        if os.geteuid() == 0:
            # Root ignores file modes: run the engine as `nobody`.
            setpriv = shutil.which("setpriv")
            if setpriv is None:
                pytest.skip("running as root without setpriv to drop privileges")
            nobody = 65534
            for path in (folder, db.parent, *db.parent.iterdir()):
                os.chown(path, nobody, nobody)
            command = [
                setpriv,
                f"--reuid={nobody}",
                f"--regid={nobody}",
                "--clear-groups",
                *command,
            ]
        folder.chmod(0o755)
        for path in db.parent.iterdir():
            path.chmod(0o444)
        db.parent.chmod(0o555)
        before = _digest(db)
        done = subprocess.run(
            command,
            capture_output=True,
            timeout=60,
            check=False,
            env={"PATH": "/usr/bin:/bin", "HOME": str(folder)},
            cwd=str(folder),
        )
        assert done.returncode == 0, done.stderr.decode()
        assert json.loads(done.stdout) == {
            "read_only": True,
            "threads": 2,
            "refused": True,
        }
        assert _digest(db) == before
    finally:
        for path in (folder, *folder.rglob("*")):
            if path.is_dir():
                path.chmod(0o755)
        shutil.rmtree(folder, ignore_errors=True)


# -- T8 corrupt ----------------------------------------------------------------------


def _garbage(db: Path) -> None:
    db.write_bytes(random.Random(8).randbytes(64 * 1024))


def _half(db: Path) -> None:
    data = db.read_bytes()
    db.write_bytes(data[: len(data) // 2])


def _zero_header(db: Path) -> None:
    data = bytearray(db.read_bytes())
    data[:100] = bytes(100)
    db.write_bytes(bytes(data))


@pytest.mark.parametrize("damage", [_garbage, _half, _zero_header])
async def test_a_damaged_file_is_reported_and_never_overwritten(
    tmp_path: Path, damage: object
) -> None:
    db = tmp_path / "t.db"
    await _populated(db, threads=8)
    damage(db)  # type: ignore[operator]
    before = _digest(db)
    with pytest.raises(StorageCorrupt) as caught:
        await LocalEngine.open(db)
    message = caught.value.message
    assert str(db) in message
    assert "Move it aside" in message
    assert _digest(db) == before
    assert _wal_bytes(db) == 0


WAL_WRITER = """
import os, sqlite3, sys
conn = sqlite3.connect(sys.argv[1], isolation_level=None)
conn.execute("PRAGMA wal_autocheckpoint=0")
for i in range(int(sys.argv[2])):
    conn.execute("BEGIN IMMEDIATE")
    conn.execute("INSERT INTO meta (key, value) VALUES (?, ?)", (f"k{i}", "v" * 3000))
    conn.execute("COMMIT")
os._exit(0)  # no close: the WAL keeps its frames
"""


def _tear_last_wal_frame(db: Path) -> None:
    subprocess.run(
        [sys.executable, "-c", WAL_WRITER, str(db), "5"], check=True, timeout=60
    )
    wal = Path(f"{db}-wal")
    size = wal.stat().st_size
    assert size > 0
    with wal.open("r+b") as handle:
        handle.truncate(size - 1000)  # cut the last frame in half


async def test_a_torn_wal_frame_loses_only_the_torn_commit(tmp_path: Path) -> None:
    db = tmp_path / "t.db"
    await _populated(db, threads=1)
    _tear_last_wal_frame(db)
    engine = await LocalEngine.open(db)
    try:
        assert len((await engine.list_threads()).items) == 1

        def check() -> tuple[str, int]:
            connection = engine._core.db.connection
            assert connection is not None
            ok = connection.conn.execute("PRAGMA integrity_check").fetchone()[0]
            keys = connection.conn.execute(
                "SELECT count(*) FROM meta WHERE key LIKE 'k%'"
            ).fetchone()[0]
            return ok, keys

        ok, keys = await engine._core.db.run(check)
        assert ok == "ok"
        assert 0 < keys < 5
    finally:
        await engine.aclose()


# -- T9 backup -------------------------------------------------------------------------


async def test_backup_while_a_reply_streams(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_file_copies(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("a live database must never be copied as a file")

    for name in ("copy", "copy2", "copyfile", "copyfileobj"):
        monkeypatch.setattr(shutil, name, no_file_copies)
    db = tmp_path / "t.db"
    llm = ScriptedLLM()
    engine = await LocalEngine.open(db, llm=llm, checkpoint_interval=0.01)
    try:
        earlier = await engine.create_thread(title="committed before")
        thread = await engine.create_thread(title="streaming")
        reply = llm.enqueue("x" * 5000, "tail", hold_at=(1,))
        stream = engine.send_message(thread.id, "go")
        started = await within(anext(stream))
        await within(reply.held(1).wait())
        await engine._core.replies[
            (engine.scope.workspace_id, started.message_id)
        ].checkpoint()
        dest = tmp_path / "backups" / "out.db"
        dest.parent.mkdir()
        await engine.backup(dest)
        reply.release(1)
        await collect(stream)
    finally:
        await engine.aclose()
    conn = sqlite3.connect(dest)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        titles = {r[0] for r in conn.execute("SELECT title FROM threads")}
        assert titles == {earlier.title, thread.title}
        row = conn.execute(
            "SELECT status, content FROM messages WHERE id = ?", (started.message_id,)
        ).fetchone()
        assert row == ("streaming", "x" * 5000)  # committed WAL content is in the copy
    finally:
        conn.close()
    assert not _exists(Path(f"{dest}.partial"))


# -- T11 long reader --------------------------------------------------------------------


async def test_a_long_reader_does_not_stop_the_wal_from_shrinking_afterwards(
    tmp_path: Path,
) -> None:
    db = tmp_path / "t.db"
    llm = ScriptedLLM()
    engine = await LocalEngine.open(db, llm=llm, checkpoint_interval=0.005)
    try:
        thread = await engine.create_thread(title="t")
        reader = sqlite3.connect(db, isolation_level=None)
        reader.execute("BEGIN")
        reader.execute("SELECT count(*) FROM messages").fetchone()
        llm.enqueue(*["delta " for _ in range(10_000)])
        events = await within(collect(engine.send_message(thread.id, "go")))
        assert events[-1].status == "complete"
        grown = _wal_bytes(db)
        reader.execute("COMMIT")
        reader.close()

        def truncate() -> tuple[int, int, int]:
            connection = engine._core.db.connection
            assert connection is not None
            row = connection.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
            return tuple(row)  # type: ignore[return-value]

        busy, _log, _done = await engine._core.db.run(truncate)
        assert busy == 0
        assert 0 == _wal_bytes(db) < grown
        message = await engine.get_message(thread.id, events[0].message_id)
        assert message.content == "delta " * 10_000
    finally:
        await engine.aclose()


async def test_a_store_call_that_leaves_a_transaction_open_is_rolled_back(
    tmp_path: Path,
) -> None:
    engine = await LocalEngine.open(tmp_path / "t.db")
    try:

        def leaky() -> None:
            connection = engine._core.db.connection
            assert connection is not None
            connection.conn.execute("BEGIN")
            connection.conn.execute("SELECT 1").fetchone()

        with pytest.raises(StorageError, match="left a transaction open"):
            await engine._core.db.run(leaky)

        def in_transaction() -> bool:
            connection = engine._core.db.connection
            assert connection is not None
            return connection.conn.in_transaction

        assert not await engine._core.db.run(in_transaction)
        assert (await engine.create_thread(title="still fine")).title == "still fine"
    finally:
        await engine.aclose()
