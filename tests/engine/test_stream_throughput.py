"""Streaming throughput: merged deltas, warm-up, the SDK request body, batched checkpoints.

The adapter merges the text of every chunk that arrived in one network read into one
`TextDelta`; the engine stores one event per delta, so resume-by-event-id stays exact
over merged deltas (checked here through the real SDK path and a real database). The
engine's `CheckpointBatcher` writes every live reply's checkpoint in one transaction.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tenex_tui.core.errors import ModelError, StorageBusy
from tenex_tui.core.events import StreamEvent
from tenex_tui.engine.clock import FixedClock, SystemClock
from tenex_tui.engine.engine import LocalEngine
from tenex_tui.engine.llm import ChatTurn, Finished, TextDelta
from tenex_tui.engine.openai_adapter import OpenAICompatibleAdapter
from tenex_tui.engine.openai_stream import StallWatch
from tenex_tui.engine.reply_checkpoints import CheckpointBatcher
from tests.engine.conftest import WAIT, collect, text_of, within
from tests.support.fake_llm import FakeLLMServer, Script
from tests.support.scripted_llm import ScriptedLLM

HELLO = [ChatTurn("user", "hello")]


@pytest.fixture
async def fake() -> AsyncIterator[FakeLLMServer]:
    async with FakeLLMServer() as server:
        yield server


@pytest.fixture
async def adapter(fake: FakeLLMServer) -> AsyncIterator[OpenAICompatibleAdapter]:
    made = OpenAICompatibleAdapter(base_url=fake.base_url, api_key=None)
    yield made
    await made.aclose()


# -- the adapter -------------------------------------------------------------------


async def test_chunks_of_one_read_become_one_delta_with_the_same_text(
    fake: FakeLLMServer, adapter: OpenAICompatibleAdapter
) -> None:
    # 640 chunks written 64 per socket write: far fewer deltas, byte-identical text.
    fake.enqueue(Script.full_speed(640, token="t\u00e9 ", batch=64))
    events = [e async for e in adapter.stream(HELLO, model="m")]
    deltas = [e.text for e in events if isinstance(e, TextDelta)]
    assert "".join(deltas) == "t\u00e9 " * 640
    # At most ~one per socket write (however TCP splits them), often fewer: what
    # arrived together while the consumer was busy is one delta.
    assert 1 <= len(deltas) <= 640 // 64 * 2
    assert isinstance(events[-1], Finished)


async def test_chunks_sent_one_per_write_stay_separate_deltas(
    fake: FakeLLMServer, adapter: OpenAICompatibleAdapter
) -> None:
    fake.enqueue(Script.text("a", "b", "c", chunk_delay=0.01))
    deltas = [
        e.text
        async for e in adapter.stream(HELLO, model="m")
        if isinstance(e, TextDelta)
    ]
    assert deltas == ["a", "b", "c"]


async def test_text_before_an_error_object_is_yielded_before_the_error(
    fake: FakeLLMServer, adapter: OpenAICompatibleAdapter
) -> None:
    # Role chunk, two text chunks, then an error object (often in the same read).
    fake.enqueue(Script.text("kept ", "too", error_after=3, batch=64))
    seen: list[str] = []

    async def read() -> None:
        async for event in adapter.stream(HELLO, model="m"):
            if isinstance(event, TextDelta):
                seen.append(event.text)

    with pytest.raises(ModelError, match="failed mid-reply"):
        await read()
    assert "".join(seen) == "kept too"


async def test_the_request_body_is_sent_as_built_with_the_sdk_fields(
    fake: FakeLLMServer, adapter: OpenAICompatibleAdapter
) -> None:
    # The body rides in extra_body (skipping the SDK's rewrite); the wire is unchanged.
    turns = [ChatTurn("system", "s"), *[ChatTurn("user", f"u{i}") for i in range(30)]]
    fake.enqueue(Script.reply("ok"))
    _ = [e async for e in adapter.stream(turns, model="big-model")]
    body = fake.chat_requests[0].body
    assert body["model"] == "big-model"
    assert body["stream"] is True
    assert body["messages"] == [{"role": "system", "content": "s"}] + [
        {"role": "user", "content": f"u{i}"} for i in range(30)
    ]
    assert list(body)[:3] == ["model", "stream", "messages"]


def test_warm_imports_what_the_first_request_would_import_on_the_loop(
    tmp_path: Path,
) -> None:
    # A fresh interpreter: after warm(), a first request imports no module at all.
    code = """
import asyncio, json, sys
from tenex_tui.engine.openai_adapter import OpenAICompatibleAdapter
from tests.support.fake_llm import FakeLLMServer, Script
from tenex_tui.engine.llm import ChatTurn

async def main():
    async with FakeLLMServer() as fake:
        fake.enqueue(Script.reply("hi there"))
        adapter = OpenAICompatibleAdapter(base_url=fake.base_url, api_key=None)
        await adapter.warm()
        before = set(sys.modules)
        _ = [e async for e in adapter.stream([ChatTurn("user", "x")], model="m")]
        await adapter.aclose()
        print(json.dumps(sorted(set(sys.modules) - before)))

asyncio.run(main())
"""
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []


async def test_the_stall_watch_cancels_only_a_wait_that_lasted_its_time() -> None:
    loop = asyncio.get_running_loop()
    watch = StallWatch(0.05)
    try:
        # Between reads (not waiting) nothing fires, however long it takes.
        gate = loop.create_future()
        loop.call_later(0.12, gate.set_result, None)
        await gate
        watch.waiting()
        watch.idle()
        # A wait that lasts past the idle time is cancelled, and recognised as such.
        watch.waiting()
        with pytest.raises(asyncio.CancelledError):
            await asyncio.wait_for(loop.create_future(), WAIT)
        assert watch.timed_out()
        assert not watch.timed_out()  # once
    finally:
        watch.close()


async def test_an_outside_cancel_is_not_taken_for_a_stall() -> None:
    async def reader() -> None:
        watch = StallWatch(30)
        try:
            watch.waiting()
            try:
                await asyncio.get_running_loop().create_future()
            except asyncio.CancelledError:
                assert not watch.timed_out()
                raise
        finally:
            watch.close()

    task = asyncio.ensure_future(reader())
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await within(task)


# -- the engine over the real adapter: merged deltas resume exactly ----------------


async def test_merged_deltas_resume_exactly_from_every_event_id(
    fake: FakeLLMServer, db_path: Path
) -> None:
    adapter = OpenAICompatibleAdapter(
        base_url=fake.base_url, api_key=None, default_model="m"
    )
    engine = await LocalEngine.open(
        db_path, llm=adapter, clock=FixedClock(), checkpoint_interval=0.01
    )
    try:
        thread = await engine.create_thread()
        fake.enqueue(Script.full_speed(1280, token="w ", batch=64))
        live = await collect(engine.send_message(thread.id, "go"))
        deltas = [e for e in live if e.type == "message.delta"]
        assert text_of(live) == "w " * 1280
        assert len(deltas) < 1280 // 8  # merged: one event per read, not per chunk
        message = await engine.get_message(thread.id, live[0].message_id)
        assert message.content == "w " * 1280
        # Resuming after any event gives exactly the rest: no gap, no duplicate.
        ids = [e.id for e in live]
        for position in (0, 1, len(ids) // 2, len(ids) - 2):
            rest = await collect(
                engine.stream_events(thread.id, live[0].message_id, after=ids[position])
            )
            assert [e.id for e in rest] == ids[position + 1 :]
            assert [e.delta for e in rest] == [e.delta for e in live[position + 1 :]]
    finally:
        await engine.aclose()


# -- batched checkpoints -----------------------------------------------------------


async def test_live_replies_are_checkpointed_together_in_one_transaction(
    db_path: Path,
) -> None:
    llm = ScriptedLLM()
    engine = await LocalEngine.open(
        db_path, llm=llm, clock=FixedClock(), checkpoint_interval=0.3
    )
    try:
        replies, streams, message_ids, threads = [], [], [], []
        for index in range(6):
            thread = await engine.create_thread(title=f"t{index}")
            reply = llm.enqueue(f"part{index} ", "end", hold_at=(1,))
            stream = engine.send_message(thread.id, "go")
            started = await within(anext(stream))
            await within(reply.held(1).wait())
            replies.append(reply)
            streams.append(stream)
            message_ids.append(started.message_id)
            threads.append(thread.id)
        batcher = engine._core.checkpoints
        assert isinstance(batcher, CheckpointBatcher)
        lives = [
            engine._core.replies[(engine.scope.workspace_id, m)] for m in message_ids
        ]
        await within(batcher.wait_for(lambda: all(live.pending == 0 for live in lives)))
        contents = [
            (await engine.get_message(t, m)).content
            for t, m in zip(threads, message_ids, strict=True)
        ]
        assert contents == [f"part{i} " for i in range(6)]
        # Six replies' first deltas took fewer batches than replies: they were shared.
        assert 1 <= batcher.batches < 6
        for reply in replies:
            reply.release(1)
        for stream, index in zip(streams, range(6), strict=True):
            events = await collect(stream)
            assert events[-1].status == "complete"
            assert events[-1].message is not None
            assert events[-1].message.content == f"part{index} end"
    finally:
        await engine.aclose()


async def test_a_failed_batch_keeps_every_reply_pending_and_saves_it_later(
    db_path: Path,
) -> None:
    from tests.reliability.test_store_concurrency import LockHolder

    llm = ScriptedLLM()
    engine = await LocalEngine.open(
        db_path,
        llm=llm,
        clock=SystemClock(),
        checkpoint_interval=0.01,
        busy_timeout_ms=50,
    )
    try:
        threads, lives, replies, streams = [], [], [], []
        for index in range(3):
            thread = await engine.create_thread(title=f"t{index}")
            reply = llm.enqueue("x", f"y{index}", "z", hold_at=(1, 2))
            stream = engine.send_message(thread.id, "go")
            started = await within(anext(stream))
            await within(reply.held(1).wait())
            key = (engine.scope.workspace_id, started.message_id)
            threads.append((thread.id, started.message_id))
            lives.append(engine._core.replies[key])
            replies.append(reply)
            streams.append(stream)
        batcher = engine._core.checkpoints
        assert isinstance(batcher, CheckpointBatcher)
        holder = LockHolder(db_path)
        try:
            for reply in replies:
                reply.release(1)
                await within(reply.held(2).wait())

            await within(
                batcher.wait_for(
                    lambda: all(
                        isinstance(live.save_error, StorageBusy) for live in lives
                    )
                )
            )
        finally:
            holder.release()
        await within(
            batcher.wait_for(
                lambda: all(
                    live.pending == 0 and live.save_error is None for live in lives
                )
            )
        )
        contents = [(await engine.get_message(t, m)).content for t, m in threads]
        assert contents == [f"xy{i}" for i in range(3)]
        assert all(live.save_error is None for live in lives)
        for reply in replies:
            reply.release(2)
        for stream, index in zip(streams, range(3), strict=True):
            events = await collect(stream)
            assert events[-1].message is not None
            assert events[-1].message.content == f"xy{index}z"
    finally:
        await engine.aclose()


async def test_delta_events_equal_validated_events(
    engine: LocalEngine, llm: ScriptedLLM
) -> None:
    thread = await engine.create_thread()
    llm.enqueue("one", "two")
    events = await collect(engine.send_message(thread.id, "go"))
    for event in events:
        again = StreamEvent.model_validate(event.model_dump())
        assert again == event
        assert again.to_json() == event.to_json()


# -- the text fast path of the reply assembler --------------------------------------


@pytest.mark.parametrize(
    ("chunk", "text"),
    [
        ({"choices": [{"index": 0, "delta": {"content": "hi"}}]}, "hi"),
        ({"choices": [{"delta": {"content": "hi"}, "finish_reason": None}]}, "hi"),
        ({"choices": [{"delta": {"role": "assistant", "content": ""}}]}, ""),
        ({"choices": [{"delta": {"content": "x"}, "finish_reason": "stop"}]}, None),
        ({"choices": [{"index": 1, "delta": {"content": "other"}}]}, None),
        ({"choices": [{"delta": {"content": "x", "tool_calls": []}}]}, None),
        ({"choices": [{"delta": {"content": "x", "refusal": None}}]}, None),
        ({"choices": [{"delta": {"content": None}}]}, None),
        ({"choices": [], "usage": {"prompt_tokens": 1}}, None),
        (
            {"choices": [{"delta": {"content": "x"}}], "usage": {"prompt_tokens": 1}},
            None,
        ),
        ({"choices": [{"delta": {"content": "a"}}, {"delta": {"content": "b"}}]}, None),
    ],
)
def test_the_text_fast_path_takes_plain_text_chunks_only(
    chunk: dict[str, object], text: str | None
) -> None:
    from tenex_tui.engine.openai_stream import ReplyAssembler

    fast, slow = ReplyAssembler(), ReplyAssembler()
    assert fast.feed_text(chunk) == text
    if text is not None:
        # Whatever it takes, the full path would have produced the same.
        events = list(slow.feed(chunk))
        assert "".join(e.text for e in events if isinstance(e, TextDelta)) == text
        assert fast.has_output == slow.has_output
        assert fast.finished() == slow.finished()
