"""T55 over HTTP: the ownership matrix, generated from the route table.

Every route that names an owned id is tried with the ids of another user of the same
workspace and of another workspace: the answer is 404, byte-identical to the answer for
an id that does not exist, and the owner's data is unchanged. A route added to the table
without an entry here fails `test_every_route_has_a_matrix_entry`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from tenex_tui.server.routes import API_PREFIX, ROUTES
from tests.support.server_fixture import Stack


@dataclass(frozen=True)
class Owned:
    """How to call a route that names owned ids."""

    body: dict[str, Any] | None = None
    status: int = 200
    message: str = "assistant"
    """Which message id fills `{message_id}`: the `assistant` reply or the `user` one."""
    accept: str = "application/json"
    workspace: bool = False
    """Owned by the workspace, not the user (knowledge, leads): tested in
    `test_knowledge_routes.py`, where another user of the workspace may use it."""


UNOWNED = None
"""Routes without owned ids (checked for leaks separately)."""

MATRIX: dict[str, Owned | None] = {
    "info": UNOWNED,
    "create_thread": UNOWNED,
    "list_threads": UNOWNED,
    "search": UNOWNED,
    "list_models": UNOWNED,
    "list_agents": UNOWNED,
    "get_thread": Owned(),
    "update_thread": Owned(body={"title": "taken over"}),
    "delete_thread": Owned(status=204),
    "mark_read": Owned(),
    "list_messages": Owned(),
    "send_message": Owned(body={"content": "intrusion"}),
    "get_message": Owned(),
    "edit_message": Owned(body={"content": "rewritten"}, message="user"),
    "stream_events": Owned(accept="text/event-stream"),
    "cancel_message": Owned(),
    "regenerate": Owned(body={}),
    # The sync feeds name no ids; tests/server/test_sync_feeds.py checks they leak
    # nothing of another scope.
    "sync_threads": UNOWNED,
    "sync_messages": UNOWNED,
    "list_knowledge": UNOWNED,
    "add_knowledge": UNOWNED,
    "search_knowledge": UNOWNED,
    "get_knowledge": Owned(workspace=True),
    "remove_knowledge": Owned(workspace=True, status=204),
    "list_leads": UNOWNED,
    "import_leads": UNOWNED,
    "get_lead": Owned(workspace=True),
}


def test_every_route_has_a_matrix_entry() -> None:
    assert set(MATRIX) == {spec.operation for spec in ROUTES}
    for spec in ROUTES:
        assert (MATRIX[spec.operation] is None) == (not spec.path_params), (
            spec.operation
        )


@dataclass
class Owner:
    thread_id: str
    assistant_id: str
    user_id: str


async def make_thread(client: httpx.AsyncClient) -> Owner:
    created = await client.post(f"{API_PREFIX}/threads", json={"title": "owned"})
    thread_id = created.json()["id"]
    sent = await client.post(
        f"{API_PREFIX}/threads/{thread_id}/messages", json={"content": "secret plans"}
    )
    assert sent.status_code == 200, sent.text
    data = sent.json()
    return Owner(thread_id, data["assistant_message"]["id"], data["user_message"]["id"])


def url_for(path: str, thread_id: str, message_id: str) -> str:
    return API_PREFIX + path.replace("{thread_id}", thread_id).replace(
        "{message_id}", message_id
    )


async def snapshot(client: httpx.AsyncClient, owner: Owner) -> str:
    thread = (await client.get(f"{API_PREFIX}/threads/{owner.thread_id}")).json()
    messages = (
        await client.get(f"{API_PREFIX}/threads/{owner.thread_id}/messages")
    ).json()
    return json.dumps([thread, messages], sort_keys=True)


def client_for(stack: Stack, name: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        base_url=stack.base_url,
        headers={"Authorization": f"Bearer {stack.keys[name].reveal()}"},
        timeout=10,
    )


@pytest.mark.parametrize("intruder", ["a2", "b1"])
async def test_other_scopes_get_the_same_404_as_a_missing_id(
    stack: Stack, intruder: str
) -> None:
    async with (
        client_for(stack, "a1") as owner_client,
        client_for(stack, intruder) as other,
    ):
        owner = await make_thread(owner_client)
        before = await snapshot(owner_client, owner)
        for spec in ROUTES:
            case = MATRIX[spec.operation]
            if case is None or case.workspace:
                continue
            message_id = owner.user_id if case.message == "user" else owner.assistant_id
            headers = {"Accept": case.accept}
            foreign = await other.request(
                spec.method,
                url_for(spec.path, owner.thread_id, message_id),
                json=case.body,
                headers=headers,
            )
            missing = await other.request(
                spec.method,
                url_for(
                    spec.path,
                    "thr_00000000000000000000009999",
                    "msg_00000000000000000000009999",
                ),
                json=case.body,
                headers=headers,
            )
            assert foreign.status_code == 404, (spec.operation, foreign.text)
            assert foreign.content == missing.content, spec.operation
            assert foreign.json()["error"]["code"] == "not_found"
        assert await snapshot(owner_client, owner) == before
        # Lists and search never show the owner's rows.
        listed = await other.get(f"{API_PREFIX}/threads", params={"archived": "all"})
        assert listed.json()["items"] == [] and listed.json()["total"] == 0
        found = await other.get(f"{API_PREFIX}/search", params={"q": "secret plans"})
        assert found.json()["items"] == []


async def test_the_owner_succeeds_on_every_owned_route(stack: Stack) -> None:
    async with client_for(stack, "a1") as client:
        for spec in ROUTES:
            case = MATRIX[spec.operation]
            if case is None or case.workspace:
                continue
            owner = await make_thread(client)
            message_id = owner.user_id if case.message == "user" else owner.assistant_id
            answer = await client.request(
                spec.method,
                url_for(spec.path, owner.thread_id, message_id),
                json=case.body,
                headers={"Accept": case.accept},
            )
            assert answer.status_code == case.status, (spec.operation, answer.text)
