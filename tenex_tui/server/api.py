"""The HTTP API: `/api/v1/chat` over any `ChatBackend`, as a Starlette app.

`create_app(provider, authenticator)` builds the app from the route table in `routes.py`.
Each request is authenticated from its `Authorization` header (uniform 401 otherwise),
the provider gives the backend of the key's scope (for the local engine,
`engine.for_scope(workspace_id, user_id)`), and the handler runs the one backend method of
its route. Every failure is the error envelope `{"error": {"code", "message"}}` with the
status of its `TenexError` class; an unexpected exception is logged and answered with a
generic 500 that reveals nothing.

The access log (logger `tenex_tui.server.access`) records method, path, status, duration
and the key's public prefix, never the query string (it can hold search terms) and
never a header (uvicorn's own access log is switched off by the runner).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tenex_tui.core.errors import TenexError, Unauthorized
from tenex_tui.server.auth import Authenticator
from tenex_tui.server.mcp_mount import MCP_METHODS, MCP_PATH, LazyMcpEndpoint
from tenex_tui.server.openapi import build_openapi
from tenex_tui.server.parsing import refuse_key_in_query
from tenex_tui.server.routes import (
    API_PREFIX,
    ROUTES,
    BackendProvider,
    RequestContext,
    RouteSpec,
    ServerConfig,
    ServerState,
)

log = logging.getLogger("tenex_tui.server")
access_log = logging.getLogger("tenex_tui.server.access")

OPENAPI_PATH = "/api/v1/openapi.json"
"""Where the OpenAPI document is served (no key needed)."""


def error_response(error: TenexError) -> JSONResponse:
    """The error envelope with the error's status."""
    response = JSONResponse(error.to_wire(), status_code=error.status)
    if isinstance(error, Unauthorized):
        response.headers["WWW-Authenticate"] = 'Bearer realm="tenex"'
    return response


def _envelope(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message}}, status)


def _endpoint(spec: RouteSpec, state: ServerState) -> Any:
    async def endpoint(request: Request) -> Response:
        try:
            refuse_key_in_query(request)
            scope = await state.authenticator.authenticate(
                request.headers.get("authorization")
            )
            request.state.key_prefix = scope.key_prefix
            backend = await state.provider(scope)
            return await spec.handler(RequestContext(request, scope, backend, state))
        except TenexError as exc:
            return error_response(exc)
        except Exception:
            log.exception("%s %s failed", request.method, request.url.path)
            return _envelope(
                500, "internal_error", "The server failed; its log has the details."
            )

    endpoint.__name__ = spec.operation
    return endpoint


async def _not_found(request: Request, exc: Exception) -> Response:
    if isinstance(exc, HTTPException) and exc.status_code == 405:
        return _envelope(405, "method_not_allowed", "This route has no such method.")
    return _envelope(404, "not_found", "No such route.")


class AccessLog:
    """ASGI middleware: one log line per request, paths only (no query, no headers).

    Pure ASGI, and cheap on streams: the status is read by a plain function that
    hands each message on and returns `send`'s own awaitable, so an SSE stream's
    thousands of body messages cost one call each, not one more coroutine each.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass the request through and log its outcome."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = [0]

        def watch(message: Message) -> Awaitable[None]:
            if message["type"] == "http.response.start":
                status[0] = int(message["status"])
            return send(message)

        try:
            await self.app(scope, receive, watch)
        finally:
            state = scope.get("state") or {}
            access_log.info(
                "%s %s %s %.1fms key=%s",
                scope.get("method", "?"),
                scope.get("path", "?"),
                status[0] or "-",
                (time.perf_counter() - started) * 1000,
                state.get("key_prefix", "-"),
            )


def create_app(
    provider: BackendProvider,
    authenticator: Authenticator,
    *,
    config: ServerConfig | None = None,
) -> Starlette:
    """Build the API app.

    Args:
        provider: Gives the backend of an authenticated scope.
        authenticator: Checks keys.
        config: Limits and timings (defaults suit production; tests shorten pings).

    Returns:
        The Starlette app, ready for uvicorn.
    """
    state = ServerState(
        provider=provider, authenticator=authenticator, config=config or ServerConfig()
    )
    document = build_openapi(ROUTES, prefix=API_PREFIX)

    async def openapi(_request: Request) -> Response:
        return JSONResponse(document)

    routes = [
        Route(API_PREFIX + spec.path, _endpoint(spec, state), methods=[spec.method])
        for spec in ROUTES
    ]
    routes.append(Route(OPENAPI_PATH, openapi, methods=["GET"]))
    # MCP over streamable HTTP, with the same keys (server/mcp.py).
    mcp = LazyMcpEndpoint(provider, authenticator)
    routes.append(Route(MCP_PATH, mcp, methods=MCP_METHODS))
    app = Starlette(
        routes=routes,
        exception_handlers={404: _not_found, 405: _not_found},
    )
    app.add_middleware(AccessLog)
    app.state.server = state
    return app
