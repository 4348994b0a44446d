"""Threads on the local engine: create, get, update, read marks, delete, and the list."""

from __future__ import annotations

import pytest

from tenex_tui.core.errors import InvalidCursor, InvalidRequest, NotFound
from tenex_tui.core.models import ThreadContext
from tenex_tui.engine.engine import LocalEngine
from tests.engine.conftest import collect, within
from tests.support.scripted_llm import ScriptedLLM


async def test_create_thread_stores_every_field(engine: LocalEngine) -> None:
    thread = await engine.create_thread(
        title="Q3 launch",
        system_prompt="Be brief.",
        agent="assistant",
        model="scripted-2",
    )
    assert thread.id.startswith("thr_")
    assert (thread.workspace_id, thread.user_id) == ("ws_local", "usr_local")
    assert thread.title == "Q3 launch"
    assert thread.system_prompt == "Be brief."
    assert thread.agent == "assistant"
    assert thread.model == "scripted-2"
    assert (thread.pinned, thread.archived, thread.unread) == (False, False, False)
    assert thread.message_count == 0
    assert thread.last_message_at is None
    assert await engine.get_thread(thread.id) == thread


async def test_create_thread_without_title_is_untitled(engine: LocalEngine) -> None:
    thread = await engine.create_thread()
    assert thread.title == ""


@pytest.mark.parametrize("title", ["x" * 201, "   ", "\n\t"])
async def test_create_thread_refuses_bad_titles(
    engine: LocalEngine, title: str
) -> None:
    with pytest.raises(InvalidRequest):
        await engine.create_thread(title=title)


async def test_create_thread_refuses_unknown_agent_and_context(
    engine: LocalEngine,
) -> None:
    with pytest.raises(InvalidRequest, match="agent"):
        await engine.create_thread(agent="no-such-agent")
    with pytest.raises(InvalidRequest, match="knowledge"):
        await engine.create_thread(context=ThreadContext(knowledge=["doc_missing"]))
    with pytest.raises(InvalidRequest, match="lead"):
        await engine.create_thread(context=ThreadContext(lead="lead_missing"))
    assert (await engine.list_threads()).total == 0


async def test_title_is_stored_raw_not_sanitised(engine: LocalEngine) -> None:
    title = "[@click=app.quit]x[/] \x1b]0;pwned\x07"
    thread = await engine.create_thread(title=title)
    assert (await engine.get_thread(thread.id)).title == title


async def test_update_renames_pins_archives_and_undoes(engine: LocalEngine) -> None:
    thread = await engine.create_thread(title="old")
    renamed = await engine.update_thread(thread.id, title="new")
    assert renamed.title == "new"
    assert renamed.updated_at > thread.updated_at
    assert (await engine.update_thread(thread.id, pinned=True)).pinned
    assert not (await engine.update_thread(thread.id, pinned=False)).pinned
    assert (await engine.update_thread(thread.id, archived=True)).archived
    assert not (await engine.update_thread(thread.id, archived=False)).archived


async def test_update_refuses_blank_title(engine: LocalEngine) -> None:
    thread = await engine.create_thread(title="keep")
    with pytest.raises(InvalidRequest):
        await engine.update_thread(thread.id, title="  ")
    assert (await engine.get_thread(thread.id)).title == "keep"


async def test_saving_a_draft_changes_neither_updated_at_nor_order(
    engine: LocalEngine,
) -> None:
    older = await engine.create_thread(title="older")
    newer = await engine.create_thread(title="newer")
    saved = await engine.update_thread(older.id, draft="half a thought")
    assert saved.draft == "half a thought"
    assert saved.updated_at == older.updated_at
    page = await engine.list_threads()
    assert [t.id for t in page.items] == [newer.id, older.id]


async def test_unknown_thread_is_not_found(engine: LocalEngine) -> None:
    for call in (
        engine.get_thread("thr_nope"),
        engine.update_thread("thr_nope", title="x"),
        engine.mark_read("thr_nope"),
        engine.delete_thread("thr_nope"),
    ):
        with pytest.raises(NotFound, match="thread not found"):
            await call


async def test_delete_removes_thread_messages_and_events(
    engine: LocalEngine, llm: ScriptedLLM
) -> None:
    thread = await engine.create_thread(title="doomed")
    llm.enqueue("gone soon")
    events = await collect(engine.send_message(thread.id, "hi"))
    await engine.delete_thread(thread.id)
    with pytest.raises(NotFound):
        await engine.get_thread(thread.id)
    with pytest.raises(NotFound):
        await engine.get_message(thread.id, events[0].message_id)
    rows = await engine._core.db.run(engine._core.store.workspace_rows, engine.scope)
    assert rows == {"threads": [], "messages": [], "events": []}
    assert (await engine.search("gone")).items == []


async def test_deleting_a_thread_stops_its_streaming_reply_first(
    engine: LocalEngine, llm: ScriptedLLM
) -> None:
    thread = await engine.create_thread(title="busy")
    reply = llm.enqueue("half", "never", hold_at=(1,))
    stream = engine.send_message(thread.id, "go")
    started = await within(anext(stream))
    await within(reply.held(1).wait())
    await within(engine.delete_thread(thread.id))
    assert reply.closed
    rest = await collect(stream)
    assert rest[-1].type == "message.stopped"
    with pytest.raises(NotFound):
        await engine.get_message(thread.id, started.message_id)


async def test_unread_after_a_reply_until_marked_read(
    engine: LocalEngine, llm: ScriptedLLM
) -> None:
    thread = await engine.create_thread(title="t")
    llm.enqueue("answer")
    await collect(engine.send_message(thread.id, "q"))
    fetched = await engine.get_thread(thread.id)
    assert fetched.unread
    assert fetched.last_status == "complete"
    assert fetched.message_count == 2
    assert not (await engine.mark_read(thread.id)).unread
    assert not (await engine.get_thread(thread.id)).unread
    llm.enqueue("again")
    await collect(engine.send_message(thread.id, "more"))
    assert (await engine.get_thread(thread.id)).unread


async def test_list_puts_pinned_first_then_most_recent_activity(
    engine: LocalEngine, llm: ScriptedLLM
) -> None:
    a = await engine.create_thread(title="a")
    b = await engine.create_thread(title="b")
    c = await engine.create_thread(title="c")
    d = await engine.create_thread(title="d")
    await engine.update_thread(b.id, pinned=True)
    llm.enqueue("reply")
    await collect(engine.send_message(a.id, "bump a"))
    ids = [t.id for t in (await engine.list_threads()).items]
    assert ids == [b.id, a.id, d.id, c.id]


async def test_list_filters(engine: LocalEngine) -> None:
    plain = await engine.create_thread(title="Plain notes")
    pinned = await engine.create_thread(title="Pinned plan")
    archived = await engine.create_thread(title="Archived plan")
    agent = await engine.create_thread(title="Agent work", agent="assistant")
    await engine.update_thread(pinned.id, pinned=True)
    await engine.update_thread(archived.id, archived=True)

    async def ids(**filters: object) -> set[str]:
        page = await engine.list_threads(**filters)  # type: ignore[arg-type]
        assert page.total == len(page.items)
        return {t.id for t in page.items}

    assert await ids() == {plain.id, pinned.id, agent.id}
    assert await ids(archived=True) == {archived.id}
    assert await ids(archived=None) == {plain.id, pinned.id, archived.id, agent.id}
    assert await ids(pinned=True) == {pinned.id}
    assert await ids(pinned=False) == {plain.id, agent.id}
    assert await ids(agent="assistant") == {agent.id}
    assert await ids(q="PLAN", archived=None) == {pinned.id, archived.id}


async def test_title_filter_escapes_like_wildcards(engine: LocalEngine) -> None:
    literal = await engine.create_thread(title="100% done_ok")
    await engine.create_thread(title="100 percent doneXok")
    for q in ("100%", "done_ok", "%", "_"):
        page = await engine.list_threads(q=q)
        assert [t.id for t in page.items] == [literal.id], q
    backslash = await engine.create_thread(title="C:\\temp")
    assert [t.id for t in (await engine.list_threads(q="\\")).items] == [backslash.id]


async def test_limit_default_cap_and_invalid(engine: LocalEngine) -> None:
    for _ in range(205):
        await engine.create_thread(title="t")
    assert len((await engine.list_threads()).items) == 50
    assert len((await engine.list_threads(limit=1)).items) == 1
    assert len((await engine.list_threads(limit=200)).items) == 200
    assert len((await engine.list_threads(limit=201)).items) == 200
    assert len((await engine.list_threads(limit=1000)).items) == 200
    for bad in (0, -1):
        with pytest.raises(InvalidRequest):
            await engine.list_threads(limit=bad)


async def test_pages_cover_every_thread_once_and_end_with_null_cursor(
    engine: LocalEngine,
) -> None:
    created = [await engine.create_thread(title=f"t{i}") for i in range(23)]
    for thread in created[::5]:
        await engine.update_thread(thread.id, pinned=True)
    seen: list[str] = []
    cursor = None
    for _ in range(10):
        page = await engine.list_threads(limit=4, cursor=cursor)
        assert page.total == 23
        seen.extend(t.id for t in page.items)
        cursor = page.next_cursor
        if cursor is None:
            break
    assert cursor is None
    assert len(seen) == len(set(seen)) == 23
    all_at_once = [t.id for t in (await engine.list_threads(limit=200)).items]
    assert seen == all_at_once


async def test_pages_stay_stable_while_new_threads_arrive(engine: LocalEngine) -> None:
    before = [await engine.create_thread(title=f"old{i}") for i in range(12)]
    seen: list[str] = []
    cursor = None
    for i in range(10):
        page = await engine.list_threads(limit=5, cursor=cursor)
        seen.extend(t.id for t in page.items)
        await engine.create_thread(title=f"new{i}")
        cursor = page.next_cursor
        if cursor is None:
            break
    assert len(seen) == len(set(seen))
    assert set(seen) == {t.id for t in before}


async def test_cursor_is_bound_to_filters_and_page_size(engine: LocalEngine) -> None:
    for i in range(5):
        await engine.create_thread(title=f"t{i}")
    page = await engine.list_threads(limit=2)
    assert page.next_cursor is not None
    for changed in (
        {"limit": 3},
        {"limit": 2, "archived": True},
        {"limit": 2, "pinned": True},
        {"limit": 2, "q": "t"},
        {"limit": 2, "agent": "assistant"},
    ):
        with pytest.raises(InvalidCursor):
            await engine.list_threads(cursor=page.next_cursor, **changed)  # type: ignore[arg-type]
    with pytest.raises(InvalidCursor):
        await engine.list_messages(
            (await engine.create_thread()).id, cursor=page.next_cursor
        )


@pytest.mark.parametrize(
    "mangle",
    [
        lambda c: c[:-2] + ("A" if c[-2] != "A" else "B") + c[-1],
        lambda c: ("A" if c[0] != "A" else "B") + c[1:],
        lambda c: c + "x",
        lambda c: c.replace(".", ""),
        lambda c: "garbage",
        lambda c: "",
        lambda c: "é.é",
    ],
)
async def test_tampered_cursors_are_refused(
    engine: LocalEngine, mangle: object
) -> None:
    for i in range(3):
        await engine.create_thread(title=f"t{i}")
    page = await engine.list_threads(limit=1)
    assert page.next_cursor is not None
    with pytest.raises(InvalidCursor):
        await engine.list_threads(limit=1, cursor=mangle(page.next_cursor))  # type: ignore[operator]


async def test_cursor_whose_anchor_was_deleted_continues(engine: LocalEngine) -> None:
    threads = [await engine.create_thread(title=f"t{i}") for i in range(6)]
    page = await engine.list_threads(limit=2)
    anchor = page.items[-1].id
    await engine.delete_thread(anchor)
    rest = await engine.list_threads(limit=2, cursor=page.next_cursor)
    expected_next = [t.id for t in reversed(threads)][2:4]
    assert [t.id for t in rest.items] == expected_next


async def test_cursors_survive_a_restart(
    engine: LocalEngine, db_path: object, llm: ScriptedLLM
) -> None:
    for i in range(3):
        await engine.create_thread(title=f"t{i}")
    page = await engine.list_threads(limit=1)
    await engine.aclose()
    reopened = await LocalEngine.open(db_path, llm=llm)  # type: ignore[arg-type]
    try:
        rest = await reopened.list_threads(limit=1, cursor=page.next_cursor)
        assert len(rest.items) == 1
    finally:
        await reopened.aclose()


async def test_totals_follow_pins_archives_and_deletes(engine: LocalEngine) -> None:
    threads = [await engine.create_thread(title=f"t{i}") for i in range(5)]
    await engine.update_thread(threads[0].id, pinned=True)
    await engine.update_thread(threads[1].id, archived=True)
    await engine.update_thread(threads[2].id, archived=True, pinned=True)
    await engine.update_thread(threads[2].id, pinned=False)
    await engine.delete_thread(threads[3].id)

    async def total(**filters: object) -> int | None:
        return (await engine.list_threads(**filters)).total  # type: ignore[arg-type]

    assert await total() == 2
    assert await total(archived=True) == 2
    assert await total(archived=None) == 4
    assert await total(pinned=True, archived=None) == 1
    assert await total(pinned=False, archived=None) == 3
    assert await total(q="t", archived=None) == 4
    assert await total(agent="assistant") == 0
