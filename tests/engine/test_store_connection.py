"""Connection invariants (T12), unsafe paths, error mapping, and signed cursors."""

from __future__ import annotations

import logging
import os
import sqlite3
from pathlib import Path

import pytest

from tenex_tui.core.errors import (
    DiskFull,
    InvalidCursor,
    StorageBusy,
    StorageCorrupt,
    StorageError,
    StorageReadOnly,
)
from tenex_tui.engine import store_db
from tenex_tui.engine.cursors import CursorSigner
from tenex_tui.engine.engine import LocalEngine
from tenex_tui.engine.store_db import (
    check_path,
    filesystem_type,
    open_connection,
    storage_error,
)
from tests.engine.conftest import collect
from tests.support.scripted_llm import ScriptedLLM


async def _pragma(engine: LocalEngine, name: str) -> object:
    def read() -> object:
        connection = engine._core.db.connection
        assert connection is not None
        return connection.conn.execute(f"PRAGMA {name}").fetchone()[0]

    return await engine._core.db.run(read)


async def test_engine_connection_pragmas(engine: LocalEngine, db_path: Path) -> None:
    assert await _pragma(engine, "journal_mode") == "wal"
    assert await _pragma(engine, "synchronous") == 1  # NORMAL; FULL for final commits
    assert await _pragma(engine, "foreign_keys") == 1
    assert int(await _pragma(engine, "busy_timeout")) >= 5000  # type: ignore[call-overload]
    independent = sqlite3.connect(db_path)
    try:
        assert independent.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    finally:
        independent.close()


async def test_one_connection_per_engine(
    db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    opened: list[str] = []
    real_connect = sqlite3.connect

    def counting_connect(*args: object, **kwargs: object) -> sqlite3.Connection:
        opened.append(str(args[0]))
        return real_connect(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(store_db.sqlite3, "connect", counting_connect)
    llm = ScriptedLLM()
    engine = await LocalEngine.open(db_path, llm=llm, checkpoint_interval=0.01)
    try:
        thread = await engine.create_thread(title="t")
        llm.enqueue("a", "b")
        await collect(engine.send_message(thread.id, "hi"))
        await engine.list_threads()
        await engine.search("a")
    finally:
        await engine.aclose()
    assert opened == [str(db_path)]


async def test_writes_begin_immediate(engine: LocalEngine) -> None:
    statements: list[str] = []

    def trace(on: bool) -> None:
        connection = engine._core.db.connection
        assert connection is not None
        connection.conn.set_trace_callback(statements.append if on else None)

    await engine._core.db.run(trace, True)
    await engine.create_thread(title="t")
    await engine._core.db.run(trace, False)
    begins = [s for s in statements if s.upper().startswith("BEGIN")]
    assert begins == ["BEGIN IMMEDIATE"]


async def test_sqlite_version_is_logged_with_a_warning_below_the_wal_fix(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="tenex_tui.engine")
    connection = open_connection(tmp_path / "t.db")
    connection.close()
    assert any(sqlite3.sqlite_version in r.getMessage() for r in caplog.records)
    warned = any(
        r.levelno == logging.WARNING and "WAL-reset" in r.getMessage()
        for r in caplog.records
    )
    assert warned == (sqlite3.sqlite_version_info < (3, 51, 3))


def test_a_symlinked_database_is_refused(tmp_path: Path) -> None:
    real = tmp_path / "real.db"
    open_connection(real).close()
    link = tmp_path / "link.db"
    link.symlink_to(real)
    with pytest.raises(StorageError, match="symbolic link"):
        open_connection(link)


def test_a_hard_linked_database_is_refused(tmp_path: Path) -> None:
    real = tmp_path / "real.db"
    open_connection(real).close()
    os.link(real, tmp_path / "second-name.db")
    with pytest.raises(StorageError, match="hard link"):
        open_connection(real)


def test_network_filesystems_are_detected(tmp_path: Path) -> None:
    mounts = tmp_path / "mounts"
    mounts.write_text(
        "overlay / overlay rw 0 0\n"
        f"server:/export {tmp_path}/net nfs4 rw 0 0\n"
        f"//host/share {tmp_path}/with\\040space cifs rw 0 0\n"
    )
    (tmp_path / "net" / "data").mkdir(parents=True)
    (tmp_path / "with space" / "x").mkdir(parents=True)
    assert filesystem_type(tmp_path / "net" / "data", mounts) == "nfs4"
    assert filesystem_type(tmp_path / "with space" / "x", mounts) == "cifs"
    assert filesystem_type(tmp_path / "local", mounts) == "overlay"
    assert filesystem_type(tmp_path, tmp_path / "missing") is None


def test_a_database_on_a_network_filesystem_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(store_db, "filesystem_type", lambda _path: "nfs4")
    with pytest.raises(StorageError, match="network filesystem"):
        check_path(tmp_path / "t.db")


def _error(code: int, text: str = "boom") -> sqlite3.Error:
    error = sqlite3.OperationalError(text)
    error.sqlite_errorcode = code  # type: ignore[attr-defined]
    return error


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        (5, StorageBusy),
        (5 | (2 << 8), StorageBusy),  # SQLITE_BUSY_SNAPSHOT
        (6, StorageBusy),
        (8, StorageReadOnly),
        (11, StorageCorrupt),
        (26, StorageCorrupt),
        (13, DiskFull),
        (10 | (3 << 8), DiskFull),  # SQLITE_IOERR_WRITE
        (10 | (4 << 8), DiskFull),  # SQLITE_IOERR_FSYNC
        (10, StorageError),
        (1, StorageError),
    ],
)
def test_sqlite_errors_map_to_storage_errors(code: int, expected: type) -> None:
    mapped = storage_error(_error(code), Path("/data/tenex.db"))
    assert type(mapped) is expected


def test_busy_and_disk_full_messages_say_what_to_do() -> None:
    busy = storage_error(_error(5), Path("x.db"))
    assert "another tenex-tui process" in busy.message
    full = storage_error(_error(13), Path("x.db"))
    assert "disk full" in full.message
    corrupt = storage_error(_error(26, "file is not a database"), Path("/d/tenex.db"))
    assert "/d/tenex.db" in corrupt.message
    assert "Move it aside" in corrupt.message


def test_cursor_round_trip_and_binding() -> None:
    signer = CursorSigner(b"k" * 32)
    cursor = signer.encode("threads", ("ws", "u"), {"limit": 5}, {"id": "thr_1"})
    assert signer.decode(cursor, "threads", ("ws", "u"), {"limit": 5}) == {
        "id": "thr_1"
    }
    for kind, scope, filters in [
        ("messages", ("ws", "u"), {"limit": 5}),
        ("threads", ("ws", "other"), {"limit": 5}),
        ("threads", ("other", "u"), {"limit": 5}),
        ("threads", ("ws", "u"), {"limit": 6}),
    ]:
        with pytest.raises(InvalidCursor):
            signer.decode(cursor, kind, scope, filters)
    other_secret = CursorSigner(b"j" * 32)
    with pytest.raises(InvalidCursor):
        other_secret.decode(cursor, "threads", ("ws", "u"), {"limit": 5})


def test_a_forged_payload_with_the_old_signature_is_refused() -> None:
    import base64
    import json

    signer = CursorSigner(b"k" * 32)
    cursor = signer.encode("threads", ("ws", "u"), {}, {"id": "thr_1"})
    payload, mac = cursor.split(".")
    body = json.loads(base64.urlsafe_b64decode(payload + "=="))
    body["s"] = ["ws_victim", "u"]
    forged = base64.urlsafe_b64encode(json.dumps(body).encode()).rstrip(b"=").decode()
    with pytest.raises(InvalidCursor):
        signer.decode(f"{forged}.{mac}", "threads", ("ws_victim", "u"), {})
