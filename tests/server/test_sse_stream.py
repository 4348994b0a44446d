"""The lean SSE response, the stream-friendly access log and the key check of streams.

`EventStream` replaced sse-starlette's response on the hot path: these tests pin what it
must keep doing (framing, pings only when idle, detaching on disconnect, ending every
open stream cleanly when the server shuts down), and the cheaper access log and
revocation check that every event passes through.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from tenex_tui.core.events import StreamEvent
from tenex_tui.server.auth import Authenticator, AuthScope
from tenex_tui.server.routes import API_PREFIX, ServerConfig
from tenex_tui.server.streaming import PING, EventStream, StreamRegistry, event_frame
from tests.support.server_fixture import Stack, serve_stack

CHAT = API_PREFIX
WAIT = 10.0


def client_for(stack: Stack, name: str = "a1") -> httpx.AsyncClient:
    return httpx.AsyncClient(
        base_url=stack.base_url,
        headers={
            "Authorization": f"Bearer {stack.keys[name].reveal()}",
            "Accept": "text/event-stream",
        },
        timeout=WAIT,
    )


async def blocks(response: httpx.Response) -> AsyncIterator[str]:
    buffer = ""
    async for text in response.aiter_text():
        buffer += text
        while "\n\n" in buffer:
            block, buffer = buffer.split("\n\n", 1)
            yield block


def test_an_event_frame_is_id_event_and_one_data_line_of_its_json() -> None:
    event = StreamEvent(
        id="msg_1.7",
        type="message.delta",
        message_id="msg_1",
        thread_id="thr_1",
        delta="two\nlines\r\nand \u2028 more",
    )
    frame = event_frame(event)
    assert frame.endswith(b"\n\n")
    lines = frame[:-2].split(b"\n")
    assert lines[0] == b"id: msg_1.7"
    assert lines[1] == b"event: message.delta"
    assert len(lines) == 3 and lines[2].startswith(b"data: ")
    assert b"\r" not in frame
    assert json.loads(lines[2][6:]) == event.to_wire()


async def test_the_server_shutting_down_ends_open_streams_cleanly_and_at_once(
    tmp_path: Path,
) -> None:
    # A long graceful timeout would show: the stream must end because of the
    # shutdown, not because uvicorn gave up on it.
    async with serve_stack(tmp_path, config=ServerConfig(ping_interval=30)) as stack:
        held = stack.llm.enqueue(["a", "b"], hold_at=1)
        streams = stack.server.server.config.app.state.server.streams
        assert isinstance(streams, StreamRegistry)
        async with client_for(stack) as client:
            thread = (await client.post(f"{CHAT}/threads", json={})).json()["id"]
            seen: list[str] = []
            async with client.stream(
                "POST", f"{CHAT}/threads/{thread}/messages", json={"content": "hi"}
            ) as response:
                reader = blocks(response)
                async with asyncio.timeout(WAIT):
                    async for block in reader:
                        seen.append(block)
                        if "event: message.delta" in block:
                            break
                    await held.reached.wait()
                    assert len(streams) == 1
                    loop = asyncio.get_running_loop()
                    began = loop.time()
                    stopping = asyncio.ensure_future(stack.server.stop(grace=WAIT))
                    # The rest of the body ends (no error: the final chunk came).
                    rest = [block async for block in reader]
                    ended = loop.time() - began
            await asyncio.wait_for(stopping, WAIT)
        held.release.set()
    assert any("message.started" in block for block in seen)
    assert not any("message.completed" in block for block in rest)
    assert ended < 1.0  # uvicorn would wait its graceful timeout (2 s here), then cut
    assert len(streams) == 0


async def test_pings_come_only_while_no_event_is_sent() -> None:
    sent: list[bytes] = []
    release = asyncio.Event()
    done = asyncio.Event()

    async def frames() -> AsyncIterator[bytes]:
        yield b"data: 1\n\n"
        await release.wait()
        yield b"data: 2\n\n"

    async def receive() -> dict[str, object]:
        await done.wait()
        return {"type": "http.disconnect"}

    async def send(message: dict[str, object]) -> None:
        body = message.get("body")
        if isinstance(body, bytes) and body:
            sent.append(body)
            if sent.count(PING) == 2:
                release.set()
        if message.get("more_body") is False:
            done.set()

    response = EventStream(frames(), ping_interval=0.05)
    scope = {"type": "http", "method": "GET"}
    await asyncio.wait_for(response(scope, receive, send), WAIT)  # type: ignore[arg-type]
    assert sent[0] == b"data: 1\n\n"
    assert sent[-1] == b"data: 2\n\n"
    assert sent[1:-1] == [PING, PING]


async def test_a_client_that_goes_away_detaches_without_a_final_chunk() -> None:
    closed = asyncio.Event()
    gone = asyncio.Event()
    sent: list[dict[str, object]] = []

    async def frames() -> AsyncIterator[bytes]:
        try:
            yield b"data: 1\n\n"
            await asyncio.Event().wait()  # the reply is quiet
            yield b"never"
        finally:
            closed.set()

    async def receive() -> dict[str, object]:
        await gone.wait()
        return {"type": "http.disconnect"}

    async def send(message: dict[str, object]) -> None:
        sent.append(message)
        if message.get("body") == b"data: 1\n\n":
            gone.set()

    response = EventStream(frames(), ping_interval=0)
    await asyncio.wait_for(
        response({"type": "http", "method": "GET"}, receive, send),  # type: ignore[arg-type]
        WAIT,
    )
    assert closed.is_set()
    assert [m.get("more_body") for m in sent[1:]] == [True]


async def test_the_access_log_still_logs_streams_with_their_status(
    stack: Stack, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="tenex_tui.server.access")
    async with client_for(stack) as client:
        thread = (await client.post(f"{CHAT}/threads", json={})).json()["id"]
        answer = await client.post(
            f"{CHAT}/threads/{thread}/messages?secret=words", json={"content": "hi"}
        )
        assert answer.status_code == 200
        assert "message.completed" in answer.text
    lines = [
        r.getMessage() for r in caplog.records if r.name == "tenex_tui.server.access"
    ]
    assert any(f"POST {CHAT}/threads/{thread}/messages 200" in line for line in lines)
    assert not any("secret" in line or "words" in line for line in lines)


class _CountingStore:
    def __init__(self) -> None:
        self.lookups = 0
        self.gate = asyncio.Event()

    async def find_api_key(self, prefix: str) -> object:
        self.lookups += 1
        await self.gate.wait()
        return None


async def test_hundreds_of_streams_share_one_key_lookup_when_the_cache_expires() -> (
    None
):
    store = _CountingStore()
    now = [0.0]
    authenticator = Authenticator(
        store,  # type: ignore[arg-type]
        revocation_ttl=1.0,
        monotonic=lambda: now[0],
    )
    scope = AuthScope("ws", "usr", "abcdefgh")
    assert authenticator.cached_validity(scope) is None
    checks = [
        asyncio.ensure_future(authenticator.still_valid(scope)) for _ in range(300)
    ]
    await asyncio.sleep(0)
    store.gate.set()
    assert await asyncio.wait_for(asyncio.gather(*checks), WAIT) == [False] * 300
    assert store.lookups == 1
    assert authenticator.cached_validity(scope) is False
    now[0] = 5.0
    assert authenticator.cached_validity(scope) is None  # stale: ask the store again


def test_the_server_tunes_the_collector_for_long_lived_objects() -> None:
    import gc

    from tenex_tui.server.run import GC_THRESHOLDS, tune_gc

    before = gc.get_threshold()
    try:
        tune_gc()
        assert gc.get_threshold() == GC_THRESHOLDS
        assert GC_THRESHOLDS[0] > before[0]  # young collections are rarer
        assert gc.get_freeze_count() > 0  # what start-up built is out of every scan
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)
