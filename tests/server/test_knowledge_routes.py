"""The `/knowledge` and `/leads` routes over HTTP: shapes, idempotent writes, and the
workspace ownership matrix (a colleague may, another workspace gets the 404 of a
missing id, byte for byte)."""

from __future__ import annotations

import httpx

from tenex_tui.server.routes import API_PREFIX, ROUTES
from tests.server.test_ownership import MATRIX, client_for
from tests.support.server_fixture import Stack

GLOBEX = "Globex competes on price and integrations."


def _url(path: str, doc_id: str, lead_id: str) -> str:
    return API_PREFIX + path.replace("{doc_id}", doc_id).replace("{lead_id}", lead_id)


async def _seed(client: httpx.AsyncClient) -> tuple[str, str]:
    doc = await client.post(
        f"{API_PREFIX}/knowledge", json={"title": "Battlecard", "text": GLOBEX}
    )
    assert doc.status_code == 201, doc.text
    leads = await client.post(
        f"{API_PREFIX}/leads", json={"records": [{"name": "Dana", "company": "Acme"}]}
    )
    assert leads.status_code == 200, leads.text
    return doc.json()["id"], leads.json()["items"][0]["id"]


def _workspace_routes() -> list[str]:
    return [
        spec.operation
        for spec in ROUTES
        if (case := MATRIX[spec.operation]) is not None and case.workspace
    ]


def test_every_workspace_owned_route_names_a_doc_or_a_lead() -> None:
    assert sorted(_workspace_routes()) == [
        "get_knowledge",
        "get_lead",
        "remove_knowledge",
    ]
    for spec in ROUTES:
        if spec.operation in _workspace_routes():
            assert set(spec.path_params) <= {"doc_id", "lead_id"}


async def test_other_workspaces_get_the_404_of_a_missing_id(stack: Stack) -> None:
    async with (
        client_for(stack, "a1") as owner,
        client_for(stack, "a2") as colleague,
        client_for(stack, "b1") as outsider,
    ):
        doc_id, lead_id = await _seed(owner)
        for spec in ROUTES:
            if spec.operation not in _workspace_routes():
                continue
            foreign = await outsider.request(
                spec.method, _url(spec.path, doc_id, lead_id)
            )
            missing = await outsider.request(
                spec.method, _url(spec.path, "doc_missing", "lead_missing")
            )
            assert foreign.status_code == 404, (spec.operation, foreign.text)
            assert foreign.content == missing.content, spec.operation
        for path in ("/knowledge", "/leads"):
            listed = await outsider.get(API_PREFIX + path)
            assert listed.json() == {"items": [], "next_cursor": None, "total": 0}
        found = await outsider.get(
            f"{API_PREFIX}/knowledge/search", params={"q": "globex"}
        )
        assert found.json()["items"] == []
        # The owner's colleague reads (and may delete) the workspace's knowledge.
        shown = await colleague.get(
            f"{API_PREFIX}/knowledge/{doc_id}", params={"text": "true"}
        )
        assert shown.status_code == 200 and shown.json()["text"] == GLOBEX
        lead = await colleague.get(f"{API_PREFIX}/leads/{lead_id}")
        assert lead.json()["fields"] == {"name": "Dana", "company": "Acme"}
        deleted = await colleague.delete(f"{API_PREFIX}/knowledge/{doc_id}")
        assert deleted.status_code == 204
        gone = await owner.get(f"{API_PREFIX}/knowledge/{doc_id}")
        assert gone.status_code == 404


async def test_shapes_and_idempotent_writes(stack: Stack) -> None:
    async with client_for(stack, "a1") as client:
        headers = {"Idempotency-Key": "add-1"}
        body = {"title": "Battlecard", "text": GLOBEX, "media_type": "text/markdown"}
        first = await client.post(f"{API_PREFIX}/knowledge", json=body, headers=headers)
        replay = await client.post(
            f"{API_PREFIX}/knowledge", json=body, headers=headers
        )
        assert first.status_code == replay.status_code == 201
        assert replay.headers["idempotent-replayed"] == "true"
        assert replay.json() == first.json()
        assert set(first.json()) >= {"id", "title", "chunk_count", "sha256", "text"}
        assert first.json()["text"] is None
        hits = await client.get(
            f"{API_PREFIX}/knowledge/search", params={"q": "price", "limit": "3"}
        )
        assert hits.json()["items"][0]["title"] == "Battlecard"
        unknown = await client.post(
            f"{API_PREFIX}/knowledge", json={"title": "x", "text": "y", "extra": 1}
        )
        assert unknown.status_code == 400
        assert unknown.json()["error"]["code"] == "invalid_request"
        empty = await client.get(f"{API_PREFIX}/knowledge/search", params={"q": "?"})
        assert empty.status_code == 400
        bad = await client.post(
            f"{API_PREFIX}/leads",
            json={"records": [{"name": "ok"}, {"deep": [[[[["x"]]]]]}]},
        )
        assert bad.status_code == 400 and "record 2" in bad.json()["error"]["message"]
