"""History paging, regenerate / continue, and editing the last user message."""

from __future__ import annotations

import pytest

from tenex_tui.core.errors import Conflict, InvalidCursor, InvalidRequest, NotFound
from tenex_tui.engine.engine import LocalEngine
from tests.engine.conftest import collect, text_of, within
from tests.support.scripted_llm import ScriptedLLM


async def _chat(engine: LocalEngine, llm: ScriptedLLM, turns: int) -> str:
    thread = await engine.create_thread(title="chat")
    for i in range(turns):
        llm.enqueue(f"answer {i}")
        await collect(engine.send_message(thread.id, f"question {i}"))
    return thread.id


async def test_history_pages_forward_and_backward(
    engine: LocalEngine, llm: ScriptedLLM
) -> None:
    thread_id = await _chat(engine, llm, 6)
    forward: list[str] = []
    cursor = None
    for _ in range(10):
        page = await engine.list_messages(thread_id, limit=5, cursor=cursor)
        assert page.total == 12
        forward.extend(m.content for m in page.items)
        cursor = page.next_cursor
        if cursor is None:
            break
    expected = [x for i in range(6) for x in (f"question {i}", f"answer {i}")]
    assert forward == expected
    backward: list[str] = []
    cursor = None
    for _ in range(10):
        page = await engine.list_messages(
            thread_id, limit=5, cursor=cursor, order="desc"
        )
        backward.extend(m.content for m in page.items)
        cursor = page.next_cursor
        if cursor is None:
            break
    assert backward == expected[::-1]


async def test_message_cursor_is_bound_to_thread_order_and_limit(
    engine: LocalEngine, llm: ScriptedLLM
) -> None:
    thread_id = await _chat(engine, llm, 3)
    other_id = await _chat(engine, llm, 3)
    page = await engine.list_messages(thread_id, limit=2)
    assert page.next_cursor is not None
    with pytest.raises(InvalidCursor):
        await engine.list_messages(other_id, limit=2, cursor=page.next_cursor)
    with pytest.raises(InvalidCursor):
        await engine.list_messages(
            thread_id, limit=2, cursor=page.next_cursor, order="desc"
        )
    with pytest.raises(InvalidCursor):
        await engine.list_messages(thread_id, limit=3, cursor=page.next_cursor)
    with pytest.raises(InvalidCursor):
        await engine.list_threads(limit=2, cursor=page.next_cursor)


async def test_get_message_checks_the_thread(
    engine: LocalEngine, llm: ScriptedLLM
) -> None:
    first = await _chat(engine, llm, 1)
    second = await _chat(engine, llm, 1)
    message = (await engine.list_messages(first)).items[0]
    assert (await engine.get_message(first, message.id)) == message
    with pytest.raises(NotFound, match="message not found"):
        await engine.get_message(second, message.id)
    with pytest.raises(NotFound, match="thread not found"):
        await engine.list_messages("thr_missing")


async def test_regenerate_replaces_the_last_reply(
    engine: LocalEngine, llm: ScriptedLLM
) -> None:
    thread_id = await _chat(engine, llm, 2)
    old = (await engine.list_messages(thread_id, order="desc", limit=1)).items[0]
    llm.enqueue("a better answer")
    events = await collect(engine.regenerate(thread_id))
    assert events[0].user_message is not None
    assert events[0].user_message.content == "question 1"
    assert text_of(events) == "a better answer"
    page = await engine.list_messages(thread_id)
    assert [m.content for m in page.items] == [
        "question 0",
        "answer 0",
        "question 1",
        "a better answer",
    ]
    assert old.id not in {m.id for m in page.items}
    assert page.total == 4
    turns = llm.calls[-1].turns
    assert [t.content for t in turns] == ["question 0", "answer 0", "question 1"]


async def test_regenerate_retries_a_failed_send(
    engine: LocalEngine, llm: ScriptedLLM
) -> None:
    thread = await engine.create_thread()
    from tenex_tui.core.errors import ModelUnavailable

    llm.enqueue(error=ModelUnavailable("down"))
    await collect(engine.send_message(thread.id, "hello?"))
    llm.enqueue("back up")
    events = await collect(engine.regenerate(thread.id))
    assert events[-1].status == "complete"
    page = await engine.list_messages(thread.id)
    assert [(m.role, m.status) for m in page.items] == [
        ("user", "complete"),
        ("assistant", "complete"),
    ]
    # The failed reply had no text, so the retry's prompt does not carry it.
    assert [t.role for t in llm.calls[-1].turns] == ["user"]


async def test_continue_appends_to_the_last_reply(
    engine: LocalEngine, llm: ScriptedLLM
) -> None:
    thread = await engine.create_thread()
    reply = llm.enqueue("The first half", " lost", hold_at=(1,))
    stream = engine.send_message(thread.id, "tell me")
    started = await within(anext(stream))
    await within(reply.held(1).wait())
    await engine.cancel_message(thread.id, started.message_id)
    await collect(stream)
    llm.enqueue(" and the rest.")
    events = await collect(engine.regenerate(thread.id, mode="continue"))
    assert events[0].message_id == started.message_id
    assert events[0].message is not None
    assert events[0].message.content == "The first half"
    assert text_of(events) == " and the rest."
    message = await engine.get_message(thread.id, started.message_id)
    assert (message.status, message.content) == (
        "complete",
        "The first half and the rest.",
    )
    assert llm.calls[-1].turns[-1].role == "assistant"
    assert llm.calls[-1].turns[-1].content == "The first half"
    # The continuation is a new stream of the same message: replay gives it alone,
    # and ids of the old stream are gone.
    replay = await collect(engine.stream_events(thread.id, started.message_id))
    assert [e.id for e in replay] == [e.id for e in events]
    with pytest.raises(NotFound):
        await collect(
            engine.stream_events(thread.id, started.message_id, after=started.id)
        )


async def test_nothing_to_regenerate_or_continue_conflicts(
    engine: LocalEngine, llm: ScriptedLLM
) -> None:
    thread = await engine.create_thread()
    with pytest.raises(Conflict):
        await collect(engine.regenerate(thread.id))
    with pytest.raises(Conflict):
        await collect(engine.regenerate(thread.id, mode="continue"))
    with pytest.raises(InvalidRequest):
        await collect(engine.regenerate(thread.id, mode="sideways"))  # type: ignore[arg-type]
    assert llm.calls == []


async def test_regenerate_while_streaming_conflicts(
    engine: LocalEngine, llm: ScriptedLLM
) -> None:
    thread_id = await _chat(engine, llm, 1)
    reply = llm.enqueue("slow", hold_at=(0,))
    stream = engine.send_message(thread_id, "again")
    await within(anext(stream))
    with pytest.raises(Conflict):
        await collect(engine.regenerate(thread_id))
    reply.release(0)
    await collect(stream)


async def test_regenerate_with_request_id_is_idempotent(
    engine: LocalEngine, llm: ScriptedLLM
) -> None:
    thread_id = await _chat(engine, llm, 1)
    llm.enqueue("second try")
    first = await collect(engine.regenerate(thread_id, client_request_id="regen-1"))
    again = await collect(engine.regenerate(thread_id, client_request_id="regen-1"))
    assert [e.id for e in again] == [e.id for e in first]
    assert len(llm.calls) == 2


async def test_edit_replaces_the_last_user_message_and_drops_what_follows(
    engine: LocalEngine, llm: ScriptedLLM
) -> None:
    thread_id = await _chat(engine, llm, 2)
    page = await engine.list_messages(thread_id)
    last_user = page.items[2]
    edited = await engine.edit_message(thread_id, last_user.id, "question 1, better")
    assert edited.content == "question 1, better"
    assert edited.id == last_user.id
    after = await engine.list_messages(thread_id)
    assert [m.content for m in after.items] == [
        "question 0",
        "answer 0",
        "question 1, better",
    ]
    thread = await engine.get_thread(thread_id)
    assert thread.message_count == 3
    assert thread.last_status == "complete"
    llm.enqueue("answer to the better question")
    events = await collect(engine.regenerate(thread_id))
    assert llm.calls[-1].turns[-1].content == "question 1, better"
    assert events[-1].status == "complete"


async def test_edit_refuses_other_messages(
    engine: LocalEngine, llm: ScriptedLLM
) -> None:
    thread_id = await _chat(engine, llm, 2)
    page = await engine.list_messages(thread_id)
    with pytest.raises(Conflict):
        await engine.edit_message(thread_id, page.items[0].id, "rewrite history")
    with pytest.raises(Conflict):
        await engine.edit_message(thread_id, page.items[3].id, "not mine")
    with pytest.raises(InvalidRequest):
        await engine.edit_message(thread_id, page.items[2].id, "  ")
    with pytest.raises(NotFound):
        await engine.edit_message(thread_id, "msg_missing", "x")
    reply = llm.enqueue("streaming", hold_at=(0,))
    stream = engine.send_message(thread_id, "third")
    started = await within(anext(stream))
    assert started.user_message is not None
    with pytest.raises(Conflict):
        await engine.edit_message(thread_id, started.user_message.id, "changed my mind")
    reply.release(0)
    await collect(stream)
