"""The remote client against the real server through a fault proxy on loopback:
resume after drops and stalls (T22, T23), idempotent POSTs (T67), deliberate retries
(T68 pin), 429 (T66), slow and silent servers (T64), redirects to another origin (T43)."""

from __future__ import annotations

import asyncio
import random
import socket
from collections.abc import AsyncIterator

import httpx
import pytest

from tenex_tui.core.errors import IdempotencyConflict, RemoteUnavailable, Unauthorized
from tenex_tui.core.events import StreamEvent
from tenex_tui.core.secrets import Secret
from tenex_tui.remote.client import RemoteBackend, build_remote_backend
from tenex_tui.remote.http import RetryPolicy
from tenex_tui.remote.sse import ResumePolicy
from tests.support.fault_proxy import (
    Drip,
    DropAfterCommit,
    DropAfterEvents,
    FaultProxy,
    Hang,
    Respond,
    StallAfterEvents,
    StatusAfterCommit,
)
from tests.support.server_fixture import Stack

SEND = r"/api/v1/chat/threads/[^/]+/messages"
EVENTS = r"/api/v1/chat/threads/[^/]+/messages/[^/]+/events"
FAST_RESUME = ResumePolicy(max_attempts=4, base_delay=0.01, max_delay=0.05)


class FakeSleep:
    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)


def via(
    proxy: FaultProxy, stack: Stack, name: str = "a1", **kwargs: object
) -> RemoteBackend:
    kwargs.setdefault("resume", FAST_RESUME)
    backend = RemoteBackend(proxy.base_url, stack.keys[name], **kwargs)  # type: ignore[arg-type]
    stack._remotes.append(backend)
    return backend


async def drain(events: AsyncIterator[StreamEvent]) -> list[StreamEvent]:
    async with asyncio.timeout(20):
        return [event async for event in events]


def assert_whole(events: list[StreamEvent]) -> None:
    """No gap and no duplicate: consecutive ids, text equal to the final message."""
    seqs = [int(e.id.rsplit(".", 1)[1]) for e in events]
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs))), seqs
    assert events[-1].type == "message.completed"
    assert "".join(e.delta for e in events) == events[-1].message.content  # type: ignore[union-attr]


# -- resume (T22, T23) -------------------------------------------------------------------


@pytest.mark.parametrize("drop_after", [1, 2, 5, 9])
@pytest.mark.parametrize("rst", [False, True])
async def test_resume_after_a_drop_has_no_gap_and_no_duplicate(
    stack: Stack, proxy: FaultProxy, drop_after: int, rst: bool
) -> None:
    stack.llm.enqueue([f"d{i} " for i in range(10)])
    proxy.add("POST", SEND, DropAfterEvents(drop_after, rst=rst))
    remote = via(proxy, stack)
    thread = await remote.create_thread(title="flaky")
    events = await drain(remote.send_message(thread.id, "go"))
    assert_whole(events)
    assert events[-1].message.content == "".join(f"d{i} " for i in range(10))  # type: ignore[union-attr]
    stored = await stack.scoped("a1").get_message(thread.id, events[-1].message_id)
    assert stored.content == events[-1].message.content  # type: ignore[union-attr]
    resumes = proxy.requests("GET", EVENTS)
    assert resumes and resumes[0].headers["last-event-id"] == events[drop_after - 1].id
    assert (
        stack.llm.calls == 1
    )  # T68: a dropped stream never starts a second generation
    assert len(proxy.requests("POST", SEND)) == 1


async def test_resume_joins_a_reply_that_is_still_generating(
    stack: Stack, proxy: FaultProxy
) -> None:
    held = stack.llm.enqueue([f"w{i} " for i in range(8)], hold_at=4)
    proxy.add("POST", SEND, DropAfterEvents(3))
    remote = via(proxy, stack)
    thread = await remote.create_thread(title="live")
    got: list[StreamEvent] = []
    changed = asyncio.Condition()

    async def read() -> None:
        async for event in remote.send_message(thread.id, "go"):
            async with changed:
                got.append(event)
                changed.notify_all()

    task = asyncio.create_task(read())
    # Started + 4 deltas reach the client only after the reconnection (the drop was at 3).
    async with asyncio.timeout(10), changed:
        await changed.wait_for(lambda: len(got) >= 5)
    assert proxy.requests("GET", EVENTS)
    held.release.set()
    await asyncio.wait_for(task, 10)
    assert_whole(got)
    assert got[-1].message.content == "".join(f"w{i} " for i in range(8))  # type: ignore[union-attr]


async def test_a_stalled_stream_times_out_and_resumes(
    stack: Stack, proxy: FaultProxy
) -> None:
    stack.llm.enqueue([f"s{i} " for i in range(6)])
    proxy.add("POST", SEND, StallAfterEvents(3))
    remote = via(
        proxy, stack, timeout=httpx.Timeout(connect=2, read=0.5, write=2, pool=2)
    )
    thread = await remote.create_thread(title="stall")
    try:
        events = await drain(remote.send_message(thread.id, "go"))
    finally:
        proxy.release_stalls()
    assert_whole(events)
    assert len(proxy.requests("GET", EVENTS)) == 1


async def test_a_server_that_always_drops_gets_bounded_attempts(
    stack: Stack, proxy: FaultProxy
) -> None:
    stack.llm.enqueue([f"x{i} " for i in range(6)])
    proxy.add("POST", SEND, DropAfterEvents(2))
    proxy.add("GET", EVENTS, DropAfterEvents(0), times=-1)
    sleep = FakeSleep()
    remote = via(
        proxy,
        stack,
        sleep=sleep,
        rng=random.Random(5),
        resume=ResumePolicy(max_attempts=3),
    )
    thread = await remote.create_thread(title="hopeless")
    with pytest.raises(RemoteUnavailable, match="gave up after 3"):
        await drain(remote.send_message(thread.id, "go"))
    assert len(proxy.requests("GET", EVENTS)) == 3
    assert len(sleep.delays) == 3
    assert all(0 <= d <= min(10.0, 0.5 * 2**i) for i, d in enumerate(sleep.delays))


# -- idempotent POSTs (T67) -----------------------------------------------------------------


@pytest.mark.parametrize("fault", [DropAfterCommit(), StatusAfterCommit(500)])
async def test_create_committed_then_lost_is_retried_into_exactly_one_thread(
    stack: Stack, proxy: FaultProxy, fault: DropAfterCommit | StatusAfterCommit
) -> None:
    proxy.add("POST", r"/api/v1/chat/threads", fault)
    remote = via(proxy, stack, sleep=FakeSleep())
    thread = await remote.create_thread(title="exactly once")
    posts = proxy.requests("POST", r"/api/v1/chat/threads")
    assert len(posts) == 2
    assert posts[0].headers["idempotency-key"] == posts[1].headers["idempotency-key"]
    listed = await stack.scoped("a1").list_threads()
    assert [t.id for t in listed.items] == [thread.id]


async def test_send_committed_then_dropped_is_one_message_and_one_generation(
    stack: Stack, proxy: FaultProxy
) -> None:
    proxy.add("POST", SEND, DropAfterCommit())
    remote = via(proxy, stack)
    thread = await remote.create_thread(title="send once")
    events = await drain(remote.send_message(thread.id, "only once"))
    assert_whole(events)
    posts = proxy.requests("POST", SEND)
    assert len(posts) == 2
    assert posts[0].headers["idempotency-key"] == posts[1].headers["idempotency-key"]
    assert stack.llm.calls == 1
    messages = (await stack.scoped("a1").list_messages(thread.id)).items
    assert [m.role for m in messages] == ["user", "assistant"]


async def test_a_reused_key_with_another_body_is_reported(
    stack: Stack, proxy: FaultProxy
) -> None:
    remote = via(proxy, stack)
    await remote.http.request(
        "POST", "/threads", json_body={"title": "a"}, idempotency_key="same"
    )
    with pytest.raises(IdempotencyConflict):
        await remote.http.request(
            "POST", "/threads", json_body={"title": "b"}, idempotency_key="same"
        )


async def test_every_post_carries_an_idempotency_key(
    stack: Stack, proxy: FaultProxy
) -> None:
    remote = via(proxy, stack)
    thread = await remote.create_thread(title="keys")
    events = await drain(remote.send_message(thread.id, "hi"))
    await remote.mark_read(thread.id)
    await remote.cancel_message(thread.id, events[-1].message_id)
    await drain(remote.regenerate(thread.id))
    posts = proxy.requests("POST")
    assert len(posts) == 5
    keys = [p.headers.get("idempotency-key") for p in posts]
    assert all(keys) and len(set(keys)) == 5


# -- rate limits, slow and silent servers (T64, T66) ----------------------------------------


async def test_429_with_retry_after_is_waited_then_retried(
    stack: Stack, proxy: FaultProxy
) -> None:
    proxy.add(
        "GET", r"/api/v1/chat/threads", Respond(429, (("Retry-After", "1"),), b"{}")
    )
    sleep = FakeSleep()
    remote = via(proxy, stack, sleep=sleep)
    page = await remote.list_threads()
    assert page.items == []
    assert sleep.delays == [1.0]
    assert len(proxy.requests("GET", r"/api/v1/chat/threads")) == 2


async def test_a_server_that_never_answers_fails_at_the_deadline(
    stack: Stack, proxy: FaultProxy
) -> None:
    proxy.add("GET", r"/api/v1/chat/threads", Hang(), times=-1)
    remote = via(proxy, stack, retry=RetryPolicy(deadline=1.0, max_retries=5))
    loop = asyncio.get_running_loop()
    start = loop.time()
    with pytest.raises(RemoteUnavailable, match="not responding after 1 s"):
        await remote.list_threads()
    assert loop.time() - start < 3.0
    assert remote.http.online is False


async def test_a_dripping_body_is_bounded_by_the_deadline_not_the_read_timeout(
    stack: Stack, proxy: FaultProxy
) -> None:
    await stack.scoped("a1").create_thread(title="x" * 150)
    proxy.add("GET", r"/api/v1/chat/threads", Drip(chunk=1, interval=0.3))
    # The read timeout (30 s) never trips: a byte comes every 0.3 s. The deadline does.
    remote = via(proxy, stack, retry=RetryPolicy(deadline=1.0, max_retries=0))
    loop = asyncio.get_running_loop()
    start = loop.time()
    with pytest.raises(RemoteUnavailable, match="not responding after 1 s"):
        await remote.list_threads()
    assert loop.time() - start < 3.0


async def test_a_refused_port_is_cannot_reach() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    remote = RemoteBackend(
        f"http://127.0.0.1:{port}",
        Secret("tnx_abcd1234_" + "r" * 40),
        retry=RetryPolicy(max_retries=1),
        sleep=FakeSleep(),
    )
    try:
        with pytest.raises(RemoteUnavailable, match=r"Cannot reach 127\.0\.0\.1"):
            await remote.list_threads()
        info = await remote.info()
        assert info.online is False and info.kind == "remote"
        assert info.workspace == "127.0.0.1"
    finally:
        await remote.aclose()


# -- credentials (T43, T41) ------------------------------------------------------------------


async def test_a_redirect_to_another_origin_never_receives_the_key(
    stack: Stack, proxy: FaultProxy
) -> None:
    async with FaultProxy(host="127.0.0.2") as other:
        other.add(
            "*",
            r".*",
            Respond(200, (("Content-Type", "application/json"),), b'{"items":[]}'),
            times=-1,
        )
        location = f"http://127.0.0.2:{other.port}/api/v1/chat/threads"
        proxy.add(
            "GET", r"/api/v1/chat/threads", Respond(302, (("Location", location),))
        )
        remote = via(proxy, stack)
        with pytest.raises(RemoteUnavailable, match="redirect"):
            await remote.list_threads()
        assert other.seen == []
        # Even a request sent there through the client's own connection pool carries
        # no key: the auth flow signs only the configured origin.
        await remote.http._client.get(location)
        assert len(other.seen) == 1
        assert "authorization" not in other.seen[0].headers


async def test_a_wrong_key_is_unauthorized_and_never_echoed(stack: Stack) -> None:
    secret = "W" * 40
    remote = RemoteBackend(stack.base_url, Secret(f"tnx_abcd1234_{secret}"))
    try:
        with pytest.raises(Unauthorized) as info:
            await remote.list_threads()
        assert secret not in str(info.value)
        status = await remote.info()
        assert status.online is True and status.model_problem is not None
        assert secret not in status.model_problem
    finally:
        await remote.aclose()


def test_build_remote_backend_normalises_and_checks_the_key() -> None:
    with pytest.raises(Exception, match="not a 10ex key"):
        build_remote_backend("https://api.10ex.ai", Secret("sk-wrong"))
    with pytest.raises(Exception, match="plain http"):
        build_remote_backend("http://api.10ex.ai", Secret("tnx_abcd1234_" + "k" * 40))
    backend = build_remote_backend(
        "https://api.10ex.ai", Secret("tnx_abcd1234_" + "k" * 40 + "\n")
    )
    assert repr(backend) == "RemoteBackend('https://api.10ex.ai')"
