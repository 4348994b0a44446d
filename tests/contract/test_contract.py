"""The `ChatBackend` contract: the same assertions for `LocalEngine` and `RemoteBackend`."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from tenex_tui.core.backend import ChatBackend
from tenex_tui.core.errors import Conflict, InvalidCursor, InvalidRequest, NotFound
from tenex_tui.core.events import StreamEvent
from tenex_tui.core.models import Thread
from tests.contract.conftest import Env


async def drain(events: AsyncIterator[StreamEvent]) -> list[StreamEvent]:
    return [event async for event in events]


async def reply(
    backend: ChatBackend, thread_id: str, text: str = "hello"
) -> list[StreamEvent]:
    return await drain(backend.send_message(thread_id, text))


async def test_info_names_the_workspace_and_model(env: Env) -> None:
    info = await env.a1.info()
    assert info.kind == env.kind
    assert info.workspace == "Acme"
    assert info.model == "step-model"
    assert info.online is True
    assert (await env.b1.info()).workspace == "Beta"


async def test_create_and_get_a_thread(env: Env) -> None:
    thread = await env.a1.create_thread(
        title="Plan", system_prompt="Be brief.", agent="assistant", model="m-x"
    )
    assert thread.id.startswith("thr_")
    assert (thread.title, thread.system_prompt, thread.agent, thread.model) == (
        "Plan",
        "Be brief.",
        "assistant",
        "m-x",
    )
    assert (thread.workspace_id, thread.user_id) == ("ws_a", "usr_a1")
    assert not thread.pinned and not thread.archived and thread.message_count == 0
    assert await env.a1.get_thread(thread.id) == thread


async def test_create_with_an_unknown_agent_is_invalid(env: Env) -> None:
    with pytest.raises(InvalidRequest):
        await env.a1.create_thread(agent="no-such-agent")


async def test_list_is_pinned_first_then_by_recency_with_filters(env: Env) -> None:
    first = await env.a1.create_thread(title="first alpha")
    second = await env.a1.create_thread(title="second beta")
    third = await env.a1.create_thread(title="third alpha")
    await env.a1.update_thread(first.id, pinned=True)
    await env.a1.update_thread(second.id, archived=True)
    live = await env.a1.list_threads()
    assert [t.id for t in live.items] == [first.id, third.id]
    assert live.total == 2 and live.next_cursor is None
    archived = await env.a1.list_threads(archived=True)
    assert [t.id for t in archived.items] == [second.id]
    both = await env.a1.list_threads(archived=None)
    assert {t.id for t in both.items} == {first.id, second.id, third.id}
    assert [t.id for t in (await env.a1.list_threads(pinned=True)).items] == [first.id]
    assert [t.id for t in (await env.a1.list_threads(pinned=False)).items] == [third.id]
    assert [t.id for t in (await env.a1.list_threads(q="ALPHA")).items] == [
        first.id,
        third.id,
    ]
    bound = await env.a1.create_thread(title="bound", agent="assistant")
    assert [t.id for t in (await env.a1.list_threads(agent="assistant")).items] == [
        bound.id
    ]


async def test_paging_has_no_gap_or_duplicate_while_threads_arrive(env: Env) -> None:
    made = [await env.a1.create_thread(title=f"t{i}") for i in range(7)]
    page = await env.a1.list_threads(limit=3)
    assert page.total == 7 and len(page.items) == 3
    # New threads arrive while paging: they sort before the cursor and never shift it.
    await env.a1.create_thread(title="late")
    seen = list(page.items)
    cursor = page.next_cursor
    for _ in range(10):
        if cursor is None:
            break
        page = await env.a1.list_threads(limit=3, cursor=cursor)
        seen += page.items
        cursor = page.next_cursor
    assert [t.id for t in seen] == [t.id for t in reversed(made)]


async def test_limit_default_cap_and_invalid(env: Env) -> None:
    engine = env.stack.scoped("a1")
    for i in range(205):
        await engine.create_thread(title=f"bulk {i}")
    assert len((await env.a1.list_threads()).items) == 50
    assert len((await env.a1.list_threads(limit=201)).items) == 200
    assert len((await env.a1.list_threads(limit=1000)).items) == 200
    for bad in (0, -1):
        with pytest.raises(InvalidRequest):
            await env.a1.list_threads(limit=bad)


async def test_cursor_errors(env: Env) -> None:
    for i in range(4):
        await env.a1.create_thread(title=f"t{i}")
    cursor = (await env.a1.list_threads(limit=2)).next_cursor
    assert cursor is not None
    tampered = cursor[:-2] + ("A" if cursor[-2] != "A" else "B") + cursor[-1]
    with pytest.raises(InvalidCursor):
        await env.a1.list_threads(limit=2, cursor=tampered)
    with pytest.raises(InvalidCursor):
        await env.a1.list_threads(limit=2, cursor="not-a-cursor")
    with pytest.raises(InvalidCursor):
        await env.a1.list_threads(limit=2, cursor=cursor, pinned=True)
    with pytest.raises(InvalidCursor):
        await env.b1.list_threads(limit=2, cursor=cursor)
    with pytest.raises(InvalidCursor):
        await env.a2.list_threads(limit=2, cursor=cursor)


async def test_update_rename_pin_archive_and_undo(env: Env) -> None:
    thread = await env.a1.create_thread(title="old")
    renamed = await env.a1.update_thread(thread.id, title="new")
    assert renamed.title == "new"
    assert (await env.a1.update_thread(thread.id, pinned=True)).pinned
    assert not (await env.a1.update_thread(thread.id, pinned=False)).pinned
    assert (await env.a1.update_thread(thread.id, archived=True)).archived
    assert not (await env.a1.update_thread(thread.id, archived=False)).archived
    drafted = await env.a1.update_thread(thread.id, draft="unsent words")
    assert drafted.draft == "unsent words"
    with pytest.raises(InvalidRequest):
        await env.a1.update_thread(thread.id, title="x" * 201)
    with pytest.raises(InvalidRequest):
        await env.a1.update_thread(thread.id, title="   ")


async def test_delete_removes_the_thread_and_its_messages(env: Env) -> None:
    thread = await env.a1.create_thread(title="doomed")
    events = await reply(env.a1, thread.id)
    await env.a1.delete_thread(thread.id)
    with pytest.raises(NotFound):
        await env.a1.get_thread(thread.id)
    with pytest.raises(NotFound):
        await env.a1.list_messages(thread.id)
    with pytest.raises(NotFound):
        await env.a1.get_message(thread.id, events[-1].message_id)
    with pytest.raises(NotFound):
        await env.a1.delete_thread(thread.id)


async def test_send_streams_started_deltas_completed_and_persists(env: Env) -> None:
    thread = await env.a1.create_thread(title="chat")
    env.llm.enqueue(["Hel", "lo ", "there"])
    events = await reply(env.a1, thread.id, "hi")
    assert [e.type for e in events] == [
        "message.started",
        "message.delta",
        "message.delta",
        "message.delta",
        "message.completed",
    ]
    started, final = events[0], events[-1]
    assert started.user_message is not None and started.user_message.content == "hi"
    assert len({e.message_id for e in events}) == 1
    assert len({e.id for e in events}) == len(events)
    assert final.message is not None and final.message.content == "Hello there"
    assert final.message.status == "complete"
    assert final.usage is not None and final.usage.completion_tokens == 3
    stored = await env.a1.get_message(thread.id, final.message_id)
    assert stored.content == "".join(e.delta for e in events) == "Hello there"
    thread_after = await env.a1.get_thread(thread.id)
    assert thread_after.message_count == 2
    assert thread_after.last_status == "complete"


async def test_history_pages_both_ways(env: Env) -> None:
    thread = await env.a1.create_thread(title="history")
    for i in range(3):
        await reply(env.a1, thread.id, f"question {i}")
    asc = await env.a1.list_messages(thread.id, limit=4)
    assert [m.role for m in asc.items] == ["user", "assistant", "user", "assistant"]
    assert asc.items[0].content == "question 0"
    rest = await env.a1.list_messages(thread.id, limit=4, cursor=asc.next_cursor)
    assert rest.items[0].content == "question 2"
    assert rest.next_cursor is None
    desc = await env.a1.list_messages(thread.id, limit=2, order="desc")
    assert [m.role for m in desc.items] == ["assistant", "user"]
    assert desc.items[1].content == "question 2"
    with pytest.raises(InvalidCursor):
        await env.a1.list_messages(thread.id, cursor="bogus")


class Collector:
    """Reads a stream in a task; tests wait for a number of events, never sleep."""

    def __init__(self, events: AsyncIterator[StreamEvent]) -> None:
        self.events: list[StreamEvent] = []
        self._changed = asyncio.Condition()
        self.task = asyncio.create_task(self._run(events))

    async def _run(self, events: AsyncIterator[StreamEvent]) -> None:
        async for event in events:
            async with self._changed:
                self.events.append(event)
                self._changed.notify_all()

    async def wait_for(self, count: int) -> list[StreamEvent]:
        async with asyncio.timeout(5.0), self._changed:
            await self._changed.wait_for(
                lambda: len(self.events) >= count or self.task.done()
            )
        assert len(self.events) >= count, self.events
        return self.events

    async def finish(self) -> list[StreamEvent]:
        await asyncio.wait_for(self.task, 5.0)
        return self.events


async def test_cancel_stops_the_reply_and_keeps_its_text(env: Env) -> None:
    thread = await env.a1.create_thread(title="stop me")
    held = env.llm.enqueue(["one ", "two ", "three "], hold_at=2)
    reader = Collector(env.a1.send_message(thread.id, "go"))
    await asyncio.wait_for(held.reached.wait(), 5)
    message_id = (await reader.wait_for(1))[0].message_id
    with pytest.raises(Conflict):
        await drain(env.a1.send_message(thread.id, "while streaming"))
    stopped = await env.a1.cancel_message(thread.id, message_id)
    events = await reader.finish()
    assert stopped.status == "stopped"
    assert events[-1].type == "message.stopped"
    final = await env.a1.get_message(thread.id, message_id)
    assert final.status == "stopped" and final.content == "one two "
    # Cancelling a finished message returns it unchanged.
    assert (await env.a1.cancel_message(thread.id, message_id)).status == "stopped"


async def test_resume_after_every_event_id_gives_exactly_the_rest(env: Env) -> None:
    thread = await env.a1.create_thread(title="resume")
    events = await reply(env.a1, thread.id)
    message_id = events[-1].message_id
    assert [e.id for e in await drain(env.a1.stream_events(thread.id, message_id))] == [
        e.id for e in events
    ]
    for index, event in enumerate(events):
        rest = await drain(env.a1.stream_events(thread.id, message_id, after=event.id))
        assert [e.id for e in rest] == [e.id for e in events[index + 1 :]]
        assert "".join(e.delta for e in rest) == "".join(
            e.delta for e in events[index + 1 :]
        )


async def test_resume_of_a_live_reply_gives_the_remaining_events_then_the_tail(
    env: Env,
) -> None:
    thread = await env.a1.create_thread(title="live")
    held = env.llm.enqueue(["a ", "b ", "c ", "d "], hold_at=2)
    reader = Collector(env.a1.send_message(thread.id, "go"))
    await asyncio.wait_for(held.reached.wait(), 5)
    seen = await reader.wait_for(3)  # started and the two deltas before the hold
    message_id = seen[0].message_id
    follower = Collector(env.a1.stream_events(thread.id, message_id, after=seen[1].id))
    assert [e.id for e in await follower.wait_for(1)] == [seen[2].id]
    held.release.set()
    resumed = await follower.finish()
    first = await reader.finish()
    assert [e.id for e in resumed] == [e.id for e in first[2:]]
    assert resumed[-1].type == "message.completed"


async def test_foreign_or_unknown_event_ids_are_not_found(env: Env) -> None:
    thread = await env.a1.create_thread(title="mine")
    events = await reply(env.a1, thread.id)
    other_thread = await env.a1.create_thread(title="other")
    other = await reply(env.a1, other_thread.id)
    message_id = events[-1].message_id
    for after in (other[1].id, f"{message_id}.999", "garbage"):
        with pytest.raises(NotFound):
            await drain(env.a1.stream_events(thread.id, message_id, after=after))
    with pytest.raises(NotFound):
        await drain(env.a1.stream_events(other_thread.id, message_id))


async def test_search_finds_messages_and_titles(env: Env) -> None:
    thread = await env.a1.create_thread(title="Quarterly zebra plan")
    env.llm.enqueue(["the zebra crossing"])
    await reply(env.a1, thread.id, 'tell me about zebras and fox" AND things')
    hits = await env.a1.search("zebra")
    assert hits.items
    assert all(h.thread_id == thread.id for h in hits.items)
    assert any(h.message_id is not None for h in hits.items)
    assert (await env.b1.search("zebra")).items == []
    assert (await env.a2.search("zebra")).items == []
    quoted = await env.a1.search('fox" AND')
    assert quoted.items
    with pytest.raises(InvalidRequest):
        await env.a1.search("   ")


async def test_edit_then_regenerate(env: Env) -> None:
    thread = await env.a1.create_thread(title="edit")
    events = await reply(env.a1, thread.id, "first try")
    user_id = events[0].user_message.id  # type: ignore[union-attr]
    edited = await env.a1.edit_message(thread.id, user_id, "second try")
    assert edited.content == "second try"
    assert [m.role for m in (await env.a1.list_messages(thread.id)).items] == ["user"]
    env.llm.enqueue(["regenerated"])
    again = await drain(env.a1.regenerate(thread.id))
    assert again[-1].type == "message.completed"
    assert again[-1].message.content == "regenerated"  # type: ignore[union-attr]
    messages = (await env.a1.list_messages(thread.id)).items
    assert [(m.role, m.content) for m in messages] == [
        ("user", "second try"),
        ("assistant", "regenerated"),
    ]
    with pytest.raises(Conflict):
        await env.a1.edit_message(thread.id, messages[1].id, "not a user message")


async def test_client_request_id_makes_a_send_idempotent(env: Env) -> None:
    thread = await env.a1.create_thread(title="once")
    calls = env.llm.calls
    first = await drain(
        env.a1.send_message(thread.id, "only once", client_request_id="req-1")
    )
    second = await drain(
        env.a1.send_message(thread.id, "only once", client_request_id="req-1")
    )
    assert first[-1].message_id == second[-1].message_id
    assert env.llm.calls == calls + 1
    assert len((await env.a1.list_messages(thread.id)).items) == 2


async def test_mark_read(env: Env) -> None:
    thread = await env.a1.create_thread(title="unread")
    await reply(env.a1, thread.id)
    assert (await env.a1.get_thread(thread.id)).unread
    assert not (await env.a1.mark_read(thread.id)).unread


async def test_models_and_agents(env: Env) -> None:
    assert await env.a1.list_models() == ["step-model", "step-model-large"]
    agents = await env.a1.list_agents()
    assert agents[0].slug == "assistant"
    triage = next(a for a in agents if a.slug == "lead-triage")
    assert triage.system_prompt.startswith("You help me triage inbound leads")
    assert triage.tools == ["search_knowledge", "get_lead"]


@pytest.mark.parametrize("other", ["a2", "b1"])
async def test_other_scopes_get_not_found_for_every_operation(
    env: Env, other: str
) -> None:
    thread = await env.a1.create_thread(title="private")
    events = await reply(env.a1, thread.id)
    message_id = events[-1].message_id
    user_message_id = events[0].user_message.id  # type: ignore[union-attr]
    intruder: ChatBackend = getattr(env, other)
    attempts: dict[str, Callable[[], Awaitable[object]]] = {
        "get_thread": lambda: intruder.get_thread(thread.id),
        "update_thread": lambda: intruder.update_thread(thread.id, title="mine now"),
        "mark_read": lambda: intruder.mark_read(thread.id),
        "delete_thread": lambda: intruder.delete_thread(thread.id),
        "list_messages": lambda: intruder.list_messages(thread.id),
        "get_message": lambda: intruder.get_message(thread.id, message_id),
        "edit_message": lambda: intruder.edit_message(thread.id, user_message_id, "x"),
        "cancel_message": lambda: intruder.cancel_message(thread.id, message_id),
        "send_message": lambda: drain(intruder.send_message(thread.id, "x")),
        "regenerate": lambda: drain(intruder.regenerate(thread.id)),
        "stream_events": lambda: drain(intruder.stream_events(thread.id, message_id)),
    }
    for name, attempt in attempts.items():
        with pytest.raises(NotFound) as info:
            await attempt()
        assert type(info.value) is NotFound, name
    assert (await intruder.list_threads(archived=None)).items == []
    # Nothing changed for the owner.
    assert (await env.a1.get_thread(thread.id)).title == "private"
    assert len((await env.a1.list_messages(thread.id)).items) == 2


async def test_paging_continues_when_the_anchor_row_is_deleted(env: Env) -> None:
    made = [await env.a1.create_thread(title=f"t{i}") for i in range(6)]
    newest_first = [t.id for t in reversed(made)]
    page = await env.a1.list_threads(limit=2)
    assert [t.id for t in page.items] == newest_first[:2]
    await env.a1.delete_thread(page.items[-1].id)  # the row the cursor points after
    await env.a1.delete_thread(newest_first[3])  # and a row not yet seen
    rest = await all_threads_from(env.a1, page.next_cursor)
    assert [t.id for t in rest] == [newest_first[2], newest_first[4], newest_first[5]]


async def all_threads_from(backend: ChatBackend, cursor: str | None) -> list[Thread]:
    found: list[Thread] = []
    for _ in range(20):
        if cursor is None:
            return found
        page = await backend.list_threads(limit=2, cursor=cursor)
        found += page.items
        cursor = page.next_cursor
    raise AssertionError("pagination did not end")
