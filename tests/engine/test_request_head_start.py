"""A new reply's first event waits (briefly) for its model request to leave the process.

Whatever a caller does on `message.started` (the app mounts views on the event loop the
engine shares) would otherwise run before the request is written, and delay the first
token by as much. Adapters that say when their request is on the wire
(`announces_requests`, `request_signal.request_sent()`) hold the first event until
then; a bounded wait keeps a silent one from holding it for long.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import httpx2
import pytest

from tenex_tui.engine import engine_replies, request_signal
from tenex_tui.engine.engine import LocalEngine
from tenex_tui.engine.llm import ChatTurn, LLMEvent, ToolSpec
from tenex_tui.engine.openai_transport import StreamingTransport
from tests.engine.conftest import collect, within
from tests.support.fake_llm import FakeLLMServer, Script
from tests.support.scripted_llm import ScriptedLLM

TURNS = 50
"""Event-loop turns given to a task that must NOT finish (bounded, no sleeping)."""


class AnnouncingLLM(ScriptedLLM):
    """A scripted model that says its request left only when the test lets it."""

    announces_requests = True

    def __init__(self, *, announce: bool = True) -> None:
        super().__init__()
        self.send = asyncio.Event()
        self.announce = announce

    def stream(
        self,
        turns: Sequence[ChatTurn],
        *,
        model: str,
        tools: Sequence[ToolSpec] = (),
    ) -> AsyncIterator[LLMEvent]:
        inner = super().stream(turns, model=model, tools=tools)

        async def sent_then_played() -> AsyncIterator[LLMEvent]:
            await self.send.wait()
            if self.announce:
                request_signal.request_sent()
            async for item in inner:
                yield item

        return sent_then_played()


async def _turns(task: asyncio.Future[object]) -> bool:
    for _ in range(TURNS):
        if task.done():
            return True
        await asyncio.sleep(0)
    return task.done()


async def test_the_first_event_waits_until_the_request_is_sent(db_path: Path) -> None:
    llm = AnnouncingLLM()
    llm.enqueue("hi")
    engine = await LocalEngine.open(db_path, llm=llm)
    try:
        thread = await engine.create_thread(title="t")
        stream = engine.send_message(thread.id, "go")
        first = asyncio.ensure_future(anext(stream))
        assert not await _turns(first)  # the request is not out yet
        llm.send.set()
        started = await within(first)
        assert started.type == "message.started"
        events = await collect(stream)
        assert events[-1].type == "message.completed"
    finally:
        await engine.aclose()


async def test_a_silent_adapter_holds_the_first_event_only_briefly(
    db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(engine_replies, "REQUEST_HEAD_START", 0.05)
    llm = AnnouncingLLM(announce=False)  # claims to announce, never does
    llm.enqueue("hi")
    engine = await LocalEngine.open(db_path, llm=llm)
    try:
        thread = await engine.create_thread(title="t")
        stream = engine.send_message(thread.id, "go")
        started = await within(anext(stream))  # after the 50 ms cap, not never
        assert started.type == "message.started"
        llm.send.set()
        assert (await collect(stream))[-1].type == "message.completed"
    finally:
        await engine.aclose()


async def test_a_reply_that_fails_before_sending_does_not_hold_its_first_event(
    db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Nothing queued: the scripted model fails at once, before any request. The
    # first event must not wait for a request that will never be sent.
    monkeypatch.setattr(engine_replies, "REQUEST_HEAD_START", 60.0)
    llm = AnnouncingLLM(announce=False)
    llm.send.set()
    engine = await LocalEngine.open(db_path, llm=llm)
    try:
        thread = await engine.create_thread(title="t")
        events = await collect(engine.send_message(thread.id, "go"))
        assert [e.type for e in events] == ["message.started", "message.failed"]
    finally:
        await engine.aclose()


async def test_the_lean_transport_announces_its_request_once_written() -> None:
    server = FakeLLMServer(default_script=lambda _body: Script.reply("ok"))
    base = await server.start()
    transport = StreamingTransport()
    announced: list[int] = []
    try:
        request_signal.listen(lambda: announced.append(server.chat_request_count))
        request = httpx2.Request(
            "POST",
            f"{base}/chat/completions",
            json={"model": "m", "stream": True, "messages": []},
        )
        response = await within(transport.handle_async_request(request))
        await within(response.aread())
        assert response.status_code == 200
        assert len(announced) == 1
    finally:
        await transport.aclose()
        await server.stop()
