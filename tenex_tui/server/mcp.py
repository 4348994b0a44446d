"""The chat API as MCP tools (official `mcp` SDK 2.x `MCPServer`).

`build_mcp_server(resolve)` registers one tool per operation of DESIGN.md §3, named
as the hosted API's MCP equivalents (`list_chat_threads`, `create_chat_thread`, …);
every tool answers JSON (the API's resources, verbatim) and reports failures as tool
errors carrying the API's error code. `resolve(ctx)` gives the `ChatBackend` and the
caller's user id for a call:

- `tenex-tui mcp` (stdio) serves one backend: the local engine's default scope, or the
  remote workspace with `--remote`;
- `tenex-tui serve` mounts `McpHttpEndpoint` at `/mcp` (streamable HTTP, stateless,
  JSON answers): each request is authenticated with the same bearer keys as the REST
  API, and the tools act on the key's workspace and user.

`list_chat_threads` takes a `user_id`, as the hosted tool does; any other user than
the caller's is answered "not found", exactly like an id that does not exist.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
from mcp.server.transport_security import TransportSecuritySettings
from starlette.types import Receive, Scope, Send

from tenex_tui.core.backend import ChatBackend
from tenex_tui.core.errors import NotFound, TenexError, Unauthorized
from tenex_tui.core.models import Message
from tenex_tui.server.auth import Authenticator, AuthScope
from tenex_tui.server.routes import BackendProvider

log = logging.getLogger("tenex_tui.server")

MCP_PATH = "/mcp"
"""Where `serve` mounts the MCP endpoint."""
INSTRUCTIONS = (
    "Chat threads of a 10ex workspace (tenex-tui): list, create, read, rename, pin, "
    "archive and delete threads, send a message and get the model's reply, and search "
    "every message. Ids are opaque strings (thr_…, msg_…); lists are pages with "
    "`items`, `next_cursor` (pass it back as `cursor`) and `total`."
)
_STATE_KEY = "tenex_auth"


@dataclass(frozen=True)
class Caller:
    """Who a tool call acts for: the backend of their scope and their user id."""

    backend: ChatBackend
    user_id: str


Resolver = Callable[[Context | None], Awaitable[Caller]]
"""Gives the caller of a tool call (from its request, for HTTP)."""


def _fail(exc: TenexError) -> ToolError:
    return ToolError(f"{exc.code}: {exc.message}")


def _json(value: Any) -> dict[str, Any]:
    if hasattr(value, "model_dump"):
        dumped: dict[str, Any] = value.model_dump(mode="json")
        return dumped
    result: dict[str, Any] = json.loads(json.dumps(value))
    return result


def build_mcp_server(resolve: Resolver, *, name: str = "tenex-tui") -> MCPServer:
    """The MCP server with the chat tools.

    Args:
        resolve: Gives the backend and user of a call.
        name: The server's name (what MCP clients show).

    Returns:
        The server; `run()` serves stdio, `streamable_http_app()` HTTP.
    """
    # The SDK's constructor calls `logging.basicConfig` with a Rich handler at INFO,
    # which would take over the process's root logger (`serve` prints its own log,
    # and stdout is the protocol channel of `mcp`): a guard handler makes it a no-op.
    root = logging.getLogger()
    guard = logging.NullHandler()
    root.addHandler(guard)
    try:
        server: MCPServer = MCPServer(
            name=name, instructions=INSTRUCTIONS, log_level="WARNING"
        )
    finally:
        root.removeHandler(guard)

    async def call(ctx: Context | None, op: Callable[[Caller], Awaitable[Any]]) -> Any:
        try:
            caller = await resolve(ctx)
            return await op(caller)
        except TenexError as exc:
            raise _fail(exc) from None

    @server.tool()
    async def list_chat_threads(
        user_id: str,
        ctx: Context,
        cursor: str | None = None,
        limit: int | None = None,
        archived: bool = False,
    ) -> dict[str, Any]:
        """List a user's chat threads, pinned first, then most recent activity first.

        Args:
            user_id: The user whose threads to list (only the caller's own are
                visible; any other user is not found).
            cursor: The `next_cursor` of the previous page.
            limit: Page size (default 50, at most 200).
            archived: True to list the archive instead of live threads.

        Returns:
            A page `{items: [thread], next_cursor, total}`; each thread has `id`,
            `title`, `agent`, `pinned`, `archived`, `updated_at`, `message_count`.
        """

        async def op(caller: Caller) -> Any:
            if user_id != caller.user_id:
                raise NotFound("user not found")
            page = await caller.backend.list_threads(
                limit=limit, cursor=cursor, archived=archived
            )
            return _json(page)

        result: dict[str, Any] = await call(ctx, op)
        return result

    @server.tool()
    async def create_chat_thread(
        system_prompt: str,
        ctx: Context,
        title: str | None = None,
        agent: str | None = None,
    ) -> dict[str, Any]:
        """Create a chat thread seeded with a system prompt (and optionally an agent).

        Args:
            system_prompt: Instructions the model follows in every reply of the thread.
            title: A title (empty when omitted).
            agent: The slug of an agent to bind the thread to.

        Returns:
            The new thread (its `id` is what the other tools take).
        """

        async def op(caller: Caller) -> Any:
            thread = await caller.backend.create_thread(
                title=title, system_prompt=system_prompt or None, agent=agent
            )
            return _json(thread)

        result: dict[str, Any] = await call(ctx, op)
        return result

    @server.tool()
    async def get_chat_thread(thread_id: str, ctx: Context) -> dict[str, Any]:
        """Get one chat thread.

        Args:
            thread_id: The thread (`thr_…`).

        Returns:
            The thread: title, agent, system prompt, flags, timestamps, message count.
        """

        async def op(caller: Caller) -> Any:
            return _json(await caller.backend.get_thread(thread_id))

        result: dict[str, Any] = await call(ctx, op)
        return result

    @server.tool()
    async def list_chat_messages(
        thread_id: str,
        ctx: Context,
        cursor: str | None = None,
        limit: int | None = None,
    ) -> dict[str, Any]:
        """List a thread's messages, oldest first, with timestamps and tool calls.

        Args:
            thread_id: The thread.
            cursor: The `next_cursor` of the previous page.
            limit: Page size (default 50, at most 200).

        Returns:
            A page `{items: [message], next_cursor, total}`; each message has `id`,
            `role`, `content`, `status`, `tool_calls`, `created_at`.
        """

        async def op(caller: Caller) -> Any:
            page = await caller.backend.list_messages(
                thread_id, limit=limit, cursor=cursor
            )
            return _json(page)

        result: dict[str, Any] = await call(ctx, op)
        return result

    @server.tool()
    async def send_chat_message(
        thread_id: str, content: str, ctx: Context
    ) -> dict[str, Any]:
        """Send a user message to a thread and wait for the model's complete reply.

        Args:
            thread_id: The thread.
            content: The message text.

        Returns:
            `{message_id, reply, status, user_message_id, error}`: the assistant
            message's id, its final text, its status (`complete`, `error`,
            `stopped`), the stored user message's id, and why it failed, if it did.
        """

        async def op(caller: Caller) -> Any:
            user: Message | None = None
            final: Message | None = None
            text: list[str] = []
            error: str | None = None
            message_id: str | None = None
            async for event in caller.backend.send_message(thread_id, content):
                message_id = event.message_id
                if event.user_message is not None:
                    user = event.user_message
                text.append(event.delta)
                if event.terminal:
                    final = event.message
                    error = event.error
                    break
            reply = final.content if final is not None else "".join(text)
            return {
                "message_id": final.id if final is not None else message_id,
                "reply": reply,
                "status": final.status if final is not None else "interrupted",
                "user_message_id": user.id if user is not None else None,
                "error": error or (final.error if final is not None else None),
            }

        result: dict[str, Any] = await call(ctx, op)
        return result

    @server.tool()
    async def rename_chat_thread(
        thread_id: str, title: str, ctx: Context
    ) -> dict[str, Any]:
        """Rename a chat thread.

        Args:
            thread_id: The thread.
            title: The new title (at most 200 characters, some visible text).

        Returns:
            The updated thread.
        """

        async def op(caller: Caller) -> Any:
            return _json(await caller.backend.update_thread(thread_id, title=title))

        result: dict[str, Any] = await call(ctx, op)
        return result

    @server.tool()
    async def pin_chat_thread(
        thread_id: str, ctx: Context, pinned: bool = True
    ) -> dict[str, Any]:
        """Pin a chat thread to the top of the list (or unpin it with pinned=false).

        Args:
            thread_id: The thread.
            pinned: True to pin, False to unpin.

        Returns:
            The updated thread.
        """

        async def op(caller: Caller) -> Any:
            return _json(await caller.backend.update_thread(thread_id, pinned=pinned))

        result: dict[str, Any] = await call(ctx, op)
        return result

    @server.tool()
    async def archive_chat_thread(
        thread_id: str, ctx: Context, archived: bool = True
    ) -> dict[str, Any]:
        """Move a chat thread to the archive (or back with archived=false).

        Args:
            thread_id: The thread.
            archived: True to archive, False to bring it back.

        Returns:
            The updated thread.
        """

        async def op(caller: Caller) -> Any:
            thread = await caller.backend.update_thread(thread_id, archived=archived)
            return _json(thread)

        result: dict[str, Any] = await call(ctx, op)
        return result

    @server.tool()
    async def delete_chat_thread(thread_id: str, ctx: Context) -> dict[str, Any]:
        """Delete a chat thread and all its messages (a reply still streaming is stopped).

        Args:
            thread_id: The thread.

        Returns:
            `{deleted: thread_id}`.
        """

        async def op(caller: Caller) -> Any:
            await caller.backend.delete_thread(thread_id)
            return {"deleted": thread_id}

        result: dict[str, Any] = await call(ctx, op)
        return result

    @server.tool()
    async def search_chat_messages(
        query: str,
        ctx: Context,
        cursor: str | None = None,
        limit: int | None = None,
    ) -> dict[str, Any]:
        """Full-text search over every message and thread title of the caller.

        Args:
            query: Words to find (taken as words, never as query syntax).
            cursor: The `next_cursor` of the previous page.
            limit: Hits per page (default 50, at most 200).

        Returns:
            A page `{items: [hit], next_cursor, total}`; each hit names its
            `thread_id`, `message_id` (null for a title match), `thread_title`,
            `role` and a `snippet` with the match in «…».
        """

        async def op(caller: Caller) -> Any:
            page = await caller.backend.search(query, limit=limit, cursor=cursor)
            return _json(page)

        result: dict[str, Any] = await call(ctx, op)
        return result

    return server


def fixed_resolver(backend: ChatBackend, user_id: Callable[[], str]) -> Resolver:
    """Every call acts for one backend and user (`tenex-tui mcp` over stdio)."""

    async def resolve(_ctx: Context | None) -> Caller:
        return Caller(backend, user_id())

    return resolve


def http_resolver(provider: BackendProvider) -> Resolver:
    """Each call acts for the key its HTTP request was authenticated with."""

    async def resolve(ctx: Context | None) -> Caller:
        request = ctx.request_context.request if ctx is not None else None
        scope = getattr(request, "scope", None)
        state = scope.get("state") if isinstance(scope, dict) else None
        auth = state.get(_STATE_KEY) if isinstance(state, dict) else None
        if not isinstance(auth, AuthScope):
            raise Unauthorized(
                "A valid API key is required (Authorization: Bearer tnx_…)."
            )
        return Caller(await provider(auth), auth.user_id)

    return resolve


class McpHttpEndpoint:
    """`/mcp` on `serve`: bearer-key authentication in front of MCP streamable HTTP.

    Stateless JSON mode: each request is one complete exchange, served by a session
    manager that lives only as long as the request (the server runs uvicorn without
    lifespan events, so nothing long-lived could be started or stopped cleanly).

    Args:
        provider: Gives the backend of an authenticated scope.
        authenticator: Checks keys (the REST API's).
    """

    def __init__(self, provider: BackendProvider, authenticator: Authenticator) -> None:
        self._authenticator = authenticator
        self.server = build_mcp_server(http_resolver(provider))
        # Bearer keys are never ambient (no cookies), so a DNS-rebinding page cannot
        # use them: a Host check would only refuse real clients that use a name.
        self._security = TransportSecuritySettings(
            enable_dns_rebinding_protection=False
        )
        # Configures the low-level server for HTTP; its manager is not used.
        self.server.streamable_http_app(
            streamable_http_path=MCP_PATH,
            stateless_http=True,
            json_response=True,
            transport_security=self._security,
        )
        self._lowlevel = self.server.session_manager.app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Authenticate, then serve the request with a request-long session manager."""
        if scope["type"] != "http":
            return
        headers = dict(scope.get("headers") or [])
        raw = headers.get(b"authorization")
        try:
            auth = await self._authenticator.authenticate(
                raw.decode("latin-1") if raw is not None else None
            )
        except Unauthorized as exc:
            await _send_error(send, exc)
            return
        state = scope.setdefault("state", {})
        state[_STATE_KEY] = auth
        state["key_prefix"] = auth.key_prefix
        manager = StreamableHTTPSessionManager(
            app=self._lowlevel,
            stateless=True,
            json_response=True,
            security_settings=self._security,
        )
        async with manager.run():
            await manager.handle_request(scope, receive, send)


async def _send_error(send: Send, exc: TenexError) -> None:
    body = json.dumps(exc.to_wire()).encode()
    await send(
        {
            "type": "http.response.start",
            "status": exc.status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"www-authenticate", b'Bearer realm="tenex"'),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
