"""`GET /sync/threads` and `GET /sync/messages` on the wire: what a page holds, how a
cursor resumes, deletions as tombstones, scope isolation, limits and size budgets."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tenex_tui.core.sync import MessageChanges, ThreadChanges
from tenex_tui.engine.store_sync import PAGE_CHAR_BUDGET
from tenex_tui.server.routes import API_PREFIX
from tests.support.server_fixture import Stack

CHAT = API_PREFIX


def client_for(stack: Stack, name: str = "a1") -> httpx.AsyncClient:
    return httpx.AsyncClient(
        base_url=stack.base_url,
        headers={"Authorization": f"Bearer {stack.keys[name].reveal()}"},
        timeout=10,
    )


async def threads_feed(
    client: httpx.AsyncClient, cursor: str | None = None, **params: Any
) -> ThreadChanges:
    query = {k: str(v) for k, v in params.items()}
    if cursor is not None:
        query["cursor"] = cursor
    answer = await client.get(f"{CHAT}/sync/threads", params=query)
    assert answer.status_code == 200, answer.text
    return ThreadChanges.model_validate_json(answer.content)


async def messages_feed(
    client: httpx.AsyncClient, cursor: str | None = None, **params: Any
) -> MessageChanges:
    query = {k: str(v) for k, v in params.items()}
    if cursor is not None:
        query["cursor"] = cursor
    answer = await client.get(f"{CHAT}/sync/messages", params=query)
    assert answer.status_code == 200, answer.text
    return MessageChanges.model_validate_json(answer.content)


async def send(stack: Stack, thread_id: str, text: str, name: str = "a1") -> None:
    async for _ in stack.scoped(name).send_message(thread_id, text):
        pass


async def test_a_first_page_holds_every_thread_and_message_in_change_order(
    stack: Stack,
) -> None:
    a1 = stack.scoped("a1")
    first = await a1.create_thread(title="first")
    second = await a1.create_thread(title="second")
    await send(stack, first.id, "hello")
    async with client_for(stack) as client:
        threads = await threads_feed(client)
        messages = await messages_feed(client)
    # `first` changed last (its reply), so it comes after `second`.
    assert [t.id for t in threads.items] == [second.id, first.id]
    assert threads.items[1].message_count == 2
    assert (threads.deleted, threads.has_more) == ([], False)
    assert [(m.thread_id, m.role, m.seq, m.status) for m in messages.items] == [
        (first.id, "user", 1, "complete"),
        (first.id, "assistant", 2, "complete"),
    ]
    assert messages.items[1].content == "w0 w1 w2 w3 w4 "


async def test_a_cursor_resumes_after_the_last_change_and_sees_only_new_ones(
    stack: Stack,
) -> None:
    a1 = stack.scoped("a1")
    kept = await a1.create_thread(title="kept")
    renamed = await a1.create_thread(title="before")
    async with client_for(stack) as client:
        page = await threads_feed(client)
        again = await threads_feed(client, page.next_cursor)
        assert again.items == [] and again.deleted == [] and not again.has_more
        assert again.next_cursor == page.next_cursor  # nothing moved

        await a1.update_thread(renamed.id, title="after")
        changed = await threads_feed(client, page.next_cursor)
        assert [(t.id, t.title) for t in changed.items] == [(renamed.id, "after")]

        await a1.delete_thread(kept.id)
        deleted = await threads_feed(client, changed.next_cursor)
        assert deleted.items == [] and deleted.deleted == [kept.id]


async def test_message_deletions_are_tombstones_but_a_thread_deletion_covers_its_own(
    stack: Stack,
) -> None:
    a1 = stack.scoped("a1")
    thread = await a1.create_thread(title="edits")
    await send(stack, thread.id, "one")
    await send(stack, thread.id, "two")
    async with client_for(stack) as client:
        start = await messages_feed(client)
        history = (await a1.list_messages(thread.id)).items
        # Editing the last user message removes the reply after it.
        await a1.edit_message(thread.id, history[2].id, "two, edited")
        page = await messages_feed(client, start.next_cursor)
        assert [m.content for m in page.items] == ["two, edited"]
        assert [(d.id, d.thread_id) for d in page.deleted] == [
            (history[3].id, thread.id)
        ]

        await a1.delete_thread(thread.id)
        after = await messages_feed(client, page.next_cursor)
        assert after.items == [] and after.deleted == []
        gone = await threads_feed(client)
        assert gone.deleted == [thread.id]


async def test_paging_with_a_small_limit_visits_every_change_once(stack: Stack) -> None:
    a1 = stack.scoped("a1")
    created = [(await a1.create_thread(title=f"t{i}")).id for i in range(7)]
    for thread_id in created[:3]:
        await a1.delete_thread(thread_id)
    seen: list[str] = []
    tombs: list[str] = []
    cursor: str | None = None
    async with client_for(stack) as client:
        for _ in range(20):
            page = await threads_feed(client, cursor, limit=2)
            assert len(page.items) <= 2 and len(page.deleted) <= 2
            seen += [t.id for t in page.items]
            tombs += page.deleted
            cursor = page.next_cursor
            if not page.has_more:
                break
    assert seen == created[3:]
    assert tombs == created[:3]


@pytest.mark.parametrize("other", ["a2", "b1"])
async def test_other_scopes_see_nothing_and_cannot_use_a_cursor(
    stack: Stack, other: str
) -> None:
    a1 = stack.scoped("a1")
    thread = await a1.create_thread(title="mine")
    await send(stack, thread.id, "private words")
    doomed = await a1.create_thread(title="doomed")
    await a1.delete_thread(doomed.id)
    async with client_for(stack) as owner, client_for(stack, other) as intruder:
        theirs = await threads_feed(intruder)
        assert theirs.items == [] and theirs.deleted == []
        their_messages = await messages_feed(intruder)
        assert their_messages.items == [] and their_messages.deleted == []
        cursor = (await threads_feed(owner)).next_cursor
        refused = await intruder.get(f"{CHAT}/sync/threads", params={"cursor": cursor})
        assert refused.status_code == 400
        assert refused.json()["error"]["code"] == "invalid_cursor"
        message_cursor = (await messages_feed(owner)).next_cursor
        wrong_feed = await owner.get(
            f"{CHAT}/sync/threads", params={"cursor": message_cursor}
        )
        assert wrong_feed.json()["error"]["code"] == "invalid_cursor"


@pytest.mark.parametrize(
    ("limit", "status"), [("0", 400), ("-3", 400), ("abc", 400), ("2.5", 400)]
)
async def test_bad_limits_are_400(stack: Stack, limit: str, status: int) -> None:
    async with client_for(stack) as client:
        answer = await client.get(f"{CHAT}/sync/threads", params={"limit": limit})
        assert answer.status_code == status
        assert answer.json()["error"]["code"] == "invalid_request"


async def test_a_huge_limit_is_capped_and_a_page_stops_at_its_size_budget(
    stack: Stack,
) -> None:
    a1 = stack.scoped("a1")
    big = "x" * 190_000
    thread = await a1.create_thread(title="big")
    for _ in range(18):
        await send(stack, thread.id, big)
    async with client_for(stack) as client:
        page = await messages_feed(client, limit=5000)
        chars = sum(len(m.content) for m in page.items)
        assert page.has_more and 0 < len(page.items) < 36
        assert chars <= PAGE_CHAR_BUDGET + len(big)
        rest = await messages_feed(client, page.next_cursor, limit=5000)
        assert len(page.items) + len(rest.items) == 36 and not rest.has_more


async def test_the_feeds_need_a_key(stack: Stack) -> None:
    async with httpx.AsyncClient(base_url=stack.base_url, timeout=10) as client:
        answer = await client.get(f"{CHAT}/sync/messages")
    assert answer.status_code == 401


async def test_a_streaming_reply_is_in_the_feed_and_changes_again_when_it_ends(
    stack: Stack,
) -> None:
    a1 = stack.scoped("a1")
    thread = await a1.create_thread(title="live")
    reply = stack.llm.enqueue(["half ", "way ", "done"], hold_at=2)
    events = a1.send_message(thread.id, "go")
    async with client_for(stack) as client:
        first = await anext(events)
        assert first.type == "message.started"
        await reply.reached.wait()
        live = await messages_feed(client)
        assert [m.status for m in live.items] == ["complete", "streaming"]
        reply.release.set()
        async for _ in events:
            pass
        after = await messages_feed(client, live.next_cursor)
        assert [(m.status, m.content) for m in after.items] == [
            ("complete", "half way done")
        ]
