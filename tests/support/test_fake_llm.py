"""The fake OpenAI-compatible server does what its scripts say, seen from raw HTTP.

These tests use httpx and plain sockets, not the openai SDK, so a bug in the adapter
cannot hide a bug in the fake (and the reverse).
"""

from __future__ import annotations

import asyncio
import json
import socket
import time
from typing import Any

import httpx
import pytest

from tests.support.fake_llm import (
    Chunk,
    FakeLLMServer,
    Script,
    fake_llm_fixture,  # noqa: F401 - a fixture, requested by name
    fake_llm_in_thread_fixture,  # noqa: F401 - a fixture, requested by name
    tool_fragment,
)

CHAT = {"model": "m", "messages": [{"role": "user", "content": "hi there friend"}]}


def sse_data(body: str) -> list[str]:
    """The `data:` payloads of an SSE body, in order."""
    return [
        line.removeprefix("data: ")
        for block in body.split("\n\n")
        for line in block.split("\n")
        if line.startswith("data: ")
    ]


def contents(payloads: list[str]) -> str:
    text = ""
    for payload in payloads:
        if payload == "[DONE]":
            continue
        for choice in json.loads(payload).get("choices", []):
            text += choice["delta"].get("content") or ""
    return text


def raw_request(port: int, body: dict[str, Any]) -> socket.socket:
    """Send one chat request on a plain socket and return the socket."""
    data = json.dumps(body).encode()
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    sock.sendall(
        b"POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n"
        + f"content-length: {len(data)}\r\n\r\n".encode()
        + data
    )
    return sock


def read_until_closed(sock: socket.socket, limit: int = 100) -> tuple[bytes, str]:
    """Read until the peer closes; return the bytes and how it closed (`fin` or `rst`)."""
    received = b""
    for _ in range(limit):
        try:
            data = sock.recv(65536)
        except ConnectionResetError:
            return received, "rst"
        if not data:
            return received, "fin"
        received += data
    raise AssertionError("the server kept the connection open")


# ---------------------------------------------------------------------- replies


async def test_the_default_script_echoes_the_last_user_message(
    fake_llm: FakeLLMServer,
) -> None:
    async with httpx.AsyncClient(base_url=fake_llm.base_url) as client:
        response = await client.post("/chat/completions", json={**CHAT, "stream": True})

    payloads = sse_data(response.text)
    assert response.headers["content-type"].startswith("text/event-stream")
    assert contents(payloads) == "hi there friend"
    assert payloads[-1] == "[DONE]"
    (record,) = fake_llm.chat_requests
    assert record.chunks_sent == len(payloads) == 6  # role, 3 words, finish, [DONE]
    assert record.completed and not record.disconnected
    assert record.body["messages"][0]["content"] == "hi there friend"
    assert record.headers["content-type"] == "application/json"


async def test_usage_is_sent_only_when_asked_unless_scripted(
    fake_llm: FakeLLMServer,
) -> None:
    fake_llm.enqueue(
        Script.reply("x"), Script.reply("x"), Script.reply("x", usage="never")
    )
    asked = {**CHAT, "stream": True, "stream_options": {"include_usage": True}}
    async with httpx.AsyncClient(base_url=fake_llm.base_url) as client:
        plain = (
            await client.post("/chat/completions", json={**CHAT, "stream": True})
        ).text
        with_usage = (await client.post("/chat/completions", json=asked)).text
        ignored = (await client.post("/chat/completions", json=asked)).text

    def usages(body: str) -> list[Any]:
        return [
            json.loads(p)["usage"]
            for p in sse_data(body)
            if p != "[DONE]" and "usage" in json.loads(p)
        ]

    assert usages(plain) == [] and usages(ignored) == []
    assert usages(with_usage) == [
        {"prompt_tokens": 4, "completion_tokens": 1, "total_tokens": 5}
    ]


async def test_a_non_streamed_request_gets_one_completion_with_tool_calls(
    fake_llm: FakeLLMServer,
) -> None:
    fake_llm.enqueue(
        Script.text(
            "text ",
            tool_fragment(0, id="c", name="f", arguments='{"a":'),
            tool_fragment(0, id="c", name="f", arguments="1}"),
            finish_reason="tool_calls",
        )
    )
    async with httpx.AsyncClient(base_url=fake_llm.base_url) as client:
        body = (await client.post("/chat/completions", json=CHAT)).json()

    message = body["choices"][0]["message"]
    assert message["content"] == "text "
    assert message["tool_calls"] == [
        {
            "id": "c",
            "type": "function",
            "function": {"name": "f", "arguments": '{"a":1}'},
        }
    ]
    assert body["choices"][0]["finish_reason"] == "tool_calls"


async def test_models_are_listed_in_order_and_can_fail(fake_llm: FakeLLMServer) -> None:
    fake_llm.models = ["b", "a"]
    async with httpx.AsyncClient(base_url=fake_llm.base_url) as client:
        listed = (await client.get("/models")).json()
        fake_llm.models_error = Script.http_error(503, "down")
        failed = await client.get("/models")

    assert [m["id"] for m in listed["data"]] == ["b", "a"]
    assert failed.status_code == 503 and failed.json()["error"]["message"] == "down"


async def test_errors_carry_their_status_headers_and_body(
    fake_llm: FakeLLMServer,
) -> None:
    fake_llm.enqueue(
        Script.http_error(429, "slow down", headers={"Retry-After": "7"}),
        Script.reply("ok"),
    )
    async with httpx.AsyncClient(base_url=fake_llm.base_url) as client:
        limited = await client.post("/chat/completions", json={**CHAT, "stream": True})
        missing = await client.post("/chat/other", json=CHAT)

    assert limited.status_code == 429
    assert (
        limited.headers["retry-after"] == "7"
        and limited.headers["retry-after-ms"] == "1"
    )
    assert limited.json()["error"]["message"] == "slow down"
    assert missing.status_code == 404
    assert fake_llm.pending_scripts == 1
    assert [r.status for r in fake_llm.requests] == [429, 404]


async def test_a_required_key_refuses_others_and_echoes_them() -> None:
    async with (
        FakeLLMServer(required_api_key="good") as server,
        httpx.AsyncClient(base_url=server.base_url) as client,
    ):
        refused = await client.post(
            "/chat/completions", json=CHAT, headers={"Authorization": "Bearer bad-key"}
        )
        accepted = await client.post(
            "/chat/completions", json=CHAT, headers={"Authorization": "Bearer good"}
        )

    assert (
        refused.status_code == 401 and "bad-key" in refused.json()["error"]["message"]
    )
    assert accepted.status_code == 200


async def test_stream_options_can_be_refused() -> None:
    async with (
        FakeLLMServer(reject_stream_options=True) as server,
        httpx.AsyncClient(base_url=server.base_url) as client,
    ):
        response = await client.post(
            "/chat/completions", json={**CHAT, "stream": True, "stream_options": {}}
        )

    assert response.status_code == 400
    assert "stream_options" in response.json()["error"]["message"]


async def test_raw_chunks_are_written_verbatim(fake_llm: FakeLLMServer) -> None:
    fake_llm.enqueue(
        Script.text("a", Chunk(raw=b"data: {broken\n\n"), Chunk(body={"no": "choices"}))
    )
    async with httpx.AsyncClient(base_url=fake_llm.base_url) as client:
        body = (
            await client.post("/chat/completions", json={**CHAT, "stream": True})
        ).text

    assert sse_data(body)[2:4] == ["{broken", '{"no":"choices"}']


async def test_full_speed_sends_four_thousand_chunks(fake_llm: FakeLLMServer) -> None:
    fake_llm.enqueue(Script.full_speed(4000))
    async with httpx.AsyncClient(base_url=fake_llm.base_url) as client:
        body = (
            await client.post("/chat/completions", json={**CHAT, "stream": True})
        ).text

    assert contents(sse_data(body)) == "tok " * 4000
    assert fake_llm.chat_requests[0].chunks_sent == 4003


# ---------------------------------------------------------------------- faults


@pytest.mark.parametrize("mode", ["rst", "fin"])
def test_drop_after_cuts_the_connection_as_asked(
    fake_llm_in_thread: FakeLLMServer, mode: Any
) -> None:
    fake_llm_in_thread.enqueue(Script.reply("a b c d e", drop_after=3, drop_mode=mode))

    with raw_request(fake_llm_in_thread.port, {**CHAT, "stream": True}) as sock:
        received, how = read_until_closed(sock)

    assert how == mode
    assert received.count(b"data: ") == 3
    assert not received.endswith(b"0\r\n\r\n")
    assert fake_llm_in_thread.chat_requests[0].chunks_sent == 3


def test_hang_up_sends_no_response_at_all(fake_llm_in_thread: FakeLLMServer) -> None:
    fake_llm_in_thread.enqueue(Script(hang_up="fin"))

    with raw_request(fake_llm_in_thread.port, CHAT) as sock:
        received, how = read_until_closed(sock)

    assert (received, how) == (b"", "fin")


def test_eof_without_finish_ends_the_body_cleanly(
    fake_llm_in_thread: FakeLLMServer,
) -> None:
    fake_llm_in_thread.enqueue(Script.eof_without_finish("a", "b"))

    with httpx.Client(base_url=fake_llm_in_thread.base_url) as client:
        body = client.post("/chat/completions", json={**CHAT, "stream": True}).text

    payloads = sse_data(body)
    assert contents(payloads) == "ab"
    assert "[DONE]" not in payloads
    assert all(
        c.get("finish_reason") is None
        for p in payloads
        for c in json.loads(p)["choices"]
    )


async def test_error_after_sends_an_error_object_and_ends(
    fake_llm: FakeLLMServer,
) -> None:
    fake_llm.enqueue(Script.reply("a b c", error_after=2, error_message="kaput"))
    async with httpx.AsyncClient(base_url=fake_llm.base_url) as client:
        payloads = sse_data(
            (await client.post("/chat/completions", json={**CHAT, "stream": True})).text
        )

    assert len(payloads) == 3
    assert json.loads(payloads[-1])["error"]["message"] == "kaput"


async def test_a_stall_waits_for_release_then_finishes(fake_llm: FakeLLMServer) -> None:
    fake_llm.enqueue(Script.reply("a b c", stall_after=2))
    async with httpx.AsyncClient(base_url=fake_llm.base_url) as client:
        request = asyncio.create_task(
            client.post("/chat/completions", json={**CHAT, "stream": True})
        )
        await fake_llm.wait_for_chunks(2, request=0)
        assert not request.done()
        assert fake_llm.chat_requests[0].chunks_sent == 2
        fake_llm.release()
        response = await request

    assert contents(sse_data(response.text)) == "a b c"
    assert fake_llm.chat_requests[0].completed


async def test_a_release_before_the_stall_is_remembered(
    fake_llm: FakeLLMServer,
) -> None:
    fake_llm.release()
    fake_llm.enqueue(Script.reply("a b", stall_after=1))
    async with httpx.AsyncClient(base_url=fake_llm.base_url) as client:
        response = await client.post("/chat/completions", json={**CHAT, "stream": True})

    assert contents(sse_data(response.text)) == "a b"


async def test_a_client_leaving_a_stall_is_recorded(fake_llm: FakeLLMServer) -> None:
    fake_llm.enqueue(Script.reply("a b c", stall_after=2))
    async with httpx.AsyncClient(base_url=fake_llm.base_url) as client:
        request = client.build_request(
            "POST", "/chat/completions", json={**CHAT, "stream": True}
        )
        response = await client.send(request, stream=True)
        await fake_llm.wait_for_chunks(2)
        await response.aclose()

    await fake_llm.wait_for_disconnect(request=0)
    record = fake_llm.chat_requests[0]
    assert record.disconnected and not record.completed


async def test_chunk_delay_paces_the_reply(fake_llm: FakeLLMServer) -> None:
    fake_llm.enqueue(Script.reply("a b c d", chunk_delay=0.05))
    started = time.monotonic()
    async with httpx.AsyncClient(base_url=fake_llm.base_url) as client:
        await client.post("/chat/completions", json={**CHAT, "stream": True})

    # role, 4 words, finish, [DONE]: six gaps of 50 ms.
    assert time.monotonic() - started >= 0.29


# ---------------------------------------------------------------------- waiting and threads


async def test_a_wait_that_never_comes_fails_with_a_sentence(
    fake_llm: FakeLLMServer,
) -> None:
    with pytest.raises(AssertionError, match=r"no 3 chat requests within 0\.05 s"):
        await fake_llm.wait_for_requests(3, timeout=0.05)


def test_a_thread_hosted_server_serves_sync_clients_and_blocking_waits() -> None:
    server = FakeLLMServer()
    url = server.start_in_thread()
    try:
        server.enqueue(Script.reply("from a thread"))
        with httpx.Client(base_url=url) as client:
            body = client.post("/chat/completions", json={**CHAT, "stream": True}).text
        server.wait_for_requests_blocking(1)
        server.wait_for_chunks_blocking(5, request=0)
        with pytest.raises(AssertionError, match="client disconnect"):
            server.wait_for_disconnect_blocking(timeout=0.05)
    finally:
        server.stop_in_thread()

    assert contents(sse_data(body)) == "from a thread"
    with socket.socket() as probe:
        assert probe.connect_ex(("127.0.0.1", server.port)) != 0


async def test_stop_ends_a_stall_instead_of_hanging() -> None:
    server = FakeLLMServer()
    await server.start()
    server.enqueue(Script.reply("a b", stall_after=1))
    async with httpx.AsyncClient(base_url=server.base_url) as client:
        request = asyncio.create_task(
            client.post("/chat/completions", json={**CHAT, "stream": True})
        )
        await server.wait_for_chunks(1)
        await asyncio.wait_for(server.stop(), 5)
        (outcome,) = await asyncio.gather(request, return_exceptions=True)

    assert isinstance(outcome, httpx.HTTPError)
