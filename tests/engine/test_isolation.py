"""Multi-tenant isolation at the engine (test-plan T55–T60).

Workspaces A and B; users A1 and A2 in A, B1 in B. Every operation tried with another
owner's ids is `NotFound`, word for word the error for an id that does not exist, and
changes nothing; lists, search, cursors and event ids never cross scopes.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tenex_tui.core.backend import ChatBackend
from tenex_tui.core.errors import InvalidCursor, NotFound, TenexError
from tenex_tui.engine.clock import FixedClock
from tenex_tui.engine.engine import LocalEngine
from tests.engine.conftest import collect, within
from tests.support.scripted_llm import ScriptedLLM, ScriptedReply


@dataclass
class Owner:
    """One user's engine view and the ids of their data."""

    engine: LocalEngine
    thread_id: str
    user_message_id: str
    reply_id: str
    event_id: str


@dataclass
class World:
    a1: Owner
    a2: Owner
    b1: Owner
    missing: Owner
    llm: ScriptedLLM
    live: ScriptedReply
    live_stream: AsyncIterator[Any]


async def _owner(engine: LocalEngine, llm: ScriptedLLM, text: str) -> Owner:
    thread = await engine.create_thread(title=f"{text} thread")
    llm.enqueue(f"{text} reply")
    events = await collect(engine.send_message(thread.id, f"{text} question"))
    assert events[0].user_message is not None
    return Owner(
        engine, thread.id, events[0].user_message.id, events[0].message_id, events[1].id
    )


@pytest.fixture
async def world(db_path: Path) -> AsyncIterator[World]:
    llm = ScriptedLLM()
    root = await LocalEngine.open(
        db_path,
        llm=llm,
        clock=FixedClock(),
        workspace_id="ws_a",
        user_id="usr_a1",
        checkpoint_interval=0.01,
    )
    a2_view = root.for_scope("ws_a", "usr_a2")
    b1_view = root.for_scope("ws_b", "usr_b1")
    await root.ensure_scope("ws_a", "usr_a2")
    await root.ensure_scope("ws_b", "usr_b1")
    a1 = await _owner(root, llm, "alpha")
    a2 = await _owner(a2_view, llm, "alpha")
    b1 = await _owner(b1_view, llm, "alpha")
    # An active stream in B, held mid-reply for the whole test.
    live = llm.enqueue("b live ", "tail", hold_at=(1,))
    live_stream = b1_view.send_message(b1.thread_id, "alpha streaming")
    started = await within(anext(live_stream))
    await within(live.held(1).wait())
    # Checkpoint what it streamed so far, so B's rows hold still during the test.
    await root._core.replies[("ws_b", started.message_id)].checkpoint()
    b1_live = Owner(
        b1_view, b1.thread_id, b1.user_message_id, started.message_id, started.id
    )
    missing = Owner(
        root, "thr_missing", "msg_missing_u", "msg_missing", "msg_missing.1"
    )
    yield World(a1, a2, b1_live, missing, llm, live, live_stream)
    live.release(1)
    await collect(live_stream)
    await root.aclose()


Operation = Callable[[LocalEngine, Owner], Awaitable[object]]

# Every ChatBackend operation that takes someone's ids. A new protocol method with a
# thread or message id and no entry here fails `test_the_matrix_covers_every_operation`.
OPERATIONS: dict[str, Operation] = {
    "get_thread": lambda e, o: e.get_thread(o.thread_id),
    "update_thread": lambda e, o: e.update_thread(o.thread_id, title="hijacked"),
    "mark_read": lambda e, o: e.mark_read(o.thread_id),
    "delete_thread": lambda e, o: e.delete_thread(o.thread_id),
    "list_messages": lambda e, o: e.list_messages(o.thread_id),
    "get_message": lambda e, o: e.get_message(o.thread_id, o.reply_id),
    "send_message": lambda e, o: collect(e.send_message(o.thread_id, "injected")),
    "regenerate": lambda e, o: collect(e.regenerate(o.thread_id)),
    "edit_message": lambda e, o: e.edit_message(o.thread_id, o.user_message_id, "x"),
    "stream_events": lambda e, o: collect(e.stream_events(o.thread_id, o.reply_id)),
    "cancel_message": lambda e, o: e.cancel_message(o.thread_id, o.reply_id),
}

# The same operations with the attacker's own thread and the victim's message id.
MESSAGE_IN_OWN_THREAD: dict[
    str, Callable[[LocalEngine, str, Owner], Awaitable[object]]
] = {
    "get_message": lambda e, t, o: e.get_message(t, o.reply_id),
    "edit_message": lambda e, t, o: e.edit_message(t, o.user_message_id, "x"),
    "stream_events": lambda e, t, o: collect(e.stream_events(t, o.reply_id)),
    "cancel_message": lambda e, t, o: e.cancel_message(t, o.reply_id),
}


def test_the_matrix_covers_every_operation() -> None:
    with_ids = {
        name
        for name, member in inspect.getmembers(ChatBackend)
        if callable(member)
        and not name.startswith("_")
        and {"thread_id", "message_id"} & set(inspect.signature(member).parameters)
    }
    assert with_ids == set(OPERATIONS)


async def _rows(engine: LocalEngine, workspace: str) -> object:
    scoped = engine.for_scope(workspace, "any")
    return await engine._core.db.run(engine._core.store.workspace_rows, scoped.scope)


async def _error(call: Awaitable[object]) -> TenexError:
    with pytest.raises(TenexError) as caught:
        await within(call)
    return caught.value


@pytest.mark.parametrize("operation", sorted(OPERATIONS))
@pytest.mark.parametrize("victim", ["a2", "b1"])
async def test_foreign_ids_are_not_found_like_missing_ones(
    world: World, operation: str, victim: str
) -> None:
    attacker = world.a1.engine
    target: Owner = getattr(world, victim)
    before = (await _rows(attacker, "ws_a"), await _rows(attacker, "ws_b"))
    calls_before = len(world.llm.calls)
    foreign = await _error(OPERATIONS[operation](attacker, target))
    missing = await _error(OPERATIONS[operation](attacker, world.missing))
    assert isinstance(foreign, NotFound)
    assert (type(foreign), foreign.message) == (type(missing), missing.message)
    assert foreign.to_wire() == missing.to_wire()
    if operation in MESSAGE_IN_OWN_THREAD:
        own = world.a1.thread_id
        crossed = await _error(MESSAGE_IN_OWN_THREAD[operation](attacker, own, target))
        absent = await _error(
            MESSAGE_IN_OWN_THREAD[operation](attacker, own, world.missing)
        )
        assert isinstance(crossed, NotFound)
        assert crossed.to_wire() == absent.to_wire()
    assert (await _rows(attacker, "ws_a"), await _rows(attacker, "ws_b")) == before
    assert len(world.llm.calls) == calls_before


async def test_own_operations_succeed(world: World) -> None:
    engine, own = world.a1.engine, world.a1
    assert (await engine.get_thread(own.thread_id)).id == own.thread_id
    assert len((await engine.list_messages(own.thread_id)).items) == 2
    assert (await engine.get_message(own.thread_id, own.reply_id)).status == "complete"
    events = await collect(engine.stream_events(own.thread_id, own.reply_id))
    assert events[-1].status == "complete"


async def test_lists_and_search_show_only_the_callers_rows(world: World) -> None:
    for owner, workspace, user in (
        (world.a1, "ws_a", "usr_a1"),
        (world.a2, "ws_a", "usr_a2"),
        (world.b1, "ws_b", "usr_b1"),
    ):
        page = await owner.engine.list_threads(archived=None)
        assert [t.id for t in page.items] == [owner.thread_id]
        assert all((t.workspace_id, t.user_id) == (workspace, user) for t in page.items)
        assert page.total == 1
        hits = await owner.engine.search("alpha")
        assert hits.items
        assert {h.thread_id for h in hits.items} == {owner.thread_id}


async def test_live_stream_of_another_workspace_is_untouched(world: World) -> None:
    b1 = world.b1
    message = await b1.engine.get_message(b1.thread_id, b1.reply_id)
    assert message.status == "streaming"
    with pytest.raises(NotFound):
        await world.a1.engine.cancel_message(b1.thread_id, b1.reply_id)
    assert (
        await b1.engine.get_message(b1.thread_id, b1.reply_id)
    ).status == "streaming"


async def test_cursors_cannot_cross_scopes(world: World) -> None:
    a1 = world.a1.engine
    for i in range(3):
        await a1.create_thread(title=f"more {i}")
    page = await a1.list_threads(limit=1)
    assert page.next_cursor is not None
    for other in (world.a2.engine, world.b1.engine):
        with pytest.raises(InvalidCursor):
            await other.list_threads(limit=1, cursor=page.next_cursor)
    messages = await a1.list_messages(world.a1.thread_id, limit=1)
    with pytest.raises((InvalidCursor, NotFound)):
        await world.b1.engine.list_messages(
            world.a1.thread_id, limit=1, cursor=messages.next_cursor
        )
    with pytest.raises(InvalidCursor):
        await world.a2.engine.list_messages(
            world.a2.thread_id, limit=1, cursor=messages.next_cursor
        )
    hits = await a1.search("more", limit=1)
    assert hits.next_cursor is not None
    with pytest.raises(InvalidCursor):
        await world.a2.engine.search("more", limit=1, cursor=hits.next_cursor)


async def test_event_ids_cannot_cross_scopes_or_threads(world: World) -> None:
    a1, b1 = world.a1, world.b1
    # B's event id, resumed with A's scope: not found, nothing replayed.
    with pytest.raises(NotFound):
        await collect(
            a1.engine.stream_events(b1.thread_id, b1.reply_id, after=b1.event_id)
        )
    # B's event id against A's own message: not found.
    with pytest.raises(NotFound):
        await collect(
            a1.engine.stream_events(a1.thread_id, a1.reply_id, after=b1.event_id)
        )
    # A's own message under another of A's threads: not found.
    other = await a1.engine.create_thread()
    with pytest.raises(NotFound):
        await collect(a1.engine.stream_events(other.id, a1.reply_id, after=a1.event_id))
    # Event ids embed their message: no two messages share one.
    assert a1.event_id.startswith(f"{a1.reply_id}.")
    assert not b1.event_id.startswith(f"{a1.reply_id}.")


async def test_a_colliding_id_in_another_workspace_never_overwrites(
    db_path: Path,
) -> None:
    # Two engines with identical fixed clocks make identical ids in two workspaces.
    first = await LocalEngine.open(db_path, clock=FixedClock(), workspace_id="ws_x")
    try:
        thread_x = await first.create_thread(title="x's")
        view = first.for_scope("ws_y", "usr_local")
        view._core.store.clock = FixedClock()  # restart the id counter: same id again
        thread_y = await view.create_thread(title="y's")
        assert thread_x.id == thread_y.id
        assert (await first.get_thread(thread_x.id)).title == "x's"
        assert (await view.get_thread(thread_y.id)).title == "y's"
        await view.delete_thread(thread_y.id)
        assert (await first.get_thread(thread_x.id)).title == "x's"
    finally:
        await first.aclose()


SCOPED_TABLES = re.compile(
    r"\b(?:FROM|JOIN|INTO|UPDATE)\s+(threads|messages|events|messages_fts|threads_fts"
    r"|knowledge_chunks_fts|knowledge_chunks|knowledge_docs|leads|thread_counts)\b",
    re.IGNORECASE,
)
BOUND_WORKSPACE = re.compile(r"\bworkspace_id\s*=\s*'[^']*'", re.IGNORECASE)
INSERT_WITH_WORKSPACE = re.compile(
    r"^\s*INSERT\s+(?:OR\s+\w+\s+)?INTO\s+\w+\s*\([^)]*\bworkspace_id\b", re.IGNORECASE
)


async def test_every_statement_on_scoped_tables_binds_a_workspace(
    db_path: Path,
) -> None:
    """T56: trace every statement the engine runs through a broad scenario."""
    llm = ScriptedLLM()
    engine = await LocalEngine.open(
        db_path, llm=llm, clock=FixedClock(), checkpoint_interval=0.01
    )
    statements: list[str] = []

    def trace(on: bool) -> None:
        connection = engine._core.db.connection
        assert connection is not None
        connection.conn.set_trace_callback(statements.append if on else None)

    await engine._core.db.run(trace, True)
    try:
        thread = await engine.create_thread(title="audit me")
        await engine.update_thread(thread.id, pinned=True, draft="d")
        llm.enqueue("one ", "two")
        events = await collect(
            engine.send_message(thread.id, "hello", client_request_id="r")
        )
        await collect(engine.send_message(thread.id, "hello", client_request_id="r"))
        await collect(
            engine.stream_events(thread.id, events[0].message_id, after=events[1].id)
        )
        await engine.list_threads()
        page = await engine.list_threads(limit=1)
        await engine.create_thread(title="second")
        await engine.list_threads(limit=1, cursor=page.next_cursor)
        await engine.list_messages(thread.id, order="desc", limit=1)
        await engine.get_message(thread.id, events[0].message_id)
        await engine.search("two")
        await engine.mark_read(thread.id)
        llm.enqueue("again")
        await collect(engine.regenerate(thread.id))
        llm.enqueue("more")
        await collect(engine.regenerate(thread.id, mode="continue"))
        assert events[0].user_message is not None
        await engine.edit_message(thread.id, events[0].user_message.id, "edited")
        reply = llm.enqueue("x", "y", hold_at=(1,))
        stream = engine.send_message(thread.id, "to cancel")
        started = await within(anext(stream))
        await within(reply.held(1).wait())
        await engine.cancel_message(thread.id, started.message_id)
        await collect(stream)
        await engine.put_idempotency("k", request_hash="h", status=200, body="{}")
        await engine.get_idempotency("k")
        await engine.info()
        await engine.delete_thread(thread.id)
        await engine._core.db.run(engine._core.store.reconcile)
    finally:
        await engine._core.db.run(trace, False)
        await engine.aclose()
    checked = 0
    for sql in statements:
        if sql.startswith("--"):
            continue  # statements SQLite runs inside triggers and FTS5 itself
        if not SCOPED_TABLES.search(sql):
            continue
        checked += 1
        assert BOUND_WORKSPACE.search(sql) or INSERT_WITH_WORKSPACE.search(sql), sql
    assert checked > 40
