"""The start-up reconciler (T14), user stops surviving restarts (T18), writer locks."""

from __future__ import annotations

from pathlib import Path

from tenex_tui.engine.clock import SystemClock
from tenex_tui.engine.engine import LocalEngine
from tenex_tui.engine.store_events import INTERRUPTED_ERROR
from tenex_tui.engine.writer_lock import WriterLock, writer_alive
from tests.engine.conftest import collect, within
from tests.support.scripted_llm import ScriptedLLM


async def _rows(engine: LocalEngine) -> dict[str, list[tuple[object, ...]]]:
    return await engine._core.db.run(engine._core.store.workspace_rows, engine.scope)


async def test_reconciler_interrupts_dead_writers_once_and_never_regenerates(
    engine: LocalEngine, llm: ScriptedLLM, db_path: Path
) -> None:
    thread = await engine.create_thread()
    reply = llm.enqueue("partial text ", "more", hold_at=(1,))
    stream = engine.send_message(thread.id, "go")
    started = await within(anext(stream))
    await within(reply.held(1).wait())
    # Let a checkpoint store the partial text, then the writer "dies".
    await engine._core.replies[
        (engine.scope.workspace_id, started.message_id)
    ].checkpoint()
    engine._core.lock.release()

    second_llm = ScriptedLLM()
    second = await LocalEngine.open(db_path, llm=second_llm, clock=SystemClock())
    try:
        message = await second.get_message(thread.id, started.message_id)
        assert message.status == "interrupted"
        assert message.content == "partial text "
        assert message.error == INTERRUPTED_ERROR
        events = await collect(second.stream_events(thread.id, started.message_id))
        assert [e.type for e in events] == [
            "message.started",
            "message.delta",
            "message.failed",
        ]
        assert events[-1].status == "interrupted"
        assert (await second.get_thread(thread.id)).last_status == "interrupted"
        rows_after_first = await _rows(second)
    finally:
        await second.aclose()
    third_llm = ScriptedLLM()
    third = await LocalEngine.open(db_path, llm=third_llm, clock=SystemClock())
    try:
        assert await _rows(third) == rows_after_first
    finally:
        await third.aclose()
    assert second_llm.calls == third_llm.calls == []
    # The frozen writer wakes up: it finds its message ended and writes nothing.
    reply.release(1)
    rest = await collect(stream)
    assert rest[-1].terminal
    assert (
        await engine.get_message(thread.id, started.message_id)
    ).status == "interrupted"


async def test_a_live_writers_reply_is_left_alone(
    engine: LocalEngine, llm: ScriptedLLM, db_path: Path
) -> None:
    thread = await engine.create_thread()
    reply = llm.enqueue("still ", "going", hold_at=(1,))
    stream = engine.send_message(thread.id, "go")
    started = await within(anext(stream))
    await within(reply.held(1).wait())
    other = await LocalEngine.open(db_path, clock=SystemClock())
    try:
        message = await other.get_message(thread.id, started.message_id)
        assert message.status == "streaming"
    finally:
        await other.aclose()
    reply.release(1)
    assert (await collect(stream))[-1].status == "complete"


async def test_user_stop_stays_stopped_after_restart(
    engine: LocalEngine, llm: ScriptedLLM, db_path: Path
) -> None:
    thread = await engine.create_thread()
    reply = llm.enqueue("some ", "more", hold_at=(1,))
    stream = engine.send_message(thread.id, "go")
    started = await within(anext(stream))
    await within(reply.held(1).wait())
    await engine.cancel_message(thread.id, started.message_id)
    await collect(stream)
    llm.enqueue("fine")
    done = await collect(engine.send_message(thread.id, "again"))
    await engine.aclose()
    reopened = await LocalEngine.open(db_path, clock=SystemClock())
    try:
        stopped = await reopened.get_message(thread.id, started.message_id)
        assert (stopped.status, stopped.content) == ("stopped", "some ")
        complete = await reopened.get_message(thread.id, done[0].message_id)
        assert complete.status == "complete"
    finally:
        await reopened.aclose()


def test_writer_lock_tells_live_from_dead(tmp_path: Path) -> None:
    lock = WriterLock(tmp_path, "inst_a")
    assert not writer_alive(tmp_path, "inst_a")
    lock.acquire()
    assert lock.held
    assert writer_alive(tmp_path, "inst_a")
    # Probing again from this process never drops the lock (flock is per open file).
    assert writer_alive(tmp_path, "inst_a")
    lock.release()
    assert not lock.held
    assert not writer_alive(tmp_path, "inst_a")
    assert not writer_alive(tmp_path, None)
    assert not writer_alive(tmp_path, "../etc/passwd")


def test_a_stale_lock_file_means_dead(tmp_path: Path) -> None:
    (tmp_path / "inst_gone.lock").write_text("12345\n")
    assert not writer_alive(tmp_path, "inst_gone")
    assert not (tmp_path / "inst_gone.lock").exists()


async def test_lock_file_lives_as_long_as_the_engine(
    db_path: Path, llm: ScriptedLLM
) -> None:
    engine = await LocalEngine.open(db_path, llm=llm)
    lock_file = engine._core.lock.path
    assert lock_file.parent == db_path.parent / "locks"
    assert lock_file.exists()
    assert writer_alive(lock_file.parent, engine._core.lock.instance_id)
    await engine.aclose()
    assert not lock_file.exists()
