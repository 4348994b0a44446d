"""The route table of `/api/v1/chat` and its handlers.

`ROUTES` is the single source of truth: the Starlette app is built from it, the OpenAPI
document is generated from it (so the two cannot drift), and the tests introspect it (the
ownership matrix fails when a route has no entry). Each handler maps one HTTP operation
onto one `ChatBackend` method; the backend is already scoped to the caller's workspace
and user, so another scope's ids are `NotFound` from the persistence layer itself.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

import pydantic
from starlette.requests import Request
from starlette.responses import Response

from tenex_tui.core.backend import ChatBackend
from tenex_tui.core.errors import PayloadTooLarge, TenexError
from tenex_tui.core.events import StreamEvent
from tenex_tui.core.models import Agent, BackendInfo, Message, Page, SearchHit, Thread
from tenex_tui.core.payloads import (
    CreateThreadBody,
    EditMessageBody,
    RegenerateBody,
    SendMessageBody,
    UpdateThreadBody,
)
from tenex_tui.core.sync import MessageChanges, ThreadChanges
from tenex_tui.server.auth import Authenticator, AuthScope
from tenex_tui.server.idempotency import (
    IdempotencyGate,
    IdempotencyStore,
    Replay,
    request_hash,
)
from tenex_tui.server.parsing import (
    accepts_event_stream,
    idempotency_key,
    parse_json_body,
    path_id,
    query_archived,
    query_bool,
    query_limit,
    query_order,
    query_text,
    read_body,
)
from tenex_tui.server.routes_knowledge import knowledge_routes
from tenex_tui.server.routes_sync import SYNC_LIMIT_HELP, sync_messages, sync_threads
from tenex_tui.server.streaming import (
    Started,
    StreamRegistry,
    collect,
    json_response,
    sse_response,
    start_events,
)

log = logging.getLogger("tenex_tui.server")

API_PREFIX = "/api/v1/chat"
"""Where every chat route lives."""


class ServedBackend(ChatBackend, IdempotencyStore, Protocol):
    """A `ChatBackend` scoped to one caller that also keeps idempotency records."""


BackendProvider = Callable[[AuthScope], Awaitable[ServedBackend]]
"""Gives the backend of an authenticated scope (`engine.for_scope(ws, user)`)."""


@dataclass(frozen=True)
class ServerConfig:
    """Limits and timings of the HTTP server."""

    ping_interval: float = 15.0
    """Seconds between SSE keep-alive comments."""
    max_body_bytes: int = 4 * 1024 * 1024
    """Request bodies above this are refused (413) while they are read."""
    max_attachments: int = 10
    """Files on one message."""
    max_attachment_chars: int = 200_000
    """Extracted text of one attachment."""
    max_attachments_total_chars: int = 400_000
    """Extracted text of all attachments of one message."""
    first_event_wait: float = 2.0
    """How long a resume waits for its first event before sending headers anyway."""


@dataclass
class ServerState:
    """What every request shares."""

    provider: BackendProvider
    authenticator: Authenticator
    config: ServerConfig
    gate: IdempotencyGate = field(default_factory=IdempotencyGate)
    streams: StreamRegistry = field(default_factory=StreamRegistry)
    """The open SSE streams (a shutdown ends them)."""


@dataclass
class RequestContext:
    """One authenticated request."""

    request: Request
    scope: AuthScope
    backend: ServedBackend
    state: ServerState
    _raw: bytes | None = None

    async def body(self) -> bytes:
        """The request body, read once under the size cap."""
        if self._raw is None:
            self._raw = await read_body(self.request, self.state.config.max_body_bytes)
        return self._raw

    async def still_valid(self) -> bool:
        """Whether the request's key still holds (asked during streams)."""
        return await self.state.authenticator.still_valid(self.scope)

    def valid_now(self) -> bool | None:
        """`still_valid` from its cache, without awaiting (None: ask)."""
        return self.state.authenticator.cached_validity(self.scope)

    def event_stream(self, started: Started) -> Response:
        """Serve a started stream as SSE, with this request's key checks."""
        return sse_response(
            started,
            ping_interval=self.state.config.ping_interval,
            still_valid=self.still_valid,
            valid_now=self.valid_now,
            registry=self.state.streams,
        )


Handler = Callable[[RequestContext], Awaitable[Response]]


@dataclass(frozen=True)
class QueryParam:
    """A documented query parameter."""

    name: str
    type: Literal["string", "integer", "boolean"]
    description: str
    required: bool = False
    enum: tuple[str, ...] = ()


@dataclass(frozen=True)
class RouteSpec:
    """One operation of the API."""

    method: str
    path: str
    """Under `API_PREFIX`, with `{param}` placeholders."""
    operation: str
    """The `ChatBackend` method (or extension) it maps to; also the OpenAPI id."""
    summary: str
    handler: Handler
    status: int = 200
    response: Any = None
    """The pydantic type of the JSON answer (None for an empty answer)."""
    body: type[pydantic.BaseModel] | None = None
    query: tuple[QueryParam, ...] = ()
    streams: bool = False
    """Answers `text/event-stream` when asked (or always, for the events route)."""
    idempotent_post: bool = False
    """Honours `Idempotency-Key`."""

    @property
    def path_params(self) -> tuple[str, ...]:
        """The `{param}` names of the path, in order."""
        parts = self.path.split("/")
        return tuple(p[1:-1] for p in parts if p.startswith("{") and p.endswith("}"))


class MeResponse(pydantic.BaseModel):
    """`GET /me`: who the key acts for, and the workspace's backend info."""

    workspace_id: str
    user_id: str
    info: BackendInfo


class SendResult(pydantic.BaseModel):
    """A send or regenerate answered without a stream, once the reply is finished."""

    user_message: Message | None
    assistant_message: Message | None


# -- helpers ---------------------------------------------------------------------


def _dump(value: pydantic.BaseModel | None) -> Any:
    return None if value is None else value.model_dump(mode="json")


async def _idempotent_json(
    ctx: RequestContext, run: Callable[[], Awaitable[tuple[int, Any]]]
) -> Response:
    key = idempotency_key(ctx.request)
    if key is None:
        status, data = await run()
        return _json_or_empty(data, status)
    raw = await ctx.body()
    fingerprint = request_hash(ctx.request.method, ctx.request.url.path, raw)
    async with ctx.state.gate.slot(
        ctx.backend, (ctx.scope.workspace_id, ctx.scope.user_id), key, fingerprint
    ) as slot:
        if slot.replay is not None and slot.replay.kind == "json":
            response = _json_or_empty(slot.replay.data, slot.replay.status)
            response.headers["Idempotent-Replayed"] = "true"
            return response
        status, data = await run()
        try:
            await slot.store_json(status, data)
        except TenexError as exc:
            log.warning("could not store an idempotency record: %s", exc)
        return _json_or_empty(data, status)


def _json_or_empty(data: Any, status: int) -> Response:
    if status == 204:
        return Response(status_code=204)
    return json_response(data, status)


async def _reply(
    ctx: RequestContext,
    thread_id: str,
    start: Callable[[str | None], AsyncIterator[StreamEvent]],
) -> Response:
    """Serve a send or regenerate, honouring `Idempotency-Key`."""
    key = idempotency_key(ctx.request)
    replay: Replay | None = None
    if key is None:
        # A new reply's first event comes right after its commit: wait for it fully.
        started = await start_events(start(None), wait=None)
    else:
        raw = await ctx.body()
        fingerprint = request_hash(ctx.request.method, ctx.request.url.path, raw)
        async with ctx.state.gate.slot(
            ctx.backend, (ctx.scope.workspace_id, ctx.scope.user_id), key, fingerprint
        ) as slot:
            replay = slot.replay
            if replay is None:
                started = await start_events(start(key), wait=None)
                first = started.first
                if first is not None:
                    user = first.user_message
                    try:
                        await slot.store_stream(
                            first.thread_id, first.message_id, user.id if user else None
                        )
                    except TenexError as exc:
                        log.warning("could not store an idempotency record: %s", exc)
            elif replay.kind == "stream":
                # The same reply again, from its first event; the client dedupes by id.
                events = ctx.backend.stream_events(
                    replay.thread_id, replay.message_id, after=None
                )
                started = await start_events(events, ctx.state.config.first_event_wait)
            else:
                response = _json_or_empty(replay.data, replay.status)
                response.headers["Idempotent-Replayed"] = "true"
                return response
    if started.exhausted:
        return Response(status_code=204)
    if accepts_event_stream(ctx.request):
        response = ctx.event_stream(started)
        if replay is not None:
            response.headers["Idempotent-Replayed"] = "true"
        return response
    user, assistant = await collect(started)
    if user is None and replay is not None and replay.user_message_id:
        user = await ctx.backend.get_message(thread_id, replay.user_message_id)
    if assistant is not None and assistant.status == "streaming":
        assistant = await ctx.backend.get_message(thread_id, assistant.id)
    result = SendResult(user_message=user, assistant_message=assistant)
    return json_response(result.model_dump(mode="json"))


def _check_attachments(body: SendMessageBody, config: ServerConfig) -> None:
    if len(body.attachments) > config.max_attachments:
        raise PayloadTooLarge(
            f"A message can carry at most {config.max_attachments} attachments."
        )
    total = 0
    for attachment in body.attachments:
        size = len(attachment.text)
        if size > config.max_attachment_chars:
            raise PayloadTooLarge(
                f"The text of {attachment.name!r} is longer than "
                f"{config.max_attachment_chars:,} characters."
            )
        total += size
    if total > config.max_attachments_total_chars:
        raise PayloadTooLarge(
            f"The attachments' text is longer than "
            f"{config.max_attachments_total_chars:,} characters in all."
        )


# -- handlers --------------------------------------------------------------------


async def me(ctx: RequestContext) -> Response:
    """`GET /me`."""
    info = await ctx.backend.info()
    result = MeResponse(
        workspace_id=ctx.scope.workspace_id, user_id=ctx.scope.user_id, info=info
    )
    return json_response(result.model_dump(mode="json"))


async def create_thread(ctx: RequestContext) -> Response:
    """`POST /threads`."""
    body = parse_json_body(await ctx.body(), CreateThreadBody)

    async def run() -> tuple[int, Any]:
        thread = await ctx.backend.create_thread(
            title=body.title,
            system_prompt=body.system_prompt,
            agent=body.agent,
            context=body.context,
            model=body.model,
        )
        return 201, _dump(thread)

    return await _idempotent_json(ctx, run)


async def list_threads(ctx: RequestContext) -> Response:
    """`GET /threads`."""
    request = ctx.request
    page = await ctx.backend.list_threads(
        limit=query_limit(request),
        cursor=query_text(request, "cursor", max_chars=4000),
        archived=query_archived(request),
        pinned=query_bool(request, "pinned"),
        agent=query_text(request, "agent", max_chars=200),
        q=query_text(request, "q"),
    )
    return json_response(page.model_dump(mode="json"))


async def get_thread(ctx: RequestContext) -> Response:
    """`GET /threads/{thread_id}`."""
    thread = await ctx.backend.get_thread(path_id(ctx.request, "thread_id"))
    return json_response(_dump(thread))


async def update_thread(ctx: RequestContext) -> Response:
    """`PATCH /threads/{thread_id}`."""
    thread_id = path_id(ctx.request, "thread_id")
    body = parse_json_body(await ctx.body(), UpdateThreadBody)
    thread = await ctx.backend.update_thread(
        thread_id,
        title=body.title,
        pinned=body.pinned,
        archived=body.archived,
        draft=body.draft,
    )
    return json_response(_dump(thread))


async def delete_thread(ctx: RequestContext) -> Response:
    """`DELETE /threads/{thread_id}`."""
    await ctx.backend.delete_thread(path_id(ctx.request, "thread_id"))
    return Response(status_code=204)


async def mark_read(ctx: RequestContext) -> Response:
    """`POST /threads/{thread_id}/read`."""
    thread_id = path_id(ctx.request, "thread_id")

    async def run() -> tuple[int, Any]:
        return 200, _dump(await ctx.backend.mark_read(thread_id))

    return await _idempotent_json(ctx, run)


async def list_messages(ctx: RequestContext) -> Response:
    """`GET /threads/{thread_id}/messages`."""
    request = ctx.request
    order: Literal["asc", "desc"] = "desc" if query_order(request) == "desc" else "asc"
    page = await ctx.backend.list_messages(
        path_id(request, "thread_id"),
        limit=query_limit(request),
        cursor=query_text(request, "cursor", max_chars=4000),
        order=order,
    )
    return json_response(page.model_dump(mode="json"))


async def send_message(ctx: RequestContext) -> Response:
    """`POST /threads/{thread_id}/messages`."""
    thread_id = path_id(ctx.request, "thread_id")
    body = parse_json_body(await ctx.body(), SendMessageBody)
    _check_attachments(body, ctx.state.config)

    def start(key: str | None) -> AsyncIterator[StreamEvent]:
        return ctx.backend.send_message(
            thread_id,
            body.content,
            attachments=body.attachments,
            knowledge=body.knowledge,
            lead=body.lead,
            # The engine dedupes sends by this id too, so even a server that died
            # between its commit and the idempotency record never doubles a message.
            client_request_id=body.client_request_id or key,
        )

    return await _reply(ctx, thread_id, start)


async def regenerate(ctx: RequestContext) -> Response:
    """`POST /threads/{thread_id}/regenerate`."""
    thread_id = path_id(ctx.request, "thread_id")
    body = parse_json_body(await ctx.body(), RegenerateBody)

    def start(key: str | None) -> AsyncIterator[StreamEvent]:
        return ctx.backend.regenerate(
            thread_id, mode=body.mode, client_request_id=body.client_request_id or key
        )

    return await _reply(ctx, thread_id, start)


async def get_message(ctx: RequestContext) -> Response:
    """`GET /threads/{thread_id}/messages/{message_id}`."""
    message = await ctx.backend.get_message(
        path_id(ctx.request, "thread_id"), path_id(ctx.request, "message_id")
    )
    return json_response(_dump(message))


async def edit_message(ctx: RequestContext) -> Response:
    """`PATCH /threads/{thread_id}/messages/{message_id}`."""
    thread_id = path_id(ctx.request, "thread_id")
    message_id = path_id(ctx.request, "message_id")
    body = parse_json_body(await ctx.body(), EditMessageBody)
    message = await ctx.backend.edit_message(thread_id, message_id, body.content)
    return json_response(_dump(message))


async def stream_events(ctx: RequestContext) -> Response:
    """`GET /threads/{thread_id}/messages/{message_id}/events`."""
    request = ctx.request
    after = request.headers.get("last-event-id") or query_text(
        request, "after", max_chars=400
    )
    events = ctx.backend.stream_events(
        path_id(request, "thread_id"),
        path_id(request, "message_id"),
        after=after or None,
    )
    started: Started = await start_events(events, ctx.state.config.first_event_wait)
    if started.exhausted:
        # Nothing after that id: the standard's way to say "stop reconnecting".
        return Response(status_code=204)
    if request.method == "HEAD":
        # A HEAD never reads the stream: detach now rather than leave a follower.
        await started.aclose()
        return Response(status_code=200, media_type="text/event-stream")
    return ctx.event_stream(started)


async def cancel_message(ctx: RequestContext) -> Response:
    """`POST /threads/{thread_id}/messages/{message_id}/cancel`."""
    thread_id = path_id(ctx.request, "thread_id")
    message_id = path_id(ctx.request, "message_id")

    async def run() -> tuple[int, Any]:
        return 200, _dump(await ctx.backend.cancel_message(thread_id, message_id))

    return await _idempotent_json(ctx, run)


async def search(ctx: RequestContext) -> Response:
    """`GET /search`."""
    request = ctx.request
    page = await ctx.backend.search(
        query_text(request, "q") or "",
        limit=query_limit(request),
        cursor=query_text(request, "cursor", max_chars=4000),
    )
    return json_response(page.model_dump(mode="json"))


async def list_models(ctx: RequestContext) -> Response:
    """`GET /models`."""
    models = await ctx.backend.list_models()
    page = Page[str](items=models, next_cursor=None, total=len(models))
    return json_response(page.model_dump(mode="json"))


async def list_agents(ctx: RequestContext) -> Response:
    """`GET /agents`."""
    agents = await ctx.backend.list_agents()
    page = Page[Agent](items=agents, next_cursor=None, total=len(agents))
    return json_response(page.model_dump(mode="json"))


_LIMIT = QueryParam(
    "limit", "integer", "Page size: default 50, values above 200 mean 200."
)
_CURSOR = QueryParam("cursor", "string", "The `next_cursor` of the previous page.")

# fmt: off
ROUTES: tuple[RouteSpec, ...] = (
    RouteSpec("GET", "/me", "info", "Who the key acts for, and the workspace", me,
              response=MeResponse),
    RouteSpec("POST", "/threads", "create_thread", "Create a thread", create_thread,
              status=201, response=Thread, body=CreateThreadBody, idempotent_post=True),
    RouteSpec("GET", "/threads", "list_threads",
              "List threads, pinned first, then by recency", list_threads,
              response=Page[Thread],
              query=(_LIMIT, _CURSOR,
                     QueryParam("archived", "string",
                                "false (default): live threads; true: the archive; all: both",
                                enum=("true", "false", "all")),
                     QueryParam("pinned", "boolean", "Only pinned, or only unpinned, threads"),
                     QueryParam("agent", "string", "Only threads bound to this agent slug"),
                     QueryParam("q", "string", "Only threads whose title contains this text"))),
    RouteSpec("GET", "/threads/{thread_id}", "get_thread", "Get one thread", get_thread,
              response=Thread),
    RouteSpec("PATCH", "/threads/{thread_id}", "update_thread",
              "Rename, pin, archive (and undo), or save a draft", update_thread,
              response=Thread, body=UpdateThreadBody),
    RouteSpec("DELETE", "/threads/{thread_id}", "delete_thread",
              "Delete a thread and its messages", delete_thread, status=204),
    RouteSpec("POST", "/threads/{thread_id}/read", "mark_read",
              "Mark the thread's latest reply as seen", mark_read, response=Thread,
              idempotent_post=True),
    RouteSpec("GET", "/threads/{thread_id}/messages", "list_messages",
              "Fetch history with timestamps and tool calls", list_messages,
              response=Page[Message],
              query=(_LIMIT, _CURSOR,
                     QueryParam("order", "string", "asc (oldest first) or desc",
                                enum=("asc", "desc")))),
    RouteSpec("POST", "/threads/{thread_id}/messages", "send_message",
              "Send a message and stream the reply", send_message,
              response=SendResult, body=SendMessageBody, streams=True,
              idempotent_post=True),
    RouteSpec("GET", "/threads/{thread_id}/messages/{message_id}", "get_message",
              "Get one message", get_message, response=Message),
    RouteSpec("PATCH", "/threads/{thread_id}/messages/{message_id}", "edit_message",
              "Edit the last user message (later messages are removed)", edit_message,
              response=Message, body=EditMessageBody),
    RouteSpec("GET", "/threads/{thread_id}/messages/{message_id}/events",
              "stream_events", "Resume a reply's stream after Last-Event-ID",
              stream_events, streams=True,
              query=(QueryParam("after", "string",
                                "The last event id seen (instead of Last-Event-ID)"),)),
    RouteSpec("POST", "/threads/{thread_id}/messages/{message_id}/cancel",
              "cancel_message", "Stop a streaming reply", cancel_message,
              response=Message, idempotent_post=True),
    RouteSpec("POST", "/threads/{thread_id}/regenerate", "regenerate",
              "Answer the last user message again (or continue it)", regenerate,
              response=SendResult, body=RegenerateBody, streams=True,
              idempotent_post=True),
    RouteSpec("GET", "/search", "search", "Full-text search over messages and titles",
              search, response=Page[SearchHit],
              query=(QueryParam("q", "string", "Words to find", required=True),
                     _LIMIT, _CURSOR)),
    RouteSpec("GET", "/models", "list_models", "The models the server can use",
              list_models, response=Page[str]),
    RouteSpec("GET", "/agents", "list_agents", "The agents a thread can be bound to",
              list_agents, response=Page[Agent]),
    # Incremental sync (server/routes_sync.py): changes in commit order since a cursor.
    RouteSpec("GET", "/sync/threads", "sync_threads",
              "Threads changed or deleted since a cursor (incremental sync)",
              sync_threads, response=ThreadChanges,
              query=(QueryParam("limit", "integer", SYNC_LIMIT_HELP), _CURSOR)),
    RouteSpec("GET", "/sync/messages", "sync_messages",
              "Messages changed or deleted since a cursor (incremental sync)",
              sync_messages, response=MessageChanges,
              query=(QueryParam("limit", "integer", SYNC_LIMIT_HELP), _CURSOR)),
    *knowledge_routes(),
)
# fmt: on
"""Every route of the API (DESIGN.md §3 plus the `core/backend.py` extensions, and the
knowledge and lead routes of `routes_knowledge.py`)."""
