"""The HTTP API on the wire: envelopes, limits, validation, caps, SSE format and pings,
JSON sends, idempotency, resume, client drops, the access log, and key edges (T61)."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator

import httpx
import pytest

from tenex_tui.server.routes import API_PREFIX
from tests.support.server_fixture import Stack

CHAT = API_PREFIX


def client_for(stack: Stack, name: str = "a1", **headers: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        base_url=stack.base_url,
        headers={"Authorization": f"Bearer {stack.keys[name].reveal()}", **headers},
        timeout=10,
    )


async def new_thread(client: httpx.AsyncClient, title: str = "t") -> str:
    answer = await client.post(f"{CHAT}/threads", json={"title": title})
    assert answer.status_code == 201, answer.text
    return str(answer.json()["id"])


async def sse_blocks(response: httpx.Response) -> AsyncIterator[str]:
    """Raw SSE blocks (events and comments) as text."""
    buffer = ""
    async for text in response.aiter_text():
        buffer += text
        while "\n\n" in buffer:
            block, buffer = buffer.split("\n\n", 1)
            yield block


def fields(block: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for line in block.split("\n"):
        name, _, value = line.partition(": ")
        out[name] = value
    return out


# -- envelopes, limits, validation ---------------------------------------------------


@pytest.mark.parametrize("limit", ["0", "-1", "abc", "1e9", "2.5", ""])
async def test_bad_limits_are_400_with_the_envelope(stack: Stack, limit: str) -> None:
    async with client_for(stack) as client:
        answer = await client.get(f"{CHAT}/threads", params={"limit": limit})
        if limit == "":
            assert answer.status_code == 200  # empty means the default
            return
        assert answer.status_code == 400
        assert answer.json()["error"]["code"] == "invalid_request"
        assert "limit" in answer.json()["error"]["message"]


async def test_limit_above_the_cap_is_coerced_and_the_envelope_is_complete(
    stack: Stack,
) -> None:
    async with client_for(stack) as client:
        await new_thread(client)
        answer = await client.get(f"{CHAT}/threads", params={"limit": "201"})
        assert answer.status_code == 200
        assert set(answer.json()) == {"items", "next_cursor", "total"}
        assert answer.json()["total"] == 1


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"archived": "maybe"}, "archived"),
        ({"pinned": "2"}, "pinned"),
        ({"cursor": "x" * 5000}, "cursor"),
    ],
)
async def test_bad_filters_are_400(
    stack: Stack, params: dict[str, str], message: str
) -> None:
    async with client_for(stack) as client:
        answer = await client.get(f"{CHAT}/threads", params=params)
        assert answer.status_code == 400
        assert message in answer.json()["error"]["message"]


async def test_tampered_cursor_is_400_invalid_cursor(stack: Stack) -> None:
    async with client_for(stack) as client:
        for i in range(3):
            await new_thread(client, f"t{i}")
        cursor = (await client.get(f"{CHAT}/threads", params={"limit": "1"})).json()[
            "next_cursor"
        ]
        answer = await client.get(
            f"{CHAT}/threads", params={"limit": "1", "cursor": cursor[:-3] + "zzz"}
        )
        assert answer.status_code == 400
        assert answer.json()["error"]["code"] == "invalid_cursor"


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        (b'{"title": "x",', "not valid JSON"),
        (b"[1, 2]", "must be a JSON object"),
        (b'{"title": "x", "owner": "me"}', "owner: unknown field"),
        (b'{"title": 5}', "title"),
        (b"\xff\xfe", "not UTF-8"),
    ],
)
async def test_bad_bodies_are_400_with_a_clear_message(
    stack: Stack, body: bytes, fragment: str
) -> None:
    async with client_for(stack) as client:
        answer = await client.post(
            f"{CHAT}/threads",
            content=body,
            headers={"Content-Type": "application/json"},
        )
        assert answer.status_code == 400
        assert answer.json()["error"]["code"] == "invalid_request"
        assert fragment in answer.json()["error"]["message"]


async def test_oversized_bodies_are_413_while_reading(stack: Stack) -> None:
    async with client_for(stack) as client:
        thread_id = await new_thread(client)
        big = json.dumps({"content": "x" * (100 * 1024)}).encode()
        declared = await client.post(
            f"{CHAT}/threads/{thread_id}/messages", content=big
        )
        assert declared.status_code == 413
        assert declared.json()["error"]["code"] == "payload_too_large"

    # A chunked body has no declared length: the server must stop at the cap while the
    # body still arrives, and answer 413 long before the sender is done.
    reader, writer = await asyncio.open_connection("127.0.0.1", stack.server.port)
    writer.write(
        (
            f"POST {CHAT}/threads/{thread_id}/messages HTTP/1.1\r\nHost: x\r\n"
            f"Authorization: Bearer {stack.keys['a1'].reveal()}\r\n"
            "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
        ).encode()
    )
    answer = asyncio.ensure_future(reader.read(200))
    sent = 0
    chunk = b"y" * 8192
    try:
        for _ in range(10_000):  # 80 MB if the server never answered
            if answer.done():
                break
            writer.write(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
            await writer.drain()
            sent += len(chunk)
            await asyncio.sleep(0)
        head = await asyncio.wait_for(answer, 5)
    finally:
        writer.close()
    assert head.startswith(b"HTTP/1.1 413")
    assert sent < 2 * 1024 * 1024


async def test_attachment_text_is_capped(stack: Stack) -> None:
    async with client_for(stack) as client:
        thread_id = await new_thread(client)
        attachments = [{"name": f"f{i}.txt", "text": "a"} for i in range(11)]
        answer = await client.post(
            f"{CHAT}/threads/{thread_id}/messages",
            json={"content": "see files", "attachments": attachments},
        )
        assert answer.status_code == 413
        assert "at most 10 attachments" in answer.json()["error"]["message"]


async def test_unknown_routes_and_methods_use_the_envelope(stack: Stack) -> None:
    async with client_for(stack) as client:
        assert (await client.get(f"{CHAT}/nothing")).json()["error"][
            "code"
        ] == "not_found"
        wrong = await client.put(f"{CHAT}/threads")
        assert wrong.status_code == 405
        assert wrong.json()["error"]["code"] == "method_not_allowed"


async def test_me_names_the_scope_and_workspace(stack: Stack) -> None:
    async with client_for(stack, "b1") as client:
        me = (await client.get(f"{CHAT}/me")).json()
        assert (me["workspace_id"], me["user_id"]) == ("ws_b", "usr_b1")
        assert me["info"]["workspace"] == "Beta"
        assert me["info"]["model"] == "step-model"


# -- streaming ---------------------------------------------------------------------------


async def test_sse_events_carry_id_event_and_json_data_and_pings_keep_it_alive(
    stack: Stack,
) -> None:
    held = stack.llm.enqueue(["a", "b", "c"], hold_at=1)
    async with client_for(stack) as client:
        thread_id = await new_thread(client)
        blocks: list[str] = []
        async with client.stream(
            "POST",
            f"{CHAT}/threads/{thread_id}/messages",
            json={"content": "hi"},
            headers={"Accept": "text/event-stream"},
        ) as response:
            assert response.status_code == 200
            assert response.headers["content-type"].startswith("text/event-stream")
            assert response.headers["cache-control"] == "no-store"
            async with asyncio.timeout(10):
                async for block in sse_blocks(response):
                    blocks.append(block)
                    if block.startswith(":"):
                        held.release.set()  # a ping came while the model was silent
                    if "event: message.completed" in block:
                        break
    events = [fields(b) for b in blocks if not b.startswith(":")]
    assert any(b.startswith(": ping") for b in blocks)
    assert [e["event"] for e in events] == [
        "message.started",
        "message.delta",
        "message.delta",
        "message.delta",
        "message.completed",
    ]
    for event in events:
        data = json.loads(event["data"])
        assert data["id"] == event["id"]
        assert data["type"] == event["event"]
        assert data["message_id"] and "delta" in data and "tool_call" in data
    final = json.loads(events[-1]["data"])
    assert final["message"]["content"] == "abc" and final["status"] == "complete"


async def test_without_event_stream_the_send_answers_both_messages_once_done(
    stack: Stack,
) -> None:
    stack.llm.enqueue(["done ", "now"])
    async with client_for(stack) as client:
        thread_id = await new_thread(client)
        answer = await client.post(
            f"{CHAT}/threads/{thread_id}/messages", json={"content": "hi"}
        )
        assert answer.status_code == 200
        data = answer.json()
        assert data["user_message"]["content"] == "hi"
        assert data["assistant_message"]["content"] == "done now"
        assert data["assistant_message"]["status"] == "complete"


async def test_errors_before_the_first_event_are_http_statuses(stack: Stack) -> None:
    held = stack.llm.enqueue(["a", "b"], hold_at=1)
    async with client_for(stack) as client:
        thread_id = await new_thread(client)
        task = asyncio.create_task(
            client.post(f"{CHAT}/threads/{thread_id}/messages", json={"content": "1"})
        )
        await asyncio.wait_for(held.reached.wait(), 5)
        busy = await client.post(
            f"{CHAT}/threads/{thread_id}/messages",
            json={"content": "2"},
            headers={"Accept": "text/event-stream"},
        )
        assert busy.status_code == 409
        assert busy.json()["error"]["code"] == "conflict"
        held.release.set()
        assert (await asyncio.wait_for(task, 5)).status_code == 200
        empty = await client.post(
            f"{CHAT}/threads/{thread_id}/messages", json={"content": ""}
        )
        assert empty.status_code == 400


async def test_resume_by_header_or_after_parameter_and_204_at_the_end(
    stack: Stack,
) -> None:
    async with client_for(stack, Accept="text/event-stream") as client:
        thread_id = await new_thread(client)
        sent = await client.post(
            f"{CHAT}/threads/{thread_id}/messages", json={"content": "hi"}
        )
        ids = [
            fields(b)["id"]
            for b in sent.text.strip().split("\n\n")
            if not b.startswith(":")
        ]
        message_id = ids[0].rsplit(".", 1)[0]
        events_url = f"{CHAT}/threads/{thread_id}/messages/{message_id}/events"
        by_header = await client.get(events_url, headers={"Last-Event-ID": ids[2]})
        by_param = await client.get(events_url, params={"after": ids[2]})
        for answer in (by_header, by_param):
            got = [
                fields(b)["id"]
                for b in answer.text.strip().split("\n\n")
                if not b.startswith(":")
            ]
            assert got == ids[3:]
        finished = await client.get(events_url, headers={"Last-Event-ID": ids[-1]})
        assert finished.status_code == 204
        head = await client.head(events_url)
        assert head.status_code == 200 and head.content == b""
        foreign = await client.get(
            events_url, headers={"Last-Event-ID": f"{message_id}.9999"}
        )
        assert foreign.status_code == 404


async def test_generation_continues_when_the_client_drops(stack: Stack) -> None:
    held = stack.llm.enqueue(["one ", "two ", "three"], hold_at=2)
    async with client_for(stack) as client:
        thread_id = await new_thread(client)
        async with client.stream(
            "POST",
            f"{CHAT}/threads/{thread_id}/messages",
            json={"content": "hi"},
            headers={"Accept": "text/event-stream"},
        ) as response:
            async for block in sse_blocks(response):
                message_id = json.loads(fields(block)["data"])["message_id"]
                break
        # The connection is closed now; the model is still held mid-reply.
        await asyncio.wait_for(held.reached.wait(), 5)
        held.release.set()
        tail = stack.scoped("a1").stream_events(thread_id, message_id)
        async with asyncio.timeout(5):
            last = [event async for event in tail][-1]
        assert last.type == "message.completed"
        assert last.message is not None and last.message.content == "one two three"


# -- idempotency ---------------------------------------------------------------------------


async def test_idempotent_create_replays_the_first_result(stack: Stack) -> None:
    async with client_for(stack) as client:
        headers = {"Idempotency-Key": "create-1"}
        first = await client.post(
            f"{CHAT}/threads", json={"title": "once"}, headers=headers
        )
        again = await client.post(
            f"{CHAT}/threads", json={"title": "once"}, headers=headers
        )
        assert first.status_code == again.status_code == 201
        assert first.json() == again.json()
        assert again.headers["idempotent-replayed"] == "true"
        assert (await client.get(f"{CHAT}/threads")).json()["total"] == 1
        other = await client.post(
            f"{CHAT}/threads", json={"title": "twice"}, headers=headers
        )
        assert other.status_code == 422
        assert other.json()["error"]["code"] == "idempotency_key_reused"
        bad = await client.post(
            f"{CHAT}/threads", json={}, headers={"Idempotency-Key": "k" * 256}
        )
        assert bad.status_code == 400
    # Keys are per scope: another user's identical key is a different request.
    async with client_for(stack, "b1") as other_client:
        theirs = await other_client.post(
            f"{CHAT}/threads", json={"title": "once"}, headers=headers
        )
        assert theirs.status_code == 201 and theirs.json()["id"] != first.json()["id"]


async def test_idempotent_stream_send_replays_the_same_reply_from_its_start(
    stack: Stack,
) -> None:
    async with client_for(stack, Accept="text/event-stream") as client:
        thread_id = await new_thread(client)
        calls = stack.llm.calls
        headers = {"Idempotency-Key": "send-1"}
        url = f"{CHAT}/threads/{thread_id}/messages"
        first = await client.post(url, json={"content": "hi"}, headers=headers)
        again = await client.post(url, json={"content": "hi"}, headers=headers)
        plain = await client.post(
            url,
            json={"content": "hi"},
            headers={**headers, "Accept": "application/json"},
        )
        assert stack.llm.calls == calls + 1
        assert first.text == again.text
        assert (
            plain.json()["assistant_message"]["id"]
            == json.loads(fields(first.text.split("\n\n")[0])["data"])["message_id"]
        )
        assert plain.json()["user_message"]["content"] == "hi"
        listed = await client.get(f"{CHAT}/threads/{thread_id}/messages")
        assert [m["role"] for m in listed.json()["items"]] == ["user", "assistant"]
        reused = await client.post(url, json={"content": "different"}, headers=headers)
        assert reused.status_code == 422


# -- keys (T61), logs ------------------------------------------------------------------------


async def test_key_edges_are_one_uniform_401(stack: Stack) -> None:
    token = stack.keys["a1"].reveal()
    prefix, secret = token.split("_", 2)[1:]
    other_prefix = stack.keys["b1"].reveal().split("_", 2)[1]
    bad = [
        {},
        {"Authorization": ""},
        {"Authorization": f"Basic {token}"},
        {"Authorization": "Bearer tnx_nope"},
        {"Authorization": f"Bearer tnx_{prefix}_{'Z' * 40}"},
        {"Authorization": f"Bearer tnx_{other_prefix}_{secret}"},
        {"Authorization": f"Bearer tnx_zzzz0000_{secret}"},
        {"Authorization": f"Bearer {token[:-1]}"},
    ]
    async with httpx.AsyncClient(base_url=stack.base_url) as client:
        bodies = set()
        for headers in bad:
            answer = await client.get(f"{CHAT}/threads", headers=headers)
            assert answer.status_code == 401, headers
            bodies.add(answer.content)
            assert secret not in answer.text
        assert len(bodies) == 1
        for accepted in (f"bearer {token}", f"BEARER   {token}"):
            assert (
                await client.get(f"{CHAT}/threads", headers={"Authorization": accepted})
            ).status_code == 200
        in_url = await client.get(f"{CHAT}/threads", params={"api_key": token})
        assert in_url.status_code == 400
        assert secret not in in_url.text
        await stack.engine.revoke_api_key(prefix)
        revoked = await client.get(
            f"{CHAT}/threads", headers={"Authorization": f"Bearer {token}"}
        )
        assert revoked.status_code == 401 and revoked.content in bodies


async def test_the_database_holds_no_plaintext_secret(stack: Stack) -> None:
    secrets = [key.reveal().split("_", 2)[2] for key in stack.keys.values()]
    records = await stack.engine.list_api_keys()
    assert len(records) == 3
    for record in records:
        assert record.secret_hash.startswith("sha256$")
    files = [
        p for p in stack.engine.path.parent.iterdir() if p.name.startswith("server.db")
    ]
    blob = b"".join(p.read_bytes() for p in files)
    for secret in secrets:
        assert secret.encode() not in blob


async def test_a_revoked_key_ends_its_open_stream_at_the_next_event(
    stack: Stack,
) -> None:
    held = stack.llm.enqueue(["a", "b", "c"], hold_at=1)
    token = stack.keys["a1"].reveal()
    async with client_for(stack) as client:
        thread_id = await new_thread(client)
        seen: list[str] = []
        async with client.stream(
            "POST",
            f"{CHAT}/threads/{thread_id}/messages",
            json={"content": "hi"},
            headers={"Accept": "text/event-stream"},
        ) as response:
            async with asyncio.timeout(10):
                async for block in sse_blocks(response):
                    if block.startswith(":"):
                        continue
                    seen.append(block)
                    if len(seen) == 2:  # started + first delta, then the model waits
                        await stack.engine.revoke_api_key(token.split("_", 2)[1])
                        held.release.set()
    assert fields(seen[-1])["event"] == "error"
    assert json.loads(fields(seen[-1])["data"])["error"]["code"] == "unauthorized"
    assert len(seen) == 3


async def test_access_log_has_paths_and_key_prefixes_never_queries_or_secrets(
    stack: Stack, caplog: pytest.LogCaptureFixture
) -> None:
    token = stack.keys["a1"].reveal()
    caplog.set_level(logging.INFO, logger="tenex_tui.server.access")
    async with client_for(stack) as client:
        await client.get(f"{CHAT}/search", params={"q": "private words"})
    lines = [
        r.getMessage() for r in caplog.records if r.name == "tenex_tui.server.access"
    ]
    assert any(f"GET {CHAT}/search 200" in line for line in lines)
    assert any(f"key={token.split('_', 2)[1]}" in line for line in lines)
    text = "\n".join(lines)
    assert "private" not in text and token.split("_", 2)[2] not in text
