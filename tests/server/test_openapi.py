"""The OpenAPI document matches the route table and the app, both ways."""

from __future__ import annotations

import json
from typing import Any

import httpx
from starlette.routing import Route

from tenex_tui.server.api import OPENAPI_PATH, create_app
from tenex_tui.server.auth import Authenticator, AuthScope
from tenex_tui.server.mcp_mount import MCP_PATH
from tenex_tui.server.openapi import build_openapi
from tenex_tui.server.routes import API_PREFIX, ROUTES, ServedBackend


class NoKeys:
    async def find_api_key(self, prefix: str) -> None:
        return None


async def no_backend(scope: AuthScope) -> ServedBackend:
    raise AssertionError("no request should reach a backend")


def app_under_test() -> Any:
    return create_app(no_backend, Authenticator(NoKeys()))


def document() -> dict[str, Any]:
    return build_openapi(ROUTES, prefix=API_PREFIX)


def operations(doc: dict[str, Any]) -> set[tuple[str, str]]:
    return {
        (method.upper(), path) for path, item in doc["paths"].items() for method in item
    }


def test_every_route_is_documented_and_nothing_else() -> None:
    doc = document()
    table = {(spec.method, API_PREFIX + spec.path) for spec in ROUTES}
    assert operations(doc) == table
    assert len(table) == len(ROUTES)  # no duplicate (method, path)


def test_the_app_serves_exactly_the_route_table() -> None:
    app = app_under_test()
    served = set()
    for route in app.routes:
        assert isinstance(route, Route)
        if route.path in (OPENAPI_PATH, MCP_PATH):
            continue
        for method in route.methods or ():
            if method != "HEAD":
                served.add((method, route.path))
    assert served == {(spec.method, API_PREFIX + spec.path) for spec in ROUTES}


def test_every_reference_resolves_and_operation_ids_are_unique() -> None:
    doc = document()
    schemas = doc["components"]["schemas"]
    text = json.dumps(doc)
    refs = {
        part.split('"')[0] for part in text.split('"$ref": "#/components/schemas/')[1:]
    }
    assert refs, "the document uses shared schemas"
    assert refs <= set(schemas)
    ids = [op["operationId"] for item in doc["paths"].values() for op in item.values()]
    assert len(ids) == len(set(ids))
    assert doc["openapi"].startswith("3.1")


def test_bodies_and_parameters_come_from_the_real_models() -> None:
    doc = document()
    send = doc["paths"][f"{API_PREFIX}/threads/{{thread_id}}/messages"]["post"]
    ref = send["requestBody"]["content"]["application/json"]["schema"]["$ref"].rsplit(
        "/", 1
    )[1]
    body = doc["components"]["schemas"][ref]
    assert body["required"] == ["content"]
    assert body["additionalProperties"] is False  # unknown fields are refused
    assert "text/event-stream" in send["responses"]["200"]["content"]
    names = {p["name"] for p in send["parameters"]}
    assert names == {"thread_id", "Idempotency-Key"}
    listing = doc["paths"][f"{API_PREFIX}/threads"]["get"]
    assert {p["name"] for p in listing["parameters"]} == {
        "limit",
        "cursor",
        "archived",
        "pinned",
        "agent",
        "q",
    }
    assert listing["responses"]["404"]["content"]["application/json"]["schema"][
        "$ref"
    ].endswith("ErrorEnvelope")


async def test_the_document_is_served_without_a_key() -> None:
    transport = httpx.ASGITransport(app=app_under_test())
    async with httpx.AsyncClient(
        transport=transport, base_url="http://127.0.0.1"
    ) as client:
        answer = await client.get(OPENAPI_PATH)
        assert answer.status_code == 200
        assert operations(answer.json()) == operations(document())
        denied = await client.get(f"{API_PREFIX}/threads")
        assert denied.status_code == 401
        assert denied.json()["error"]["code"] == "unauthorized"
        assert denied.headers["www-authenticate"].startswith("Bearer")
        missing = await client.get(f"{API_PREFIX}/nope")
        assert missing.status_code == 404
        assert missing.json() == {
            "error": {"code": "not_found", "message": "No such route."}
        }
        wrong = await client.put(f"{API_PREFIX}/threads")
        assert wrong.status_code == 405
        assert wrong.json()["error"]["code"] == "method_not_allowed"
