"""The brand-knowledge and lead routes (`/knowledge`, `/leads`): an extension of
`/api/v1/chat` for the seed's "attach knowledge documents or lead context".

They join the chat routes in `routes.ROUTES` (through `knowledge_routes()`, so the app,
the OpenAPI document and the ownership tests all see them). Documents and leads belong
to the key's workspace: every user of the workspace sees the same ones, and another
workspace's ids are `404 not_found`, like missing ones.

| operation | route |
| --- | --- |
| list documents, newest first | `GET /knowledge?limit=&cursor=&q=` |
| add a document (text already extracted) | `POST /knowledge` → 201 |
| search the chunks | `GET /knowledge/search?q=&limit=` |
| one document (with its text: `?text=true`) | `GET /knowledge/{doc_id}` |
| delete a document | `DELETE /knowledge/{doc_id}` → 204 |
| list leads, newest first | `GET /leads?limit=&cursor=&q=` |
| import lead records | `POST /leads` |
| one lead | `GET /leads/{lead_id}` |
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from starlette.responses import Response

from tenex_tui.core.models import KnowledgeDoc, KnowledgeHit, Lead, Page
from tenex_tui.core.payloads import AddKnowledgeBody, ImportLeadsBody
from tenex_tui.server.parsing import (
    parse_json_body,
    path_id,
    query_bool,
    query_limit,
    query_text,
)
from tenex_tui.server.streaming import json_response

if TYPE_CHECKING:
    from tenex_tui.server.routes import RequestContext, RouteSpec


async def _idempotent(
    ctx: RequestContext, run: Callable[[], Awaitable[tuple[int, Any]]]
) -> Response:
    # The chat routes' own Idempotency-Key handling; imported here because `routes`
    # imports this module while it builds its table.
    from tenex_tui.server.routes import _idempotent_json

    return await _idempotent_json(ctx, run)


async def list_knowledge(ctx: RequestContext) -> Response:
    """`GET /knowledge`."""
    request = ctx.request
    page = await ctx.backend.list_knowledge(
        limit=query_limit(request),
        cursor=query_text(request, "cursor", max_chars=4000),
        q=query_text(request, "q"),
    )
    return json_response(page.model_dump(mode="json"))


async def add_knowledge(ctx: RequestContext) -> Response:
    """`POST /knowledge`."""
    body = parse_json_body(await ctx.body(), AddKnowledgeBody)

    async def run() -> tuple[int, Any]:
        doc = await ctx.backend.add_knowledge(
            body.title, body.text, media_type=body.media_type, source=body.source
        )
        return 201, doc.model_dump(mode="json")

    return await _idempotent(ctx, run)


async def search_knowledge(ctx: RequestContext) -> Response:
    """`GET /knowledge/search`."""
    request = ctx.request
    hits = await ctx.backend.search_knowledge(
        query_text(request, "q") or "", query_limit(request)
    )
    page = Page[KnowledgeHit](items=hits, next_cursor=None, total=len(hits))
    return json_response(page.model_dump(mode="json"))


async def get_knowledge(ctx: RequestContext) -> Response:
    """`GET /knowledge/{doc_id}`."""
    doc = await ctx.backend.get_knowledge(
        path_id(ctx.request, "doc_id"),
        with_text=bool(query_bool(ctx.request, "text")),
    )
    return json_response(doc.model_dump(mode="json"))


async def remove_knowledge(ctx: RequestContext) -> Response:
    """`DELETE /knowledge/{doc_id}`."""
    await ctx.backend.remove_knowledge(path_id(ctx.request, "doc_id"))
    return Response(status_code=204)


async def list_leads(ctx: RequestContext) -> Response:
    """`GET /leads`."""
    request = ctx.request
    page = await ctx.backend.list_leads(
        limit=query_limit(request),
        cursor=query_text(request, "cursor", max_chars=4000),
        q=query_text(request, "q"),
    )
    return json_response(page.model_dump(mode="json"))


async def import_leads(ctx: RequestContext) -> Response:
    """`POST /leads`."""
    body = parse_json_body(await ctx.body(), ImportLeadsBody)

    async def run() -> tuple[int, Any]:
        leads = await ctx.backend.import_leads(body.records)
        page = Page[Lead](items=leads, next_cursor=None, total=len(leads))
        return 200, page.model_dump(mode="json")

    return await _idempotent(ctx, run)


async def get_lead(ctx: RequestContext) -> Response:
    """`GET /leads/{lead_id}`."""
    lead = await ctx.backend.get_lead(path_id(ctx.request, "lead_id"))
    return json_response(lead.model_dump(mode="json"))


def knowledge_routes() -> tuple[RouteSpec, ...]:
    """The routes of this module, for `routes.ROUTES`.

    `/knowledge/search` comes before `/knowledge/{doc_id}`: Starlette matches in order.
    """
    from tenex_tui.server.routes import QueryParam, RouteSpec

    limit = QueryParam(
        "limit", "integer", "Page size: default 50, values above 200 mean 200."
    )
    cursor = QueryParam("cursor", "string", "The `next_cursor` of the previous page.")
    return (
        RouteSpec("GET", "/knowledge", "list_knowledge",
                  "List brand-knowledge documents, newest first", list_knowledge,
                  response=Page[KnowledgeDoc],
                  query=(limit, cursor,
                         QueryParam("q", "string", "Only titles containing this text"))),
        RouteSpec("POST", "/knowledge", "add_knowledge",
                  "Add a brand-knowledge document (chunked and indexed)",
                  add_knowledge, status=201, response=KnowledgeDoc,
                  body=AddKnowledgeBody, idempotent_post=True),
        RouteSpec("GET", "/knowledge/search", "search_knowledge",
                  "The knowledge chunks that best match some words", search_knowledge,
                  response=Page[KnowledgeHit],
                  query=(QueryParam("q", "string", "Words to find", required=True),
                         QueryParam("limit", "integer", "Hits: default 8, at most 50"))),
        RouteSpec("GET", "/knowledge/{doc_id}", "get_knowledge",
                  "Get one knowledge document", get_knowledge, response=KnowledgeDoc,
                  query=(QueryParam("text", "boolean", "Include the document's text"),)),
        RouteSpec("DELETE", "/knowledge/{doc_id}", "remove_knowledge",
                  "Delete a knowledge document and its chunks", remove_knowledge,
                  status=204),
        RouteSpec("GET", "/leads", "list_leads", "List leads, newest first",
                  list_leads, response=Page[Lead],
                  query=(limit, cursor,
                         QueryParam("q", "string", "Only names containing this text"))),
        RouteSpec("POST", "/leads", "import_leads",
                  "Import lead records (identical records are stored once)",
                  import_leads, response=Page[Lead], body=ImportLeadsBody,
                  idempotent_post=True),
        RouteSpec("GET", "/leads/{lead_id}", "get_lead", "Get one lead", get_lead,
                  response=Lead),
    )  # fmt: skip
