"""API keys and idempotency records stored for the HTTP server; scopes and backups."""

from __future__ import annotations

import sqlite3
from datetime import timedelta
from pathlib import Path

import pytest

from tenex_tui.core.errors import InvalidRequest
from tenex_tui.engine.clock import FixedClock
from tenex_tui.engine.engine import LocalEngine


async def test_api_keys_create_find_list_revoke(engine: LocalEngine) -> None:
    record = await engine.create_api_key(
        workspace_id="ws_a",
        user_id="usr_a",
        prefix="abcd1234",
        secret_hash="h1",
        name="ci",
    )
    assert (record.prefix, record.workspace_id, record.user_id) == (
        "abcd1234",
        "ws_a",
        "usr_a",
    )
    assert (record.secret_hash, record.name, record.revoked_at) == ("h1", "ci", None)
    await engine.create_api_key(
        workspace_id="ws_b", user_id="usr_b", prefix="efgh5678", secret_hash="h2"
    )
    assert await engine.find_api_key("abcd1234") == record
    assert await engine.find_api_key("nope") is None
    assert [k.prefix for k in await engine.list_api_keys()] == ["abcd1234", "efgh5678"]
    assert [k.prefix for k in await engine.list_api_keys("ws_b")] == ["efgh5678"]
    assert await engine.revoke_api_key("abcd1234")
    assert not await engine.revoke_api_key("abcd1234")
    assert not await engine.revoke_api_key("nope")
    revoked = await engine.find_api_key("abcd1234")
    assert revoked is not None and revoked.revoked_at is not None
    with pytest.raises(InvalidRequest):
        await engine.create_api_key(
            workspace_id="ws_a", user_id="usr_a", prefix="abcd1234", secret_hash="h3"
        )


async def test_idempotency_first_result_wins_per_scope(engine: LocalEngine) -> None:
    assert await engine.get_idempotency("k1") is None
    await engine.put_idempotency("k1", request_hash="r1", status=201, body='{"id": 1}')
    await engine.put_idempotency("k1", request_hash="r2", status=500, body="later")
    record = await engine.get_idempotency("k1")
    assert record is not None
    assert (record.request_hash, record.status, record.body) == ("r1", 201, '{"id": 1}')
    assert (record.workspace_id, record.user_id) == ("ws_local", "usr_local")
    assert await engine.for_scope("ws_other", "usr_local").get_idempotency("k1") is None
    assert await engine.for_scope("ws_local", "usr_other").get_idempotency("k1") is None


async def test_idempotency_records_expire_after_a_day(
    engine: LocalEngine, clock: FixedClock
) -> None:
    await engine.put_idempotency("k", request_hash="r", status=200, body="old")
    clock.advance(timedelta(hours=25))
    assert await engine.get_idempotency("k") is None
    await engine.put_idempotency("k", request_hash="r", status=200, body="new")
    record = await engine.get_idempotency("k")
    assert record is not None and record.body == "new"


async def test_ensure_scope_names_workspace(engine: LocalEngine) -> None:
    await engine.ensure_scope(
        "ws_team", "usr_me", workspace_name="Team", user_name="Me"
    )
    scoped = engine.for_scope("ws_team", "usr_me")
    assert (await scoped.info()).workspace == "Team"
    assert (await engine.info()).workspace == "Local"
    await scoped.aclose()  # a view does not close the engine
    assert (await engine.list_threads()).items == []


async def test_backup_is_a_consistent_single_file(
    engine: LocalEngine, tmp_path: Path
) -> None:
    thread = await engine.create_thread(title="keep me")
    dest = tmp_path / "backup.db"
    await engine.backup(dest)
    conn = sqlite3.connect(dest)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
        titles = conn.execute("SELECT id, title FROM threads").fetchall()
    finally:
        conn.close()
    assert titles == [(thread.id, "keep me")]
    with pytest.raises(InvalidRequest):
        await engine.backup(engine.path)
