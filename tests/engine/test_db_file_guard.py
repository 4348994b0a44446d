"""T10: the database file unlinked, moved or replaced while the engine runs.

SQLite keeps writing to an unlinked file without complaint (and everything written
then is gone when the process exits), so the engine checks before every write
transaction that its path still names the file it opened, and refuses with a clear
`StorageGone` otherwise. Reads keep working, so what is on screen can be exported.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from tenex_tui.core.errors import StorageGone
from tenex_tui.engine.engine import LocalEngine
from tenex_tui.engine.store_db import open_connection
from tests.engine.conftest import collect, within
from tests.support.scripted_llm import ScriptedLLM

REMOVED = "the database file was removed — new messages would be lost"
REPLACED = "the database file was replaced — new messages would be lost"
WRITES = ("BEGIN IMMEDIATE", "INSERT", "UPDATE", "DELETE", "COMMIT")


def _titles_in(path: Path) -> list[str]:
    conn = sqlite3.connect(path)
    try:
        return [r[0] for r in conn.execute("SELECT title FROM threads ORDER BY num")]
    finally:
        conn.close()


@asynccontextmanager
async def _traced(engine: LocalEngine) -> AsyncIterator[list[str]]:
    """Every statement the engine's connection runs meanwhile."""
    statements: list[str] = []

    def trace(on: bool) -> None:
        # On the DB thread: the connection may only be touched there.
        connection = engine._core.db.connection
        if connection is not None:
            connection.conn.set_trace_callback(statements.append if on else None)

    await engine._core.db.run(trace, True)
    try:
        yield statements
    finally:
        if not engine._core.closed:
            await engine._core.db.run(trace, False)


def _writes(statements: list[str]) -> list[str]:
    return [s for s in statements if s.lstrip().upper().startswith(WRITES)]


async def test_an_unlinked_database_refuses_the_next_write(
    engine: LocalEngine, db_path: Path
) -> None:
    kept = await engine.create_thread(title="kept")
    os.unlink(db_path)
    async with _traced(engine) as statements:
        with pytest.raises(StorageGone) as caught:
            await engine.create_thread(title="lost")
        with pytest.raises(StorageGone):
            await engine.update_thread(kept.id, title="renamed")
        # Reads still work: what the user sees can be exported before restarting.
        page = await engine.list_threads()
    assert REMOVED in caught.value.message.lower()
    assert str(db_path) in caught.value.message
    assert caught.value.code == "storage_gone"
    assert [t.title for t in page.items] == ["kept"]
    assert _writes(statements) == []


async def test_sending_after_the_file_is_gone_fails_before_saving_anything(
    engine: LocalEngine, db_path: Path, llm: ScriptedLLM
) -> None:
    thread = await engine.create_thread(title="t")
    os.unlink(db_path)
    llm.enqueue("never asked")
    async with _traced(engine) as statements:
        with pytest.raises(StorageGone) as caught:
            await collect(engine.send_message(thread.id, "typed text"))
    assert REMOVED in caught.value.message.lower()
    assert _writes(statements) == []
    assert llm.calls == []  # the model was not called for a reply nobody can keep


async def test_a_moved_database_is_left_as_it_was(
    engine: LocalEngine, db_path: Path
) -> None:
    await engine.create_thread(title="before the move")
    moved = db_path.with_name("moved.db")
    os.rename(db_path, moved)
    with pytest.raises(StorageGone) as caught:
        await engine.create_thread(title="after the move")
    assert REMOVED in caught.value.message.lower()
    await engine.aclose()
    # SQLite leaves the WAL beside the old name (it will not checkpoint into a moved
    # file), so putting the file back restores everything written before the move,
    # and nothing after it.
    assert not db_path.exists()
    os.rename(moved, db_path)
    assert _titles_in(db_path) == ["before the move"]


async def test_a_file_put_in_its_place_is_not_written(db_path: Path) -> None:
    engine = await LocalEngine.open(db_path)
    try:
        await engine.create_thread(title="original")

        def checkpoint() -> None:
            connection = engine._core.db.connection
            assert connection is not None
            connection.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")

        # An empty WAL, so the file put in its place is read as it is.
        await engine._core.db.run(checkpoint)
        # Another file takes the name (a restore from backup, a sync tool).
        other = db_path.with_name("other.db")
        shutil.copy(db_path, other)
        conn = sqlite3.connect(other)
        conn.execute("UPDATE threads SET title = 'replacement'")
        conn.commit()
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        conn.close()
        os.replace(other, db_path)
        with pytest.raises(StorageGone) as caught:
            await engine.create_thread(title="into which file?")
        assert REPLACED in caught.value.message.lower()
    finally:
        await engine.aclose()
    assert _titles_in(db_path) == ["replacement"]


async def test_a_reply_streaming_when_the_file_goes_writes_nothing_more(
    engine: LocalEngine, db_path: Path, llm: ScriptedLLM
) -> None:
    thread = await engine.create_thread(title="t")
    reply = llm.enqueue("saved ", "after the unlink", hold_at=(1,))
    stream = engine.send_message(thread.id, "go")
    await within(anext(stream))
    await within(reply.held(1).wait())
    await engine._core.db.run(lambda: None)  # let any checkpoint in flight land
    os.unlink(db_path)
    async with _traced(engine) as statements:
        reply.release(1)
        events = await collect(stream)
        await engine.aclose()
    assert _writes(statements) == []
    # The follower is told the truth: not "completed", but failed, and why.
    last = events[-1]
    assert last.type == "message.failed"
    assert last.status == "error"
    assert last.error is not None
    assert "could not be saved" in last.error.lower()
    assert REMOVED in last.error.lower()


def test_writes_go_on_while_the_file_is_untouched(
    db_path: Path,
) -> None:
    connection = open_connection(db_path)
    try:
        assert connection.identity is not None
        for n in range(3):
            connection.check_file()
            with connection.write() as conn:
                conn.execute(
                    "INSERT INTO workspaces (id, name, created_at) VALUES (?, '', '')",
                    (f"ws_{n}",),
                )
        shutil.copy(db_path, db_path.with_name("copy.db"))  # a copy is another file
        connection.check_file()
    finally:
        connection.close()


def test_a_read_only_connection_has_nothing_to_check(db_path: Path) -> None:
    open_connection(db_path).close()
    connection = open_connection(db_path, read_only=True)
    try:
        os.unlink(db_path)
        connection.check_file()  # no identity kept: it never writes
        assert connection.identity is None
    finally:
        connection.close()
