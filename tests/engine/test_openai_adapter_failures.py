"""How the OpenAI-compatible adapter fails: every failure is ours, named, and redacted.

Through the real SDK against the loopback fake server: dropped, stalled and unfinished
streams (T15–T17), error statuses with the key redacted, unreachable servers, the
deliberate retry policy (T68), and cancel closing the HTTP stream (T18's adapter half).
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any

import pytest

from tenex_tui.core.errors import ModelError, ModelUnavailable, TenexError
from tenex_tui.core.secrets import Secret
from tenex_tui.engine.llm import ChatTurn, LLMEvent, StreamBroken, TextDelta
from tenex_tui.engine.openai_adapter import OpenAICompatibleAdapter
from tests.support.fake_llm import FakeLLMServer, Script

MakeAdapter = Callable[..., OpenAICompatibleAdapter]
CANARY = "tnx_test_CANARYSECRET123"
HELLO = [ChatTurn("user", "hello")]


@pytest.fixture
async def llm() -> AsyncIterator[FakeLLMServer]:
    async with FakeLLMServer() as server:
        yield server


@pytest.fixture
async def make_adapter(llm: FakeLLMServer) -> AsyncIterator[MakeAdapter]:
    made: list[OpenAICompatibleAdapter] = []

    def make(**options: Any) -> OpenAICompatibleAdapter:
        options.setdefault("base_url", llm.base_url)
        options.setdefault("api_key", None)
        adapter = OpenAICompatibleAdapter(**options)
        made.append(adapter)
        return adapter

    yield make
    for adapter in made:
        await adapter.aclose()


async def stream_until_error(
    adapter: OpenAICompatibleAdapter,
    turns: Sequence[ChatTurn] = HELLO,
    model: str = "fake-model",
) -> tuple[list[LLMEvent], TenexError]:
    """Iterate a stream that must fail; return what it yielded first, and the error."""
    events: list[LLMEvent] = []

    async def run() -> None:
        async for event in adapter.stream(turns, model=model):
            events.append(event)

    with pytest.raises(TenexError) as caught:
        await run()
    return events, caught.value


def texts(events: Sequence[LLMEvent]) -> str:
    return "".join(e.text for e in events if isinstance(e, TextDelta))


def assert_ours(error: BaseException) -> None:
    """No SDK or HTTP type escapes, and nothing chains to one visibly."""
    assert type(error).__module__.startswith("tenex_tui.")
    assert error.__cause__ is None
    assert error.__suppress_context__ or error.__context__ is None


# ---------------------------------------------------------------------- T15–T17


@pytest.mark.parametrize("mode", ["rst", "fin"])
async def test_a_drop_after_five_chunks_is_a_broken_stream_after_the_partial_text(
    llm: FakeLLMServer, make_adapter: MakeAdapter, mode: Any
) -> None:
    llm.enqueue(
        Script.reply("one two three four five six seven", drop_after=5, drop_mode=mode)
    )

    events, error = await stream_until_error(make_adapter())

    assert texts(events) == "one two three four "
    assert isinstance(error, StreamBroken)
    assert str(error) == "connection to the model lost after 5 chunks"
    assert error.code == "stream_interrupted"
    assert_ours(error)
    assert llm.chat_requests[0].chunks_sent == 5


async def test_a_clean_end_without_finish_reason_is_a_broken_stream(
    llm: FakeLLMServer, make_adapter: MakeAdapter
) -> None:
    deltas = [f"d{i} " for i in range(10)]
    llm.enqueue(Script.eof_without_finish(*deltas))

    events, error = await stream_until_error(make_adapter())

    assert texts(events) == "".join(deltas)
    assert isinstance(error, StreamBroken)
    assert "lost after 11 chunks" in str(error)
    assert "without a finish reason" in str(error)
    assert llm.chat_requests[0].completed


async def test_a_stall_past_the_idle_timeout_is_a_broken_stream_and_hangs_up(
    llm: FakeLLMServer, make_adapter: MakeAdapter
) -> None:
    llm.enqueue(Script.reply("a b c d", stall_after=3))
    loop = asyncio.get_running_loop()
    started = loop.time()

    events, error = await stream_until_error(make_adapter(idle_timeout=0.5))

    assert 0.45 <= loop.time() - started < 3.0
    assert texts(events) == "a b "
    assert isinstance(error, StreamBroken)
    assert str(error) == "the model sent nothing for 0.5 s"
    await llm.wait_for_disconnect(request=0)


async def test_slow_but_steady_chunks_are_not_an_idle_timeout(
    llm: FakeLLMServer, make_adapter: MakeAdapter
) -> None:
    llm.enqueue(Script.reply("a b c d e f", chunk_delay=0.05))

    adapter = make_adapter(idle_timeout=0.2)
    events = [e async for e in adapter.stream(HELLO, model="m")]

    assert texts(events) == "a b c d e f"


async def test_an_error_object_mid_stream_is_a_model_error_after_the_partial_text(
    llm: FakeLLMServer, make_adapter: MakeAdapter
) -> None:
    llm.enqueue(
        Script.reply(
            "partial words here",
            error_after=3,
            error_message=f"overloaded, key {CANARY}",
        )
    )

    events, error = await stream_until_error(make_adapter(api_key=Secret(CANARY)))

    assert texts(events) == "partial words "
    assert type(error) is ModelError
    assert "overloaded" in str(error)
    assert "CANARYSECRET" not in str(error)


async def test_an_sse_error_event_is_a_model_error(
    llm: FakeLLMServer, make_adapter: MakeAdapter
) -> None:
    from tests.support.fake_llm import Chunk

    event = b'event: error\ndata: {"message": "context window exceeded"}\n\n'
    llm.enqueue(Script.text("so far ", Chunk(raw=event)))

    events, error = await stream_until_error(make_adapter())

    assert texts(events) == "so far "
    assert type(error) is ModelError
    assert "context window exceeded" in str(error)


# ---------------------------------------------------------------------- status errors


async def test_a_refused_key_is_named_and_redacted(make_adapter: MakeAdapter) -> None:
    async with FakeLLMServer(required_api_key="the-right-key") as server:
        adapter = make_adapter(base_url=server.base_url, api_key=Secret(CANARY))

        _, error = await stream_until_error(adapter)

        assert server.chat_requests[0].headers["authorization"] == f"Bearer {CANARY}"
    assert type(error) is ModelError
    assert "refused the API key (401)" in str(error)
    assert "Incorrect API key provided" in str(error)
    assert "CANARYSECRET" not in str(error) and "CANARYSECRET" not in repr(error)
    assert "tnx_test_****" in str(error)
    assert_ours(error)


async def test_an_unknown_model_says_the_model_or_url_is_wrong(
    llm: FakeLLMServer, make_adapter: MakeAdapter
) -> None:
    llm.enqueue(
        Script.http_error(
            404, "The model `gpt-nope` does not exist.", code="model_not_found"
        )
    )

    _, error = await stream_until_error(make_adapter(), model="gpt-nope")

    assert type(error) is ModelError
    assert (
        "'gpt-nope'" in str(error)
        and llm.base_url in str(error)
        and "(404)" in str(error)
    )
    assert "does not exist" in str(error)


async def test_a_base_url_without_v1_says_the_url_is_wrong(
    llm: FakeLLMServer, make_adapter: MakeAdapter
) -> None:
    adapter = make_adapter(base_url=llm.base_url.removesuffix("/v1"))

    _, error = await stream_until_error(adapter)

    assert "(404)" in str(error) and "URL" in str(error)
    assert llm.requests[0].path == "/chat/completions"


async def test_credentials_in_the_base_url_never_show(
    llm: FakeLLMServer, make_adapter: MakeAdapter
) -> None:
    url = llm.base_url.replace("http://", "http://me:s3cretpass@").removesuffix("/v1")

    _, error = await stream_until_error(make_adapter(base_url=url))

    assert "(404)" in str(error) and f"127.0.0.1:{llm.port}" in str(error)
    assert "s3cretpass" not in str(error)


async def test_rate_limited_says_so_with_the_wait_and_no_key(
    llm: FakeLLMServer, make_adapter: MakeAdapter
) -> None:
    llm.enqueue(
        Script.http_error(
            429,
            f"Rate limit reached for key {CANARY}.",
            headers={"Retry-After": "30"},
            retry_after_ms=None,
        )
    )

    _, error = await stream_until_error(
        make_adapter(api_key=Secret(CANARY), max_retries=0)
    )

    assert type(error) is ModelError
    assert (
        "rate limited" in str(error) and "(429)" in str(error) and "30 s" in str(error)
    )
    assert "CANARYSECRET" not in str(error)


@pytest.mark.parametrize(
    ("status", "words"),
    [
        (400, "rejected the request (400)"),
        (403, "may not use"),
        (500, "failed (500)"),
        (503, "failed (503)"),
    ],
)
async def test_other_statuses_carry_the_provider_message(
    llm: FakeLLMServer, make_adapter: MakeAdapter, status: int, words: str
) -> None:
    llm.enqueue(Script.http_error(status, f"provider says {status}"))

    _, error = await stream_until_error(make_adapter(max_retries=0))

    assert type(error) is ModelError
    assert words in str(error) and f"provider says {status}" in str(error)
    assert_ours(error)


async def test_list_models_errors_are_mapped(
    llm: FakeLLMServer, make_adapter: MakeAdapter
) -> None:
    llm.models_error = Script.http_error(401, f"bad key {CANARY}", retry_after_ms=None)

    with pytest.raises(ModelError) as caught:
        await make_adapter(api_key=Secret(CANARY)).list_models()

    assert "refused the API key" in str(caught.value)
    assert "CANARYSECRET" not in str(caught.value)


# ---------------------------------------------------------------------- unreachable


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_connection_refused_is_model_unavailable(
    make_adapter: MakeAdapter,
) -> None:
    port = closed_port()
    adapter = make_adapter(
        base_url=f"http://127.0.0.1:{port}/v1", api_key=Secret(CANARY), max_retries=0
    )

    _, error = await stream_until_error(adapter)

    assert type(error) is ModelUnavailable
    assert (
        str(error) == f"cannot reach the model at 127.0.0.1:{port}: connection refused"
    )
    assert_ours(error)
    with pytest.raises(ModelUnavailable):
        await adapter.list_models()


async def test_cancel_while_waiting_for_the_response_returns_at_once(
    make_adapter: MakeAdapter,
) -> None:
    loop = asyncio.get_running_loop()
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        silent.setblocking(False)
        port = silent.getsockname()[1]
        adapter = make_adapter(base_url=f"http://127.0.0.1:{port}/v1", timeout=30)
        task = asyncio.create_task(anext(adapter.stream(HELLO, model="m")))
        conn, _ = await asyncio.wait_for(loop.sock_accept(silent), 5)
        with conn:
            request = await asyncio.wait_for(loop.sock_recv(conn, 65536), 5)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await asyncio.wait_for(task, 5)
            rest = await asyncio.wait_for(loop.sock_recv(conn, 65536), 5)

    assert request.startswith(b"POST /v1/chat/completions")
    assert rest == b""  # the client hung up


async def test_no_answer_before_the_timeout_is_model_unavailable(
    make_adapter: MakeAdapter,
) -> None:
    # A socket that accepts connections (the kernel's backlog) but never answers.
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        port = silent.getsockname()[1]
        adapter = make_adapter(
            base_url=f"http://127.0.0.1:{port}/v1", timeout=0.3, max_retries=0
        )

        _, error = await stream_until_error(adapter)

    assert type(error) is ModelUnavailable
    assert "no answer within 0.3 s" in str(error)


# ---------------------------------------------------------------------- T68 retries


async def test_a_500_before_the_reply_is_retried_once_by_default(
    llm: FakeLLMServer, make_adapter: MakeAdapter
) -> None:
    llm.enqueue(Script.http_error(500, "boom"), Script.reply("second try"))

    events = [e async for e in make_adapter().stream(HELLO, model="m")]

    assert texts(events) == "second try"
    assert llm.chat_request_count == 2
    assert [r.headers["x-stainless-retry-count"] for r in llm.chat_requests] == [
        "0",
        "1",
    ]


async def test_retries_stop_at_max_retries(
    llm: FakeLLMServer, make_adapter: MakeAdapter
) -> None:
    llm.enqueue(*[Script.http_error(500, f"boom {i}") for i in range(4)])

    _, error = await stream_until_error(make_adapter(max_retries=2))

    assert "failed (500)" in str(error) and "boom 2" in str(error)
    assert llm.chat_request_count == 3
    assert llm.pending_scripts == 1


async def test_max_retries_zero_sends_exactly_one_request(
    llm: FakeLLMServer, make_adapter: MakeAdapter
) -> None:
    llm.enqueue(Script.http_error(503, "busy"), Script.reply("never asked"))

    _, error = await stream_until_error(make_adapter(max_retries=0))

    assert "failed (503)" in str(error)
    assert llm.chat_request_count == 1


@pytest.mark.parametrize("drop_after", [0, 3])
async def test_a_reset_after_the_headers_is_never_retried(
    llm: FakeLLMServer, make_adapter: MakeAdapter, drop_after: int
) -> None:
    llm.enqueue(
        Script.reply("a b c d", drop_after=drop_after),
        Script.reply("a second generation"),
    )

    _, error = await stream_until_error(make_adapter(max_retries=3))

    assert isinstance(error, StreamBroken)
    assert f"after {drop_after} chunks" in str(error)
    assert llm.chat_request_count == 1


async def test_a_hang_up_before_any_response_is_retried_within_the_budget(
    llm: FakeLLMServer, make_adapter: MakeAdapter
) -> None:
    # Pinned SDK behaviour: no status line yet counts as "before the response starts".
    llm.enqueue(Script(hang_up="rst"), Script(hang_up="fin"))

    _, error = await stream_until_error(make_adapter(max_retries=1))

    assert type(error) is ModelUnavailable
    assert llm.chat_request_count == 2


async def test_no_idempotency_key_is_sent_today(
    llm: FakeLLMServer, make_adapter: MakeAdapter
) -> None:
    llm.enqueue(Script.http_error(500, "boom"), Script.reply("ok"))

    [e async for e in make_adapter().stream(HELLO, model="m")]

    assert llm.chat_request_count == 2
    for request in llm.chat_requests:
        assert "idempotency-key" not in request.headers


# ---------------------------------------------------------------------- cancel


async def test_cancelling_the_task_closes_the_http_stream(
    llm: FakeLLMServer, make_adapter: MakeAdapter
) -> None:
    llm.enqueue(Script.reply("w " * 50, stall_after=4))
    adapter = make_adapter()
    seen: list[LLMEvent] = []

    async def consume() -> None:
        async for event in adapter.stream(HELLO, model="m"):
            seen.append(event)

    task = asyncio.create_task(consume())
    await llm.wait_for_chunks(4, request=0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task

    await llm.wait_for_disconnect(request=0)
    assert not llm.chat_requests[0].completed
    assert llm.chat_requests[0].chunks_sent == 4


async def test_closing_the_iterator_closes_the_http_stream(
    llm: FakeLLMServer, make_adapter: MakeAdapter
) -> None:
    llm.enqueue(Script.reply("w " * 200, chunk_delay=0.01))
    adapter = make_adapter()

    stream = adapter.stream(HELLO, model="m")
    first = await anext(stream)
    second = await anext(stream)
    await stream.aclose()

    assert [first, second] == [TextDelta("w "), TextDelta("w ")]
    await llm.wait_for_disconnect(request=0)
    assert llm.chat_requests[0].chunks_sent < 50


async def test_after_a_cancel_the_adapter_streams_again(
    llm: FakeLLMServer, make_adapter: MakeAdapter
) -> None:
    llm.enqueue(Script.reply("a b c", stall_after=2), Script.reply("fresh reply"))
    adapter = make_adapter()

    stream = adapter.stream(HELLO, model="m")
    await anext(stream)
    await stream.aclose()
    events = [e async for e in adapter.stream(HELLO, model="m")]

    assert texts(events) == "fresh reply"
