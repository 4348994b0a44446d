"""Resuming a reply's stream after any event id: in memory, from the store, across
processes (two engines on one file), and refusing ids that are not the message's."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from tenex_tui.core.errors import NotFound
from tenex_tui.engine import engine_replies as engine_module
from tenex_tui.engine.clock import SystemClock
from tenex_tui.engine.engine import LocalEngine
from tests.engine.conftest import collect, text_of, within
from tests.support.scripted_llm import ScriptedLLM, ToolFragment


def _wire(events: list) -> list[dict]:  # type: ignore[type-arg]
    return [e.to_wire() | {"id": e.id} for e in events]


async def test_resume_after_every_event_of_a_finished_reply(
    engine: LocalEngine, llm: ScriptedLLM
) -> None:
    thread = await engine.create_thread()
    llm.enqueue("a", "b", ToolFragment(0, id="c", name="t", arguments="{}"), "c")
    live = await collect(engine.send_message(thread.id, "go"))
    message_id = live[0].message_id
    replayed = await collect(engine.stream_events(thread.id, message_id))
    assert _wire(replayed) == _wire(live)
    for index, event in enumerate(live):
        rest = await collect(
            engine.stream_events(thread.id, message_id, after=event.id)
        )
        assert _wire(rest) == _wire(live[index + 1 :]), event.id


async def test_resume_after_every_event_of_a_live_reply(
    engine: LocalEngine, llm: ScriptedLLM
) -> None:
    thread = await engine.create_thread()
    chunks = [f"w{i} " for i in range(8)]
    reply = llm.enqueue(*chunks, hold_at=(5,))
    stream = engine.send_message(thread.id, "go")
    seen = [await within(anext(stream)) for _ in range(6)]  # started + 5 deltas
    await within(reply.held(5).wait())
    followers = [
        engine.stream_events(thread.id, seen[0].message_id, after=e.id) for e in seen
    ]
    firsts = [await within(anext(f)) for f in followers[:-1]]
    assert [f.id for f in firsts] == [e.id for e in seen[1:]]
    reply.release(5)
    full = seen + await collect(stream)
    for index, (first, follower) in enumerate(zip(firsts, followers, strict=False)):
        rest = [first, *await collect(follower)]
        assert _wire(rest) == _wire(full[index + 1 :])
    assert text_of(full) == "".join(chunks)


async def test_unknown_and_foreign_event_ids_are_not_found(
    engine: LocalEngine, llm: ScriptedLLM
) -> None:
    thread = await engine.create_thread()
    llm.enqueue("x")
    llm.enqueue("y")
    first = await collect(engine.send_message(thread.id, "one"))
    second = await collect(engine.send_message(thread.id, "two"))
    mid, other = first[0].message_id, second[0].message_id
    bad = [
        f"{other}.1",
        f"{mid}.0",
        f"{mid}.99",
        f"{mid}.-1",
        f"{mid}.+1",
        f"{mid}.1.1",
        f"{mid}",
        "1",
        "",
        f"{mid}.٣",
        f"{mid}.01",
    ]
    for after in bad:
        with pytest.raises(NotFound):
            await collect(engine.stream_events(thread.id, mid, after=after))
    with pytest.raises(NotFound):
        await collect(engine.stream_events(thread.id, "msg_missing"))
    other_thread = await engine.create_thread()
    with pytest.raises(NotFound):
        await collect(engine.stream_events(other_thread.id, mid))


async def test_live_resume_refuses_ids_beyond_the_stream(
    engine: LocalEngine, llm: ScriptedLLM
) -> None:
    thread = await engine.create_thread()
    reply = llm.enqueue("a", "b", hold_at=(1,))
    stream = engine.send_message(thread.id, "go")
    started = await within(anext(stream))
    await within(reply.held(1).wait())
    with pytest.raises(NotFound):
        await collect(
            engine.stream_events(
                thread.id, started.message_id, after=f"{started.message_id}.50"
            )
        )
    reply.release(1)
    await collect(stream)


async def test_another_process_follows_a_live_reply_from_the_store(
    engine: LocalEngine, llm: ScriptedLLM, db_path: Path
) -> None:
    thread = await engine.create_thread()
    reply = llm.enqueue(*[f"t{i} " for i in range(6)], hold_at=(3,))
    stream = engine.send_message(thread.id, "go")
    started = await within(anext(stream))
    await within(reply.held(3).wait())
    other = await LocalEngine.open(db_path, clock=SystemClock(), poll_interval=0.01)
    try:
        follower = other.stream_events(thread.id, started.message_id)
        first = await within(anext(follower))
        assert first.id == started.id
        reply.release(3)
        mine = [started, *await collect(stream)]
        theirs = [first, *await collect(follower)]
        assert _wire(theirs) == _wire(mine)
        # Resume in the other process after every id gives exactly the rest.
        for index, event in enumerate(mine):
            rest = await collect(
                other.stream_events(thread.id, started.message_id, after=event.id)
            )
            assert _wire(rest) == _wire(mine[index + 1 :])
    finally:
        await other.aclose()


async def test_a_follower_ends_a_reply_whose_writer_died(
    engine: LocalEngine,
    llm: ScriptedLLM,
    db_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(engine_module, "LIVENESS_CHECK_SECONDS", 0.02)
    thread = await engine.create_thread()
    reply = llm.enqueue("partial ", "never", hold_at=(1,))
    stream = engine.send_message(thread.id, "go")
    started = await within(anext(stream))
    await within(reply.held(1).wait())
    other = await LocalEngine.open(db_path, clock=SystemClock(), poll_interval=0.01)
    try:
        follower = other.stream_events(thread.id, started.message_id)
        assert (await within(anext(follower))).type == "message.started"
        # The writer "dies": its lock is gone although its task is frozen mid-reply.
        engine._core.lock.release()
        rest = await collect(follower)
        assert rest[-1].type == "message.failed"
        assert rest[-1].status == "interrupted"
        message = await other.get_message(thread.id, started.message_id)
        assert message.status == "interrupted"
    finally:
        await other.aclose()
        reply.release(1)
        await collect(stream)


async def test_cancel_from_another_process_stops_the_writer(
    engine: LocalEngine,
    llm: ScriptedLLM,
    db_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("tenex_tui.engine.reply_checkpoints.CANCEL_CHECK_SECONDS", 0.02)
    thread = await engine.create_thread()
    reply = llm.enqueue("kept", "dropped", hold_at=(1,))
    stream = engine.send_message(thread.id, "go")
    started = await within(anext(stream))
    await within(reply.held(1).wait())
    other = await LocalEngine.open(db_path, clock=SystemClock(), poll_interval=0.01)
    try:
        stopped = await within(other.cancel_message(thread.id, started.message_id))
        assert (stopped.status, stopped.content) == ("stopped", "kept")
        rest = await collect(stream)
        assert rest[-1].type == "message.stopped"
        assert reply.closed
    finally:
        await other.aclose()


async def test_cancel_of_a_dead_writers_reply_marks_it_stopped(
    engine: LocalEngine, llm: ScriptedLLM, db_path: Path
) -> None:
    thread = await engine.create_thread()
    reply = llm.enqueue("x", "y", hold_at=(1,))
    stream = engine.send_message(thread.id, "go")
    started = await within(anext(stream))
    await within(reply.held(1).wait())
    engine._core.lock.release()
    other = await LocalEngine.open(db_path, clock=SystemClock())
    try:
        # The reconciler at start already ended it: the writer is dead.
        message = await other.get_message(thread.id, started.message_id)
        assert message.status == "interrupted"
        assert (await other.cancel_message(thread.id, started.message_id)).status == (
            "interrupted"
        )
    finally:
        await other.aclose()
        reply.release(1)
        await asyncio.wait_for(collect(stream), 5)
