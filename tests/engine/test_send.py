"""Sending a message: what is committed, the events, and every way a reply ends."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from typing import Any

import pytest

from tenex_tui.core.errors import (
    Conflict,
    InvalidRequest,
    ModelError,
    ModelNotConfigured,
    ModelUnavailable,
    NotFound,
)
from tenex_tui.core.models import Usage
from tenex_tui.core.payloads import MAX_MESSAGE_CHARS, AttachmentInput
from tenex_tui.engine.clock import FixedClock
from tenex_tui.engine.engine import LocalEngine
from tenex_tui.engine.llm import StreamBroken
from tenex_tui.engine.replies import CUT_MESSAGE, MAX_REPLY_BYTES
from tests.engine.conftest import collect, text_of, within
from tests.support.scripted_llm import ScriptedLLM, ToolFragment


async def _stored_events(
    engine: LocalEngine, thread_id: str, message_id: str
) -> list[str]:
    return [e.id for e in await collect(engine.stream_events(thread_id, message_id))]


async def test_a_reply_streams_and_completes(
    engine: LocalEngine, llm: ScriptedLLM
) -> None:
    thread = await engine.create_thread(title="t")
    llm.enqueue("Hel", "lo", usage=Usage(prompt_tokens=7, completion_tokens=2))
    events = await collect(engine.send_message(thread.id, "hi"))
    types = [e.type for e in events]
    assert types == [
        "message.started",
        "message.delta",
        "message.delta",
        "message.completed",
    ]
    started, *_, done = events
    assert started.user_message is not None and started.user_message.content == "hi"
    assert started.message is not None and started.message.status == "streaming"
    message_id = started.message_id
    assert all(e.message_id == message_id for e in events)
    assert [e.id for e in events] == [f"{message_id}.{n}" for n in range(1, 5)]
    assert text_of(events) == "Hello"
    assert done.status == "complete"
    assert done.usage == Usage(prompt_tokens=7, completion_tokens=2)
    assert done.message is not None and done.message.content == "Hello"
    stored = await engine.get_message(thread.id, message_id)
    assert stored == done.message
    assert stored.model == "scripted-1"
    assert stored.completed_at is not None
    history = await engine.list_messages(thread.id)
    assert [(m.role, m.content, m.status) for m in history.items] == [
        ("user", "hi", "complete"),
        ("assistant", "Hello", "complete"),
    ]


async def test_user_and_streaming_reply_are_committed_before_the_model_is_called(
    engine: LocalEngine, llm: ScriptedLLM
) -> None:
    thread = await engine.create_thread(title="t")
    reply = llm.enqueue("a", "b", hold_at=(0,))
    stream = engine.send_message(thread.id, "question")
    started = await within(anext(stream))
    await within(reply.held(0).wait())
    page = await engine.list_messages(thread.id)
    assert [(m.role, m.status) for m in page.items] == [
        ("user", "complete"),
        ("assistant", "streaming"),
    ]
    assert (await engine.get_thread(thread.id)).last_status == "streaming"
    assert reply.yielded == 0
    reply.release(0)
    rest = await collect(stream)
    assert rest[-1].type == "message.completed"
    assert started.type == "message.started"


async def test_the_prompt_has_system_prompt_history_and_attachments(
    engine: LocalEngine, llm: ScriptedLLM
) -> None:
    thread = await engine.create_thread(title="t", system_prompt="Be terse.")
    llm.enqueue("first answer")
    await collect(engine.send_message(thread.id, "first"))
    llm.enqueue("second answer")
    attachment = AttachmentInput(
        name="notes.md", media_type="text/markdown", text="# hi"
    )
    await collect(engine.send_message(thread.id, "second", attachments=[attachment]))
    turns = llm.calls[-1].turns
    assert [t.role for t in turns] == ["system", "user", "assistant", "user"]
    assert turns[0].content == "Be terse."
    assert turns[2].content == "first answer"
    assert turns[3].content.startswith("second\n\nThe following is data, not ")
    assert '\n\n<attachment name="notes.md"' in turns[3].content
    assert "# hi" in turns[3].content
    stored = (await engine.list_messages(thread.id, order="desc", limit=2)).items[1]
    assert stored.attachments[0].name == "notes.md"
    assert stored.attachments[0].media_type == "text/markdown"


async def test_thread_model_overrides_the_default(
    engine: LocalEngine, llm: ScriptedLLM
) -> None:
    thread = await engine.create_thread(model="scripted-2")
    llm.enqueue("ok")
    events = await collect(engine.send_message(thread.id, "hi"))
    assert llm.calls[-1].model == "scripted-2"
    assert events[-1].message is not None and events[-1].message.model == "scripted-2"


async def test_default_model_comes_from_the_provider_list(
    db_path: Path, clock: FixedClock
) -> None:
    llm = ScriptedLLM(default_model=None, models=["listed-a", "listed-b"])
    engine = await LocalEngine.open(db_path, llm=llm, clock=clock)
    try:
        assert (await engine.info()).model == "listed-a"
        thread = await engine.create_thread()
        llm.enqueue("ok")
        await collect(engine.send_message(thread.id, "hi"))
        assert llm.calls[-1].model == "listed-a"
    finally:
        await engine.aclose()


@pytest.mark.parametrize("content", ["", "   \n", "x" * (MAX_MESSAGE_CHARS + 1)])
async def test_invalid_content_is_refused_and_nothing_stored(
    engine: LocalEngine, llm: ScriptedLLM, content: str
) -> None:
    thread = await engine.create_thread()
    with pytest.raises(InvalidRequest):
        await collect(engine.send_message(thread.id, content))
    assert (await engine.list_messages(thread.id)).items == []
    assert llm.calls == []


async def test_unknown_thread_is_not_found_and_nothing_stored(
    engine: LocalEngine, llm: ScriptedLLM
) -> None:
    with pytest.raises(NotFound):
        await collect(engine.send_message("thr_missing", "hello"))
    assert llm.calls == []


async def test_without_a_model_nothing_is_stored(
    db_path: Path, clock: FixedClock
) -> None:
    engine = await LocalEngine.open(db_path, clock=clock)
    try:
        thread = await engine.create_thread()
        with pytest.raises(ModelNotConfigured):
            await collect(engine.send_message(thread.id, "hello"))
        with pytest.raises(ModelNotConfigured):
            await collect(engine.regenerate(thread.id))
        with pytest.raises(ModelNotConfigured):
            await engine.list_models()
        assert (await engine.list_messages(thread.id)).items == []
        info = await engine.info()
        assert info.model is None
        assert info.model_problem is not None and "OPENAI_API_KEY" in info.model_problem
    finally:
        await engine.aclose()


async def test_a_second_send_while_streaming_conflicts(
    engine: LocalEngine, llm: ScriptedLLM
) -> None:
    thread = await engine.create_thread()
    reply = llm.enqueue("slow", hold_at=(0,))
    stream = engine.send_message(thread.id, "one")
    await within(anext(stream))
    with pytest.raises(Conflict):
        await collect(engine.send_message(thread.id, "two"))
    other = await engine.create_thread()
    llm.enqueue("parallel")
    assert (await collect(engine.send_message(other.id, "elsewhere")))[
        -1
    ].status == "complete"
    reply.release(0)
    await collect(stream)
    assert len((await engine.list_messages(thread.id)).items) == 2


async def test_leaving_the_iteration_detaches_and_the_reply_finishes(
    engine: LocalEngine, llm: ScriptedLLM
) -> None:
    thread = await engine.create_thread()
    reply = llm.enqueue("one", "two", "three", hold_at=(1,))
    stream = engine.send_message(thread.id, "go")
    started = await within(anext(stream))
    await within(reply.held(1).wait())
    await stream.aclose()
    reply.release(1)
    events = await collect(engine.stream_events(thread.id, started.message_id))
    assert events[-1].status == "complete"
    message = await engine.get_message(thread.id, started.message_id)
    assert message.content == "onetwothree"
    assert not reply.closed


async def test_cancel_keeps_partial_text_and_closes_the_model_stream(
    engine: LocalEngine, llm: ScriptedLLM
) -> None:
    thread = await engine.create_thread()
    reply = llm.enqueue("par", "tial", "never", hold_at=(2,))
    stream = engine.send_message(thread.id, "go")
    started = await within(anext(stream))
    await within(reply.held(2).wait())
    stopped = await engine.cancel_message(thread.id, started.message_id)
    assert stopped.status == "stopped"
    assert stopped.content == "partial"
    assert reply.closed
    rest = await collect(stream)
    assert rest[-1].type == "message.stopped"
    assert rest[-1].status == "stopped"
    assert text_of(rest) == "partial"
    again = await engine.cancel_message(thread.id, started.message_id)
    assert again == stopped
    assert (await engine.get_thread(thread.id)).last_status == "stopped"


async def test_cancel_of_unknown_or_finished_message(
    engine: LocalEngine, llm: ScriptedLLM
) -> None:
    thread = await engine.create_thread()
    with pytest.raises(NotFound):
        await engine.cancel_message(thread.id, "msg_missing")
    llm.enqueue("done")
    events = await collect(engine.send_message(thread.id, "hi"))
    finished = await engine.cancel_message(thread.id, events[0].message_id)
    assert finished.status == "complete"


async def test_a_broken_stream_ends_interrupted_with_partial_text(
    engine: LocalEngine, llm: ScriptedLLM
) -> None:
    thread = await engine.create_thread()
    llm.enqueue(
        "half",
        " way",
        "lost",
        error=StreamBroken("connection to model lost after 2 chunks"),
        error_at=2,
    )
    events = await collect(engine.send_message(thread.id, "go"))
    done = events[-1]
    assert done.type == "message.failed"
    assert done.status == "interrupted"
    assert done.error == "connection to model lost after 2 chunks"
    message = await engine.get_message(thread.id, done.message_id)
    assert (message.status, message.content) == ("interrupted", "half way")
    assert message.error == done.error


async def test_a_stream_that_ends_without_finishing_is_interrupted(
    engine: LocalEngine, llm: ScriptedLLM
) -> None:
    thread = await engine.create_thread()
    llm.enqueue("ten", "deltas", finish=False)
    events = await collect(engine.send_message(thread.id, "go"))
    assert events[-1].status == "interrupted"
    assert (
        await engine.get_message(thread.id, events[0].message_id)
    ).content == "tendeltas"


async def test_a_provider_error_ends_error_with_redacted_message(
    engine: LocalEngine, llm: ScriptedLLM
) -> None:
    thread = await engine.create_thread()
    llm.enqueue(
        "x",
        error=ModelError(
            "401: bad key sk-proj-abcdefghijklmnop1234 (Bearer tnx_abc_secretsecret)"
        ),
        error_at=1,
    )
    events = await collect(engine.send_message(thread.id, "go"))
    done = events[-1]
    assert (done.type, done.status) == ("message.failed", "error")
    assert done.error is not None
    assert "abcdefghijklmnop1234" not in done.error
    assert "secretsecret" not in done.error
    stored = await engine.get_message(thread.id, done.message_id)
    assert stored.error == done.error


async def test_an_unreachable_model_keeps_the_user_message(
    engine: LocalEngine, llm: ScriptedLLM
) -> None:
    thread = await engine.create_thread()
    llm.enqueue(error=ModelUnavailable("cannot reach http://127.0.0.1:9/v1"))
    events = await collect(engine.send_message(thread.id, "are you there?"))
    assert events[-1].status == "error"
    page = await engine.list_messages(thread.id)
    assert [(m.role, m.status, m.content) for m in page.items] == [
        ("user", "complete", "are you there?"),
        ("assistant", "error", ""),
    ]


async def test_an_unexpected_adapter_exception_ends_error(
    engine: LocalEngine, llm: ScriptedLLM
) -> None:
    thread = await engine.create_thread()
    llm.enqueue("a", error=RuntimeError("boom"), error_at=1)
    events = await collect(engine.send_message(thread.id, "go"))
    assert events[-1].status == "error"
    assert events[-1].error is not None and "boom" in events[-1].error


async def test_reply_is_cut_at_one_mebibyte(
    engine: LocalEngine, llm: ScriptedLLM
) -> None:
    thread = await engine.create_thread()
    chunk = "é" * 100_000  # 200,000 bytes
    reply = llm.enqueue(*([chunk] * 8))
    events = await collect(engine.send_message(thread.id, "go"))
    done = events[-1]
    assert (done.status, done.error) == ("error", CUT_MESSAGE)
    message = await engine.get_message(thread.id, done.message_id)
    assert len(message.content.encode()) <= MAX_REPLY_BYTES
    assert len(message.content.encode()) > MAX_REPLY_BYTES - 2
    assert message.content == text_of(events)
    assert reply.closed


async def test_tool_calls_are_recorded_as_envelopes_and_bad_ones_never_run(
    engine: LocalEngine, llm: ScriptedLLM
) -> None:
    # The tool loop's own tests are in test_tool_loop.py; this is the envelope record.
    thread = await engine.create_thread()
    llm.enqueue(
        "Let me look.",
        ToolFragment(0, id="call_a", name="search_knowledge", arguments='{"q"'),
        ToolFragment(0, id="call_a", name="search_knowledge", arguments=': "pricing"}'),
        ToolFragment(1, id="call_b", name="read_lead", arguments="{not json"),
    )
    llm.enqueue("Neither call could run.")
    events = await collect(engine.send_message(thread.id, "go"))
    calls = [e.tool_call for e in events if e.type == "message.tool_call"]
    assert [(c.id, c.status) for c in calls if c is not None][:2] == [
        ("call_a", "requested"),
        ("call_b", "requested"),
    ]
    assert events[-1].status == "complete"
    message = await engine.get_message(thread.id, events[0].message_id)
    by_id = {c.id: c for c in message.tool_calls}
    assert by_id["call_a"].arguments == {"q": "pricing"}
    assert by_id["call_a"].status == "failed"
    assert "'query' is required" in (by_id["call_a"].error or "")
    assert by_id["call_b"].status == "failed"
    assert by_id["call_b"].raw_arguments == "{not json"
    assert by_id["call_b"].error
    assert message.content == "Let me look.\n\nNeither call could run."
    tool_turns = [t for t in llm.calls[-1].turns if t.role == "tool"]
    assert [t.tool_call_id for t in tool_turns] == ["call_a", "call_b"]
    assert all(t.content.startswith("error: ") for t in tool_turns)


async def test_a_tool_call_cut_off_by_a_drop_is_never_runnable(
    engine: LocalEngine, llm: ScriptedLLM
) -> None:
    thread = await engine.create_thread()
    fragments = [ToolFragment(0, id="c1", name="delete_thread", arguments='{"id":')]
    fragments += [ToolFragment(0, arguments=f'"{i}') for i in range(6)]
    llm.enqueue(*fragments, error=StreamBroken("connection lost"), error_at=7)
    events = await collect(engine.send_message(thread.id, "go"))
    assert events[-1].status == "interrupted"
    message = await engine.get_message(thread.id, events[0].message_id)
    assert [c.status for c in message.tool_calls] == ["failed"]
    assert message.tool_calls[0].arguments == {}


async def test_client_request_id_makes_a_resend_follow_the_first_reply(
    engine: LocalEngine, llm: ScriptedLLM
) -> None:
    thread = await engine.create_thread()
    reply = llm.enqueue("only", " once", hold_at=(1,))
    first = engine.send_message(thread.id, "hi", client_request_id="req-1")
    second = engine.send_message(thread.id, "hi", client_request_id="req-1")
    first_started, second_started = await within(
        asyncio.gather(anext(first), anext(second))
    )
    assert first_started.message_id == second_started.message_id
    reply.release(1)
    a, b = await within(asyncio.gather(collect(first), collect(second)))
    assert text_of([first_started, *a]) == text_of([second_started, *b]) == "only once"
    assert len(llm.calls) == 1
    page = await engine.list_messages(thread.id)
    assert [m.role for m in page.items] == ["user", "assistant"]
    third = await collect(
        engine.send_message(thread.id, "hi", client_request_id="req-1")
    )
    assert third[0].type == "message.started"
    assert text_of(third) == "only once"
    assert len(llm.calls) == 1


async def test_same_request_id_in_another_thread_is_a_new_send(
    engine: LocalEngine, llm: ScriptedLLM
) -> None:
    one, two = await engine.create_thread(), await engine.create_thread()
    llm.enqueue("a")
    llm.enqueue("b")
    await collect(engine.send_message(one.id, "hi", client_request_id="same"))
    await collect(engine.send_message(two.id, "hi", client_request_id="same"))
    assert len(llm.calls) == 2


async def test_a_caller_cancelled_mid_start_still_leaves_a_finished_reply(
    engine: LocalEngine, llm: ScriptedLLM, monkeypatch: pytest.MonkeyPatch
) -> None:
    thread = await engine.create_thread()
    llm.enqueue("survives")
    store = engine._core.store
    real_start = store.start_send
    entered, go = threading.Event(), threading.Event()

    def slow_start(*args: Any, **kwargs: Any) -> Any:
        entered.set()
        go.wait(5)
        return real_start(*args, **kwargs)

    monkeypatch.setattr(store, "start_send", slow_start)

    async def consume() -> None:
        async for _ in engine.send_message(thread.id, "go"):
            pass

    task = asyncio.create_task(consume())
    assert await asyncio.to_thread(entered.wait, 5)
    task.cancel()
    go.set()
    with pytest.raises(asyncio.CancelledError):
        await task
    message_id = None
    async with asyncio.timeout(5):
        while message_id is None:
            page = await engine.list_messages(thread.id)
            message_id = page.items[-1].id if page.items else None
    events = await collect(engine.stream_events(thread.id, message_id))
    assert events[-1].status == "complete"
    assert text_of(events) == "survives"


async def test_aclose_stops_live_replies(db_path: Path, clock: FixedClock) -> None:
    llm = ScriptedLLM()
    engine = await LocalEngine.open(
        db_path, llm=llm, clock=clock, checkpoint_interval=0.01
    )
    thread = await engine.create_thread()
    reply = llm.enqueue("before", "after", hold_at=(1,))
    stream = engine.send_message(thread.id, "go")
    started = await within(anext(stream))
    await within(reply.held(1).wait())
    await within(engine.aclose())
    assert llm.closed
    assert reply.closed
    reopened = await LocalEngine.open(db_path, clock=clock)
    try:
        message = await reopened.get_message(thread.id, started.message_id)
        assert (message.status, message.content) == ("stopped", "before")
    finally:
        await reopened.aclose()


async def test_info_warms_the_adapter_once(
    engine: LocalEngine, llm: ScriptedLLM
) -> None:
    info = await engine.info()
    await engine.info()
    await asyncio.sleep(0)
    assert (info.kind, info.workspace, info.model, info.read_only) == (
        "local",
        "Local",
        "scripted-1",
        False,
    )
    assert llm.warm_calls == 1
    assert await engine.list_models() == ["scripted-1", "scripted-2"]
    slugs = [a.slug for a in await engine.list_agents()]
    assert slugs[0] == "assistant" and "lead-triage" in slugs


async def test_info_reports_an_unreachable_provider(
    db_path: Path, clock: FixedClock
) -> None:
    llm = ScriptedLLM(
        default_model=None, list_error=ModelUnavailable("connection refused")
    )
    engine = await LocalEngine.open(db_path, llm=llm, clock=clock)
    try:
        info = await engine.info()
        assert info.model is None
        assert (
            info.model_problem is not None
            and "connection refused" in info.model_problem
        )
    finally:
        await engine.aclose()


async def test_checkpoints_store_text_while_streaming(
    engine: LocalEngine, llm: ScriptedLLM
) -> None:
    thread = await engine.create_thread()
    reply = llm.enqueue("a" * 5000, "b", hold_at=(1,))
    stream = engine.send_message(thread.id, "go")
    started = await within(anext(stream))
    await within(reply.held(1).wait())
    # 4 KiB pending forces a checkpoint without waiting for the interval.
    async with asyncio.timeout(5):
        while True:
            message = await engine.get_message(thread.id, started.message_id)
            if message.content:
                break
            await asyncio.sleep(0.005)
    assert message.status == "streaming"
    assert message.content == "a" * 5000
    reply.release(1)
    await collect(stream)
