"""`GET /sync/threads` and `GET /sync/messages`: the change feeds of incremental sync.

A client mirrors the caller's threads and messages by reading each feed from its last
stored `next_cursor` until `has_more` is false (see `core/sync.py` for the page shape
and `engine/store_sync.py` for why positions are change numbers and not timestamps).
Like every route, the feeds are scoped to the key's workspace and user by the backend
itself: another scope's rows and tombstones never appear, and another scope's cursor is
`400 invalid_cursor`.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from starlette.requests import Request
from starlette.responses import Response

from tenex_tui.core.errors import InvalidRequest, NotFound
from tenex_tui.core.sync import MAX_SYNC_LIMIT, MessageChanges, ThreadChanges
from tenex_tui.server.parsing import query_text

if TYPE_CHECKING:
    from tenex_tui.server.routes import RequestContext

_INT = re.compile(r"-?[0-9]{1,18}")
SYNC_LIMIT_HELP = (
    f"Changes per page: default 200, values above {MAX_SYNC_LIMIT} mean "
    f"{MAX_SYNC_LIMIT} (a page may stop early to stay under its size budget)."
)


@runtime_checkable
class SyncSource(Protocol):
    """A backend that serves the change feeds (the local engine does)."""

    async def sync_threads(
        self, cursor: str | None = None, limit: int | None = None
    ) -> ThreadChanges:
        """Threads changed or deleted since `cursor`."""
        ...

    async def sync_messages(
        self, cursor: str | None = None, limit: int | None = None
    ) -> MessageChanges:
        """Messages changed or deleted since `cursor`."""
        ...


def query_sync_limit(request: Request) -> int | None:
    """`limit` of a feed: absent → None (the default); above the cap → the cap.

    Raises:
        InvalidRequest: For 0, negative numbers and anything that is not a number.
    """
    raw = request.query_params.get("limit")
    if raw is None or raw == "":
        return None
    if not _INT.fullmatch(raw.strip()):
        raise InvalidRequest(
            f"limit must be a whole number from 1 to {MAX_SYNC_LIMIT}, not {raw!r}."
        )
    value = int(raw)
    if value < 1:
        raise InvalidRequest("limit must be at least 1.")
    return min(value, MAX_SYNC_LIMIT)


def _source(ctx: RequestContext) -> SyncSource:
    backend = ctx.backend
    if not isinstance(backend, SyncSource):
        raise NotFound("This server does not serve sync feeds.")
    return backend


def _json(page: ThreadChanges | MessageChanges) -> Response:
    # Serialised by pydantic-core directly: a first sync sends every message once.
    return Response(page.model_dump_json(), media_type="application/json")


async def sync_threads(ctx: RequestContext) -> Response:
    """`GET /sync/threads`."""
    request = ctx.request
    page = await _source(ctx).sync_threads(
        cursor=query_text(request, "cursor", max_chars=4000),
        limit=query_sync_limit(request),
    )
    return _json(page)


async def sync_messages(ctx: RequestContext) -> Response:
    """`GET /sync/messages`."""
    request = ctx.request
    page = await _source(ctx).sync_messages(
        cursor=query_text(request, "cursor", max_chars=4000),
        limit=query_sync_limit(request),
    )
    return _json(page)
