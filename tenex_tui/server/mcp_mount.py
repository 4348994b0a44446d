"""Mounting MCP at `/mcp` without paying for the `mcp` SDK until it is used.

The SDK takes about half a second to import; `serve` imports it on the first request
to `/mcp` (`server/mcp.py` holds the endpoint and the tools).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.types import Receive, Scope, Send

from tenex_tui.server.auth import Authenticator
from tenex_tui.server.routes import BackendProvider

if TYPE_CHECKING:
    from tenex_tui.server.mcp import McpHttpEndpoint

MCP_PATH = "/mcp"
"""Where `serve` mounts the MCP endpoint (streamable HTTP, the API's bearer keys)."""
MCP_METHODS = ["GET", "POST", "DELETE"]


class LazyMcpEndpoint:
    """An ASGI app that builds `server.mcp.McpHttpEndpoint` on its first request."""

    def __init__(self, provider: BackendProvider, authenticator: Authenticator) -> None:
        self._provider = provider
        self._authenticator = authenticator
        self._endpoint: McpHttpEndpoint | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve one request to `/mcp`."""
        if self._endpoint is None:
            from tenex_tui.server.mcp import McpHttpEndpoint

            self._endpoint = McpHttpEndpoint(self._provider, self._authenticator)
        await self._endpoint(scope, receive, send)
