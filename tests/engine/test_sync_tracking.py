"""Change tracking for sync (migration m010): change numbers follow commit order,
deletions leave tombstones, and the feeds read them per scope."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from tenex_tui.core.errors import InvalidCursor, InvalidRequest
from tenex_tui.engine.engine import LocalEngine
from tests.engine.conftest import collect
from tests.support.scripted_llm import ScriptedLLM


def rows(db_path: Path, sql: str) -> list[tuple[object, ...]]:
    conn = sqlite3.connect(db_path)
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


async def test_every_write_takes_the_next_change_number(
    engine: LocalEngine, db_path: Path
) -> None:
    first = await engine.create_thread(title="one")
    second = await engine.create_thread(title="two")
    await engine.update_thread(first.id, title="one, again")
    numbers = dict(rows(db_path, "SELECT id, change_seq FROM threads"))
    assert numbers[second.id] < numbers[first.id]
    counter = rows(db_path, "SELECT seq FROM change_counter")[0][0]
    assert counter == numbers[first.id]
    # A trigger's own update does not count again (no recursion, one number per write).
    await engine.update_thread(first.id, pinned=True)
    assert dict(rows(db_path, "SELECT id, change_seq FROM threads"))[first.id] == (
        counter + 1
    )


async def test_a_reply_moves_its_messages_and_thread_forward(
    engine: LocalEngine, llm: ScriptedLLM, db_path: Path
) -> None:
    thread = await engine.create_thread(title="t")
    llm.enqueue("hello there")
    await collect(engine.send_message(thread.id, "hi"))
    page = await engine.sync_messages()
    assert [(m.role, m.status, m.seq) for m in page.items] == [
        ("user", "complete", 1),
        ("assistant", "complete", 2),
    ]
    threads = await engine.sync_threads()
    assert [t.message_count for t in threads.items] == [2]
    assert (await engine.sync_messages(page.next_cursor)).items == []


async def test_deletions_leave_one_tombstone_each(
    engine: LocalEngine, llm: ScriptedLLM, db_path: Path
) -> None:
    thread = await engine.create_thread(title="t")
    for text in ("a", "b"):
        llm.enqueue(f"reply {text}")
        await collect(engine.send_message(thread.id, text))
    history = (await engine.list_messages(thread.id)).items
    await engine.edit_message(thread.id, history[2].id, "b2")
    assert rows(db_path, "SELECT kind, id FROM tombstones") == [
        ("message", history[3].id)
    ]
    await engine.delete_thread(thread.id)
    # The thread's deletion covers its messages: one more tombstone, not three.
    assert rows(db_path, "SELECT kind, id FROM tombstones ORDER BY seq")[1:] == [
        ("thread", thread.id)
    ]


async def test_rows_from_before_the_migration_come_first_in_num_order(
    engine: LocalEngine, db_path: Path
) -> None:
    created = [await engine.create_thread(title=f"t{i}") for i in range(3)]
    conn = sqlite3.connect(db_path)
    with conn:
        conn.execute("DROP TRIGGER threads_change_update")
        conn.execute("UPDATE threads SET change_seq = 0")  # as an upgraded database
    conn.close()
    page = await engine.sync_threads(limit=2)
    assert [t.id for t in page.items] == [created[0].id, created[1].id]
    rest = await engine.sync_threads(page.next_cursor, limit=2)
    assert [t.id for t in rest.items] == [created[2].id] and not rest.has_more


async def test_feeds_are_per_scope_and_check_their_arguments(
    engine: LocalEngine,
) -> None:
    await engine.create_thread(title="mine")
    other = engine.for_scope("ws_other", "usr_other")
    await engine.ensure_scope("ws_other", "usr_other")
    assert (await other.sync_threads()).items == []
    cursor = (await engine.sync_threads()).next_cursor
    with pytest.raises(InvalidCursor):
        await other.sync_threads(cursor)
    with pytest.raises(InvalidCursor):
        await engine.sync_messages(cursor)
    with pytest.raises(InvalidRequest):
        await engine.sync_threads(limit=0)
