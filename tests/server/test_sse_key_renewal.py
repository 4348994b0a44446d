"""The key check of open streams renews a cached answer without holding their events.

When a cached "still valid" expires, awaiting its renewal before the next event held
every stream of the key behind one store lookup, queued on the DB thread behind the
engine's checkpoint writes (a stall of all 500 streams once a second in the benchmark).
These tests pin the replacement: events go on while the renewal runs (bounded in time),
a "revoked" renewal ends the stream at the next event with the 401 event, and a stream
that never had a cached answer still waits for every check (revocation TTL 0, T61).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable

from tenex_tui.core.events import StreamEvent
from tenex_tui.server.streaming import sse_response, start_events

WAIT = 10.0


def delta(seq: int) -> StreamEvent:
    return StreamEvent(
        id=f"msg_1.{seq}",
        type="message.delta",
        message_id="msg_1",
        thread_id="thr_1",
        delta=f"d{seq}",
    )


class Harness:
    """A stream fed event by event, its key check and what reached the client."""

    def __init__(self, cached: bool | None, stale_seconds: float = 2.0) -> None:
        self.queue: asyncio.Queue[StreamEvent] = asyncio.Queue()
        self.cached = cached
        self.answer = True
        self.lookups = 0
        self.asked = asyncio.Event()
        self.gate = asyncio.Event()
        self.answered = asyncio.Event()
        self.now = 0.0
        self.stale_seconds = stale_seconds
        self.bodies: list[bytes] = []
        self.arrived = asyncio.Condition()
        self.ended = asyncio.Event()

    async def events(self) -> AsyncIterator[StreamEvent]:
        while True:
            event = await self.queue.get()
            yield event
            if event.terminal:
                return

    async def still_valid(self) -> bool:
        self.lookups += 1
        self.asked.set()
        await self.gate.wait()
        self.answered.set()  # the check's task ends in this same step
        return self.answer

    def valid_now(self) -> bool | None:
        return self.cached

    async def send(self, message: dict[str, object]) -> None:
        body = message.get("body")
        if isinstance(body, bytes) and body:
            async with self.arrived:
                self.bodies.append(body)
                self.arrived.notify_all()
        if message.get("more_body") is False:
            self.ended.set()

    async def receive(self) -> dict[str, object]:
        await asyncio.Event().wait()  # the client never goes away here
        return {"type": "http.disconnect"}

    async def run(self) -> asyncio.Task[None]:
        started = await start_events(self.events(), wait=0)
        response = sse_response(
            started,
            ping_interval=0,
            still_valid=self.still_valid,
            valid_now=self.valid_now,
            stale_seconds=self.stale_seconds,
            monotonic=lambda: self.now,
        )
        scope = {"type": "http", "method": "POST"}
        return asyncio.ensure_future(response(scope, self.receive, self.send))  # type: ignore[arg-type]

    async def bodies_reach(self, count: int) -> list[bytes]:
        async with self.arrived:
            await asyncio.wait_for(
                self.arrived.wait_for(lambda: len(self.bodies) >= count), WAIT
            )
        return list(self.bodies)


def is_delta(body: bytes, seq: int) -> bool:
    return body.startswith(f"id: msg_1.{seq}\n".encode())


def is_unauthorized(body: bytes) -> bool:
    head, _, data = body.partition(b"\ndata: ")
    return head == b"event: error" and (
        json.loads(data)["error"]["code"] == "unauthorized"
    )


async def test_events_go_on_while_an_expired_answer_is_renewed_and_a_revocation_ends_the_stream() -> (
    None
):
    h = Harness(cached=True)
    task = await h.run()
    h.queue.put_nowait(delta(1))
    assert is_delta((await h.bodies_reach(1))[0], 1)
    assert h.lookups == 0  # a fresh cached answer: no lookup

    h.cached = None  # the cache period ends; the store lookup will be slow
    h.queue.put_nowait(delta(2))
    h.queue.put_nowait(delta(3))
    bodies = await h.bodies_reach(3)
    assert is_delta(bodies[1], 2) and is_delta(bodies[2], 3)
    assert h.lookups == 1  # one renewal under way, shared by both events
    assert not h.gate.is_set()

    h.answer = False  # the key was revoked meanwhile
    h.gate.set()
    await asyncio.wait_for(h.answered.wait(), WAIT)
    h.queue.put_nowait(delta(4))
    bodies = await h.bodies_reach(4)
    assert is_unauthorized(bodies[3])
    await asyncio.wait_for(h.ended.wait(), WAIT)
    await asyncio.wait_for(task, WAIT)
    assert not any(is_delta(body, 4) for body in bodies)


async def test_a_renewal_slower_than_the_bound_holds_the_next_event() -> None:
    h = Harness(cached=True, stale_seconds=2.0)
    task = await h.run()
    h.queue.put_nowait(delta(1))
    await h.bodies_reach(1)
    h.cached = None
    h.queue.put_nowait(delta(2))
    assert is_delta((await h.bodies_reach(2))[1], 2)  # on the stale answer
    h.now = 2.5  # the renewal has run longer than the bound
    h.queue.put_nowait(delta(3))
    # The stream now waits for the renewal: let the queue drain, then check.
    # Once the stream took the event, it is waiting for the renewal (one step).
    await asyncio.wait_for(_until(h.queue.empty), WAIT)
    assert len(h.bodies) == 2
    h.gate.set()
    assert is_delta((await h.bodies_reach(3))[2], 3)
    assert h.lookups == 1
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


async def test_without_a_cached_answer_every_event_waits_for_its_check() -> None:
    h = Harness(cached=None)  # revocation TTL 0: nothing is ever cached
    task = await h.run()
    h.queue.put_nowait(delta(1))
    await asyncio.wait_for(h.asked.wait(), WAIT)
    # The check was entered before the frame could be made: nothing went out yet.
    assert h.bodies == []
    h.answer = False
    h.gate.set()
    bodies = await h.bodies_reach(1)
    assert is_unauthorized(bodies[0])
    await asyncio.wait_for(task, WAIT)


async def _until(predicate: Callable[[], bool]) -> None:
    for _ in range(10_000):
        if predicate():
            return
        await asyncio.sleep(0)
    raise AssertionError("condition never held")
