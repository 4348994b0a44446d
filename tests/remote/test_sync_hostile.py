"""T62: a hostile or buggy remote during sync (an `httpx.MockTransport` plays it).

Rows naming another workspace or user are dropped and logged; ids that collide with
this machine's threads never overwrite them (composite keys); a `next_cursor` that
repeats stops the pagination; a page that is not a sync page changes nothing.
"""

from __future__ import annotations

import json
import logging
import random
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from tenex_tui.core.errors import RemoteUnavailable
from tenex_tui.core.secrets import Secret
from tenex_tui.remote.client import RemoteBackend
from tenex_tui.remote.http import RetryPolicy
from tests.remote.sync_helpers import (
    all_messages,
    all_threads,
    client_engine,
    service_for,
)

KEY = Secret("tnx_hostile1_" + "k" * 40)
WS, USER = "ws_h", "usr_h"
STAMP = "2026-02-01T10:00:00.000000Z"


def thread(
    thread_id: str, *, workspace: str = WS, user: str = USER, title: str = "t"
) -> dict[str, Any]:
    return {
        "id": thread_id,
        "workspace_id": workspace,
        "user_id": user,
        "title": title,
        "created_at": STAMP,
        "updated_at": STAMP,
        "message_count": 1,
    }


def message(message_id: str, thread_id: str, seq: int, content: str) -> dict[str, Any]:
    return {
        "id": message_id,
        "thread_id": thread_id,
        "role": "user",
        "content": content,
        "status": "complete",
        "created_at": STAMP,
        "seq": seq,
    }


Handler = Callable[[httpx.Request], httpx.Response]


def remote(handler: Handler) -> RemoteBackend:
    def with_me(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/me"):
            info = {"kind": "remote", "workspace": "Hostile"}
            return httpx.Response(
                200, json={"workspace_id": WS, "user_id": USER, "info": info}
            )
        return handler(request)

    return RemoteBackend(
        "http://127.0.0.1:9",
        KEY,
        transport=httpx.MockTransport(with_me),
        retry=RetryPolicy(max_retries=0, deadline=5),
        rng=random.Random(1),
    )


async def test_foreign_rows_are_dropped_and_logged_and_collisions_stay_apart(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async with client_engine(tmp_path / "client.db") as engine:
        local = await engine.create_thread(title="my own local thread")
        local_before = await engine.get_thread(local.id)

        def handler(request: httpx.Request) -> httpx.Response:
            path = request.url.path
            if path.endswith("/sync/threads"):
                return httpx.Response(
                    200,
                    json={
                        "items": [
                            thread(local.id, title="collides with a local id"),
                            thread("thr_other_ws", workspace="ws_other"),
                            thread("thr_other_user", user="usr_someone"),
                        ],
                        "deleted": [],
                        "next_cursor": "t1",
                        "has_more": False,
                    },
                )
            if path.endswith("/sync/messages"):
                return httpx.Response(
                    200,
                    json={
                        "items": [
                            message("msg_ok", local.id, 1, "fine"),
                            message("msg_smuggled", "thr_other_ws", 1, "smuggled"),
                        ],
                        "deleted": [],
                        "next_cursor": "m1",
                        "has_more": False,
                    },
                )
            if path.endswith("/threads/thr_other_ws"):
                return httpx.Response(200, json=thread("thr_other_ws", workspace="x"))
            return httpx.Response(
                404, json={"error": {"code": "not_found", "message": "no"}}
            )

        service = service_for(remote(handler), engine)
        with caplog.at_level(logging.WARNING, logger="tenex_tui.sync"):
            report = await service.sync()
        assert report.dropped == 3  # two in the feed, and the fetched foreign thread
        assert sum("not the key's" in r.getMessage() for r in caplog.records) == 3
        port = service.port
        assert port is not None
        mirrored = await all_threads(port.backend)
        assert [(t.id, t.title) for t in mirrored] == [
            (local.id, "collides with a local id")
        ]
        assert [m.id for m in await all_messages(port.backend, local.id)] == ["msg_ok"]
        # This machine's own thread with the same id is untouched.
        assert await engine.get_thread(local.id) == local_before
        assert (await engine.list_messages(local.id)).items == []
        await service.remote.aclose()


async def test_a_repeated_next_cursor_stops_the_loop(tmp_path: Path) -> None:
    calls: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        path = request.url.path
        calls.append(path)
        feed = "threads" if path.endswith("/sync/threads") else "messages"
        return httpx.Response(
            200,
            json={
                "items": [thread("thr_loop")] if feed == "threads" else [],
                "deleted": [],
                "next_cursor": "same-every-time",
                "has_more": True,
            },
        )

    async with client_engine(tmp_path / "client.db") as engine:
        service = service_for(remote(handler), engine)
        report = await service.sync()
        assert sum(p.endswith("/sync/threads") for p in calls) == 2
        assert sum(p.endswith("/sync/messages") for p in calls) == 2
        assert sum("repeated a cursor" in w for w in report.warnings) == 2
        # The position is never advanced to a cursor that loops.
        port = service.port
        assert port is not None
        state = await port.state()
        assert state is not None and state.threads_cursor == "same-every-time"
        await service.remote.aclose()


@pytest.mark.parametrize(
    "answer",
    [
        httpx.Response(200, text="<html>captive portal</html>"),
        httpx.Response(200, json={"items": "not a list"}),
        httpx.Response(200, json={"items": [{"id": 3}], "next_cursor": "x"}),
    ],
)
async def test_a_page_that_is_not_a_sync_page_changes_nothing(
    tmp_path: Path, answer: httpx.Response
) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            answer.status_code, content=answer.content, headers=answer.headers
        )

    async with client_engine(tmp_path / "client.db") as engine:
        service = service_for(remote(handler), engine)
        with pytest.raises(RemoteUnavailable) as caught:
            await service.sync()
        assert "/sync/threads" in caught.value.message
        port = service.port
        assert port is not None
        assert await all_threads(port.backend) == []
        state = await port.state()
        assert state is not None and state.threads_cursor is None
        assert state.last_error == caught.value.message
        await service.remote.aclose()


async def test_a_feed_page_with_a_huge_body_is_refused_while_streaming(
    tmp_path: Path,
) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(20):
            yield b" " * 1_048_576

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=chunks())

    async with client_engine(tmp_path / "client.db") as engine:
        service = service_for(remote(handler), engine)
        with pytest.raises(RemoteUnavailable) as caught:
            await service.sync()
        assert "MB" in caught.value.message
        await service.remote.aclose()


def test_the_fixture_pages_are_valid_json() -> None:
    assert json.loads(json.dumps(thread("t"))) == thread("t")


async def test_a_remote_without_sync_feeds_is_named_clearly(tmp_path: Path) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            404, json={"error": {"code": "not_found", "message": "No such route."}}
        )

    async with client_engine(tmp_path / "client.db") as engine:
        service = service_for(remote(handler), engine)
        with pytest.raises(RemoteUnavailable) as caught:
            await service.sync()
        assert "does not offer incremental sync" in caught.value.message
        await service.remote.aclose()
