"""Migrations from a blank database, their bookkeeping, and interrupted runs (T2)."""

from __future__ import annotations

import ast
import re
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
import sqlite_utils

from tenex_tui.engine import migrations
from tenex_tui.engine.migrations import (
    MIGRATIONS,
    InjectedFault,
    applied_migrations,
    apply_migrations,
    pending_migrations,
    statement_counts,
)
from tenex_tui.engine.store_db import open_connection

ENGINE_DIR = Path(migrations.__file__).parent
NAMES = [m.name for m in MIGRATIONS._migrations]

EXPECTED_TABLES = {
    "workspaces",
    "users",
    "threads",
    "messages",
    "events",
    "messages_fts",
    "threads_fts",
    "meta",
    "api_keys",
    "idempotency",
    "knowledge_docs",
    "knowledge_chunks",
    "knowledge_chunks_fts",
    "leads",
    "thread_counts",
}


def _schema(path: Path) -> set[tuple[str, str]]:
    conn = sqlite3.connect(path)
    try:
        return {
            (row[0], row[1])
            for row in conn.execute("SELECT type, name FROM sqlite_master")
            # The bookkeeping table is compared through its rows instead.
            if not row[1].startswith("sqlite_") and "_sqlite_migrations" not in row[1]
        }
    finally:
        conn.close()


def _migrated(path: Path, upto: int) -> None:
    """A reference database with the first `upto` migrations applied."""
    conn = sqlite3.connect(path, isolation_level=None)
    db = sqlite_utils.Database(conn)
    stop = NAMES[upto] if upto < len(NAMES) else None
    MIGRATIONS.apply(db, stop_before=stop)
    conn.close()


def test_names_are_numbered_append_only_and_explained() -> None:
    assert NAMES, "no migrations"
    for index, name in enumerate(NAMES, start=1):
        assert re.fullmatch(rf"m{index:03d}_[a-z0-9_]+", name), name
    source = (ENGINE_DIR / "migrations.py").read_text()
    for name in NAMES:
        # Every migration has a "why" comment naming it.
        assert re.search(rf"^# {name[:4]}: \w", source, re.MULTILINE), name


def test_blank_database_gets_every_table(tmp_path: Path) -> None:
    connection = open_connection(tmp_path / "t.db")
    try:
        assert applied_migrations(connection.db) == NAMES
        assert pending_migrations(connection.db) == []
        tables = set(connection.db.table_names())
        assert tables >= EXPECTED_TABLES
        secret = connection.conn.execute(
            "SELECT value FROM meta WHERE key = 'cursor_secret'"
        ).fetchone()[0]
        assert len(bytes.fromhex(secret)) == 32
        assert apply_migrations(connection.db) == []
    finally:
        connection.close()


def test_each_database_gets_its_own_cursor_secret(tmp_path: Path) -> None:
    secrets = set()
    for name in ("a.db", "b.db"):
        connection = open_connection(tmp_path / name)
        secrets.add(connection.conn.execute("SELECT value FROM meta").fetchone()[0])
        connection.close()
    assert len(secrets) == 2


def test_api_keys_table_has_no_plaintext_column(tmp_path: Path) -> None:
    connection = open_connection(tmp_path / "t.db")
    try:
        columns = set(connection.db["api_keys"].columns_dict)
    finally:
        connection.close()
    assert columns == {
        "prefix",
        "workspace_id",
        "user_id",
        "secret_hash",
        "name",
        "created_at",
        "revoked_at",
    }


def test_threads_and_messages_are_keyed_by_workspace(tmp_path: Path) -> None:
    connection = open_connection(tmp_path / "t.db")
    try:
        for table in ("threads", "messages", "knowledge_docs", "leads"):
            uniques = [
                tuple(index.columns)
                for index in connection.db[table].indexes
                if index.unique
            ]
            assert ("workspace_id", "id") in uniques, table
    finally:
        connection.close()


def _code_calls(path: Path, name: str) -> list[int]:
    tree = ast.parse(path.read_text())
    return [
        node.lineno
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr == name
    ]


def test_no_executescript_anywhere_in_the_store() -> None:
    """`executescript` commits the open transaction first: a migration using it is not
    atomic (T2's static check)."""
    for path in ENGINE_DIR.glob("*.py"):
        if path.name in ("migrations.py",) or path.name.startswith("store"):
            assert _code_calls(path, "executescript") == [], path.name


@pytest.mark.parametrize(
    ("migration", "statement"),
    [
        (number, statement)
        for number, count in enumerate(statement_counts().values(), start=1)
        for statement in range(1, count + 1)
    ],
)
def test_a_migration_interrupted_after_any_statement_leaves_the_previous_version(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, migration: int, statement: int
) -> None:
    path = tmp_path / "t.db"
    monkeypatch.setenv("TENEX_TESTING", "1")
    monkeypatch.setenv("TENEX_FAULTS", f"migration:{migration}:after_stmt:{statement}")
    with pytest.raises(InjectedFault):
        open_connection(path)
    reference = tmp_path / "reference.db"
    _migrated(reference, migration - 1)
    assert _schema(path) == _schema(reference)
    conn = sqlite3.connect(path)
    try:
        rows = (
            conn.execute("SELECT name FROM _sqlite_migrations ORDER BY id").fetchall()
            if migration > 1
            else []
        )
    finally:
        conn.close()
    assert [r[0] for r in rows] == NAMES[: migration - 1]

    monkeypatch.delenv("TENEX_FAULTS")
    connection = open_connection(path)
    try:
        assert applied_migrations(connection.db) == NAMES
    finally:
        connection.close()
    independent = sqlite3.connect(path)
    try:
        assert independent.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    finally:
        independent.close()


@pytest.mark.parametrize(("migration", "statement"), [(2, 3), (4, 8)])
def test_a_process_killed_mid_migration_leaves_the_previous_version(
    tmp_path: Path, migration: int, statement: int
) -> None:
    path = tmp_path / "t.db"
    code = (
        "import sys; from pathlib import Path; "
        "from tenex_tui.engine.store_db import open_connection; "
        "open_connection(Path(sys.argv[1]))"
    )
    env = {
        "TENEX_TESTING": "1",
        "TENEX_FAULTS": f"migration:{migration}:after_stmt:{statement}:exit",
        "PATH": "/usr/bin:/bin",
    }
    done = subprocess.run(
        [sys.executable, "-c", code, str(path)], env=env, timeout=60, check=False
    )
    assert done.returncode == 137
    reference = tmp_path / "reference.db"
    _migrated(reference, migration - 1)
    assert _schema(path) == _schema(reference)
    connection = open_connection(path)
    try:
        assert applied_migrations(connection.db) == NAMES
        assert connection.conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    finally:
        connection.close()


def test_faults_are_ignored_outside_tests(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("TENEX_TESTING", raising=False)
    monkeypatch.setenv("TENEX_FAULTS", "migration:1:after_stmt:1")
    connection = open_connection(tmp_path / "t.db")
    connection.close()


def test_an_older_database_upgrades_and_backfills_thread_counts(tmp_path: Path) -> None:
    """The upgrade path: a database at m007 holding threads gains m008's counters."""
    path = tmp_path / "old.db"
    conn = sqlite3.connect(path, isolation_level=None)
    db = sqlite_utils.Database(conn)
    MIGRATIONS.apply(db, stop_before="m008_create_thread_counts")
    conn.execute("INSERT INTO workspaces VALUES ('ws', '', 'now')")
    conn.execute("INSERT INTO users VALUES ('ws', 'u', '', 'now')")
    for i, (archived, pinned) in enumerate([(0, 0), (0, 0), (0, 1), (1, 0)]):
        conn.execute(
            "INSERT INTO threads (workspace_id, id, user_id, archived, pinned, "
            "created_at, updated_at, sort_at) VALUES ('ws', ?, 'u', ?, ?, 'n', 'n', 'n')",
            (f"thr_{i}", archived, pinned),
        )
    conn.close()
    connection = open_connection(path)
    try:
        assert applied_migrations(connection.db) == NAMES
        counts = connection.conn.execute(
            "SELECT archived, pinned, n FROM thread_counts ORDER BY archived, pinned"
        ).fetchall()
    finally:
        connection.close()
    assert [tuple(r) for r in counts] == [(0, 0, 2), (0, 1, 1), (1, 0, 1)]
