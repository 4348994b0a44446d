"""T22/T23 against a scripted transport: resume with Last-Event-ID, dedupe by id, 204,
410, failures without a reconnect loop, bounded reconnects with backoff."""

from __future__ import annotations

import json
import random
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import httpx
import pytest

from tenex_tui.core.errors import NotFound, RemoteUnavailable, Unauthorized
from tenex_tui.core.events import StreamEvent
from tenex_tui.core.models import Message
from tenex_tui.core.secrets import Secret
from tenex_tui.remote.client import RemoteBackend
from tenex_tui.remote.sse import ResumePolicy, SSEError

KEY = "tnx_abcd1234_" + "k" * 40
T0 = datetime(2026, 1, 15, 9, 30, tzinfo=UTC)
THREAD = "thr_1"
MSG = "msg_1"


def final_message(text: str) -> Message:
    return Message(
        id=MSG,
        thread_id=THREAD,
        role="assistant",
        content=text,
        status="complete",
        created_at=T0,
        completed_at=T0,
    )


def script(n: int = 20) -> list[StreamEvent]:
    """Event 1 starts, 2..n-1 are deltas, n completes."""
    events = [
        StreamEvent(
            id=f"{MSG}.1", type="message.started", message_id=MSG, thread_id=THREAD
        )
    ]
    for i in range(2, n):
        events.append(
            StreamEvent(
                id=f"{MSG}.{i}",
                type="message.delta",
                message_id=MSG,
                thread_id=THREAD,
                delta=f"t{i} ",
            )
        )
    text = "".join(e.delta for e in events)
    events.append(
        StreamEvent(
            id=f"{MSG}.{n}",
            type="message.completed",
            message_id=MSG,
            thread_id=THREAD,
            status="complete",
            message=final_message(text),
        )
    )
    return events


def encode(events: list[StreamEvent], *, retry: int | None = None) -> bytes:
    out = ""
    if retry is not None:
        out += f"retry: {retry}\n\n"
    for event in events:
        out += f"id: {event.id}\nevent: {event.type}\ndata: {event.to_json()}\n\n"
    return out.encode()


async def body_then_drop(data: bytes) -> AsyncIterator[bytes]:
    yield data
    raise httpx.RemoteProtocolError(
        "peer closed connection without sending complete message body"
    )


class FakeSleep:
    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)


class Server:
    """Scripted answers per request; records what each request carried."""

    def __init__(self) -> None:
        self.events = script()
        self.requests: list[httpx.Request] = []
        self.answers: list[httpx.Response] = []

    def stream(
        self, events: list[StreamEvent], *, drop: bool, retry: int | None = None
    ) -> httpx.Response:
        data = encode(events, retry=retry)
        content = body_then_drop(data) if drop else data
        return httpx.Response(
            200, content=content, headers={"content-type": "text/event-stream"}
        )

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if request.method == "GET" and request.url.path.endswith(f"/messages/{MSG}"):
            final = self.events[-1].message
            assert final is not None
            return httpx.Response(200, json=final.model_dump(mode="json"))
        return self.answers.pop(0)


def backend(server: Server, sleep: FakeSleep, **policy: float) -> RemoteBackend:
    return RemoteBackend(
        "http://127.0.0.1:9",
        Secret(KEY),
        transport=httpx.MockTransport(server),
        sleep=sleep,
        rng=random.Random(3),
        resume=ResumePolicy(**policy),  # type: ignore[arg-type]
    )


async def collect(events: AsyncIterator[StreamEvent]) -> list[StreamEvent]:
    return [event async for event in events]


async def collect_into(
    events: AsyncIterator[StreamEvent], into: list[StreamEvent]
) -> None:
    async for event in events:
        into.append(event)


async def test_drop_after_7_resumes_with_last_event_id_and_no_gap() -> None:
    server = Server()
    server.answers = [
        server.stream(server.events[:7], drop=True, retry=250),
        server.stream(server.events[7:], drop=False),
    ]
    sleep = FakeSleep()
    got = await collect(backend(server, sleep).send_message(THREAD, "hi"))
    assert [e.id for e in got] == [e.id for e in server.events]
    resume = server.requests[1]
    assert resume.method == "GET"
    assert resume.url.path == f"/api/v1/chat/threads/{THREAD}/messages/{MSG}/events"
    assert resume.headers["last-event-id"] == f"{MSG}.7"
    assert sleep.delays == [0.25]  # the server's retry:
    assert "".join(e.delta for e in got) == got[-1].message.content  # type: ignore[union-attr]


async def test_overlapping_replay_is_deduplicated_by_id() -> None:
    server = Server()
    # The resume replays from event 5 although the client saw up to 7.
    server.answers = [
        server.stream(server.events[:7], drop=True),
        server.stream(server.events[4:], drop=False),
    ]
    got = await collect(backend(server, FakeSleep()).send_message(THREAD, "hi"))
    assert [e.id for e in got] == [e.id for e in server.events]


async def test_dropped_first_post_is_retried_with_the_same_idempotency_key() -> None:
    server = Server()
    server.answers = [
        server.stream([], drop=True),
        server.stream(server.events, drop=False),
    ]
    got = await collect(backend(server, FakeSleep()).send_message(THREAD, "hi"))
    assert len(got) == 20
    posts = [r for r in server.requests if r.method == "POST"]
    assert len(posts) == 2
    assert posts[0].headers["idempotency-key"] == posts[1].headers["idempotency-key"]
    assert json.loads(posts[0].content) == json.loads(posts[1].content)


async def test_204_on_resume_stops_and_fetches_the_final_message() -> None:
    server = Server()
    server.answers = [server.stream(server.events[:7], drop=True), httpx.Response(204)]
    got = await collect(backend(server, FakeSleep()).send_message(THREAD, "hi"))
    assert got[-1].type == "message.completed"
    assert got[-1].extra == {"synthesized": True}
    assert got[-1].message == server.events[-1].message
    assert sum(1 for r in server.requests if r.url.path.endswith("/events")) == 1


async def test_410_restarts_from_the_beginning_without_duplicates() -> None:
    server = Server()
    server.answers = [
        server.stream(server.events[:7], drop=True),
        httpx.Response(410, json={"error": {"code": "gone", "message": "expired"}}),
        server.stream(server.events, drop=False),
    ]
    got = await collect(backend(server, FakeSleep()).send_message(THREAD, "hi"))
    assert [e.id for e in got] == [e.id for e in server.events]
    assert "last-event-id" not in server.requests[2].headers


async def test_non_200_on_resume_fails_without_a_reconnect_loop() -> None:
    server = Server()
    server.answers = [
        server.stream(server.events[:3], drop=True),
        httpx.Response(
            404, json={"error": {"code": "not_found", "message": "No such event."}}
        ),
    ]
    with pytest.raises(NotFound):
        await collect(backend(server, FakeSleep()).send_message(THREAD, "hi"))
    assert len(server.requests) == 2


async def test_wrong_content_type_fails_without_a_reconnect_loop() -> None:
    server = Server()
    server.answers = [httpx.Response(200, html="<html>portal</html>")]
    with pytest.raises(SSEError, match="text/html"):
        await collect(backend(server, FakeSleep()).send_message(THREAD, "hi"))
    assert len(server.requests) == 1


async def test_always_dropping_server_gets_bounded_attempts_with_backoff() -> None:
    server = Server()
    server.answers = [server.stream(server.events[:2], drop=True)] + [
        server.stream([], drop=True) for _ in range(10)
    ]
    sleep = FakeSleep()
    remote = backend(server, sleep, max_attempts=4, base_delay=0.5, max_delay=10.0)
    with pytest.raises(RemoteUnavailable, match="gave up after 4"):
        await collect(remote.send_message(THREAD, "hi"))
    assert len(server.requests) == 1 + 4
    assert len(sleep.delays) == 4
    for attempt, delay in enumerate(sleep.delays, start=1):
        assert 0.0 <= delay <= min(10.0, 0.5 * 2 ** (attempt - 1))


async def test_progress_resets_the_attempt_budget() -> None:
    server = Server()
    # Every connection delivers 3 new events and drops: slow but steady progress.
    chunks = [server.events[i : i + 3] for i in range(0, 20, 3)]
    server.answers = [server.stream(c, drop=c is not chunks[-1]) for c in chunks]
    got = await collect(
        backend(server, FakeSleep(), max_attempts=1).send_message(THREAD, "hi")
    )
    assert [e.id for e in got] == [e.id for e in server.events]


async def test_error_event_mid_stream_raises_the_named_error() -> None:
    server = Server()
    revoked = b'event: error\ndata: {"error":{"code":"unauthorized","message":"A valid API key is required."}}\n\n'
    server.answers = [
        httpx.Response(
            200,
            content=encode(server.events[:3]) + revoked,
            headers={"content-type": "text/event-stream"},
        )
    ]
    got: list[StreamEvent] = []
    with pytest.raises(Unauthorized):
        await collect_into(backend(server, FakeSleep()).send_message(THREAD, "hi"), got)
    assert len(got) == 3


async def test_malformed_event_data_is_a_clear_error() -> None:
    server = Server()
    server.answers = [
        httpx.Response(
            200,
            content=b"id: 1\ndata: {not json\n\n",
            headers={"content-type": "text/event-stream"},
        )
    ]
    with pytest.raises(RemoteUnavailable, match="not the API's"):
        await collect(backend(server, FakeSleep()).send_message(THREAD, "hi"))


async def test_stream_events_sends_last_event_id_from_the_start() -> None:
    server = Server()
    server.answers = [server.stream(server.events[10:], drop=False)]
    got = await collect(
        backend(server, FakeSleep()).stream_events(THREAD, MSG, after=f"{MSG}.10")
    )
    assert [e.id for e in got] == [e.id for e in server.events[10:]]
    assert server.requests[0].headers["last-event-id"] == f"{MSG}.10"
