"""T57 over HTTP: a Hypothesis state machine interleaves create, rename, archive, delete
and paginate for two users of workspace A and one of workspace B; after every step each
user's list holds exactly that user's threads (and `total` counts them), and every
foreign id is a 404.

The server runs in a background thread with its own event loop (Hypothesis' state
machines are synchronous); every example gets fresh workspaces, so examples never see
each other's rows.
"""

from __future__ import annotations

import asyncio
import itertools
import threading
from collections.abc import Iterator
from concurrent.futures import Future
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, invariant, rule

from tenex_tui.server.auth import generate_key
from tenex_tui.server.routes import API_PREFIX
from tests.support.server_fixture import Stack, serve_stack

NAMES = ("a1", "a2", "b1")


class ServerThread:
    """`serve_stack` running in a thread; `call` runs a coroutine on its loop."""

    def __init__(self, tmp_path: Path) -> None:
        self._tmp = tmp_path
        self._loop = asyncio.new_event_loop()
        self._ready: Future[Stack] = Future()
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        self.stack = self._ready.result(timeout=30)

    def _run(self) -> None:
        self._loop.run_until_complete(self._main())

    async def _main(self) -> None:
        self._stop = asyncio.Event()
        try:
            async with serve_stack(self._tmp) as stack:
                self._ready.set_result(stack)
                await self._stop.wait()
        except BaseException as exc:
            if not self._ready.done():
                self._ready.set_exception(exc)
            raise

    def call(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout=30)

    def close(self) -> None:
        assert self._stop is not None
        self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(timeout=30)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerThread]:
    server = ServerThread(tmp_path_factory.mktemp("stateful"))
    try:
        yield server
    finally:
        server.close()


_counter = itertools.count()


class Isolation(RuleBasedStateMachine):
    """The model: each user's own threads, by id."""

    server: ServerThread

    threads = Bundle("threads")

    def __init__(self) -> None:
        super().__init__()
        run = next(_counter)
        scopes = {
            "a1": (f"ws_a{run}", "u1"),
            "a2": (f"ws_a{run}", "u2"),
            "b1": (f"ws_b{run}", "u1"),
        }
        self.scopes = scopes
        self.clients: dict[str, httpx.Client] = {}
        for name, (workspace, user) in scopes.items():
            key = generate_key()
            self.server.call(
                self.server.stack.engine.create_api_key(
                    workspace_id=workspace,
                    user_id=user,
                    prefix=key.prefix,
                    secret_hash=key.secret_hash,
                )
            )
            self.clients[name] = httpx.Client(
                base_url=self.server.stack.base_url + API_PREFIX,
                headers={"Authorization": f"Bearer {key.token.reveal()}"},
                timeout=10,
            )
        self.model: dict[str, dict[str, dict[str, Any]]] = {name: {} for name in NAMES}

    def teardown(self) -> None:
        for client in self.clients.values():
            client.close()

    def _owner(self, thread_id: str) -> str | None:
        return next((name for name in NAMES if thread_id in self.model[name]), None)

    @rule(
        target=threads,
        who=st.sampled_from(NAMES),
        title=st.text("abc xyz", min_size=1, max_size=8),
    )
    def create(self, who: str, title: str) -> str:
        title = title.strip() or "t"
        answer = self.clients[who].post("/threads", json={"title": title})
        assert answer.status_code == 201, answer.text
        data = answer.json()
        assert (data["workspace_id"], data["user_id"]) == self.scopes[who]
        self.model[who][data["id"]] = {"title": title, "archived": False}
        return str(data["id"])

    @rule(
        thread_id=threads,
        who=st.sampled_from(NAMES),
        title=st.sampled_from(["renamed", "other"]),
    )
    def rename(self, thread_id: str, who: str, title: str) -> None:
        answer = self.clients[who].patch(f"/threads/{thread_id}", json={"title": title})
        if self._owner(thread_id) == who:
            assert answer.status_code == 200
            self.model[who][thread_id]["title"] = title
        else:
            assert answer.status_code == 404

    @rule(thread_id=threads, who=st.sampled_from(NAMES), archived=st.booleans())
    def archive(self, thread_id: str, who: str, archived: bool) -> None:
        answer = self.clients[who].patch(
            f"/threads/{thread_id}", json={"archived": archived}
        )
        if self._owner(thread_id) == who:
            assert answer.status_code == 200
            self.model[who][thread_id]["archived"] = archived
        else:
            assert answer.status_code == 404

    @rule(thread_id=threads, who=st.sampled_from(NAMES))
    def delete(self, thread_id: str, who: str) -> None:
        answer = self.clients[who].delete(f"/threads/{thread_id}")
        if self._owner(thread_id) == who:
            assert answer.status_code == 204
            del self.model[who][thread_id]
        else:
            assert answer.status_code == 404

    @rule(
        who=st.sampled_from(NAMES),
        limit=st.integers(1, 3),
        archived=st.sampled_from(["false", "true", "all"]),
    )
    def paginate(self, who: str, limit: int, archived: str) -> None:
        wanted = {
            thread_id
            for thread_id, row in self.model[who].items()
            if archived == "all" or row["archived"] == (archived == "true")
        }
        seen: list[str] = []
        cursor: str | None = None
        for _ in range(100):
            params = {"limit": str(limit), "archived": archived}
            if cursor:
                params["cursor"] = cursor
            page = self.clients[who].get("/threads", params=params).json()
            assert page["total"] == len(wanted)
            for item in page["items"]:
                assert (item["workspace_id"], item["user_id"]) == self.scopes[who]
                seen.append(item["id"])
            cursor = page["next_cursor"]
            if cursor is None:
                break
        assert len(seen) == len(set(seen))
        assert set(seen) == wanted

    @invariant()
    def every_list_is_exactly_its_owner_rows(self) -> None:
        for who in NAMES:
            page = (
                self.clients[who]
                .get("/threads", params={"archived": "all", "limit": "200"})
                .json()
            )
            assert {item["id"] for item in page["items"]} == set(self.model[who])
            assert page["total"] == len(self.model[who])
            for item in page["items"]:
                assert item["title"] == self.model[who][item["id"]]["title"]


def test_isolation_holds_under_interleaved_operations(served: ServerThread) -> None:
    Isolation.server = served
    machine = Isolation.TestCase
    machine.settings = settings(
        max_examples=10,
        stateful_step_count=12,
        derandomize=True,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow],
    )
    machine().runTest()
