"""`tenex-tui mcp`: the chat tools as an MCP server over stdio.

An MCP client (Claude Desktop, Cursor, …) starts it as a child process and talks
JSON-RPC on its stdin and stdout; logs and warnings go to stderr only. The tools act on
the local engine's threads, or with `--remote` on the remote workspace (the key's
user). `tenex-tui serve` offers the same tools over HTTP at `/mcp`.
"""

from __future__ import annotations

import argparse
import asyncio
from typing import TYPE_CHECKING

from tenex_tui.cli.context import EXIT_OK, CliContext

if TYPE_CHECKING:
    from tenex_tui.core.backend import ChatBackend


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `mcp`."""
    p = subparsers.add_parser(
        "mcp",
        help="serve the chat tools to an MCP client over stdio",
        description="Run an MCP server on stdin/stdout with the tools list_chat_threads, "
        "create_chat_thread, get_chat_thread, list_chat_messages, send_chat_message, "
        "rename_chat_thread, pin_chat_thread, archive_chat_thread, delete_chat_thread "
        "and search_chat_messages, over the local engine (or the remote workspace "
        "with --remote).",
    )
    p.set_defaults(handler=mcp)


def mcp(args: argparse.Namespace, ctx: CliContext) -> int:
    """`mcp`: serve until the client closes stdin."""
    from tenex_tui.server.mcp import build_mcp_server, fixed_resolver

    remote = ctx.remote
    target = ctx.remote_target if remote else None
    paths, choice = ctx.paths, ctx.choice
    if not remote:
        ctx.model_warnings()

    async def main() -> None:
        from tenex_tui.cli.wiring import open_engine, open_remote

        backend: ChatBackend
        if target is not None:
            client = open_remote(target)
            # Asks the server who the key is (the user `list_chat_threads` names).
            await client.info()
            backend = client

            def user_id() -> str:
                return client.user_id or ""

        else:
            engine = await open_engine(paths, choice, with_model=True)
            backend = engine
            local_user = engine.scope.user_id

            def user_id() -> str:
                return local_user

        try:
            server = build_mcp_server(fixed_resolver(backend, user_id))
            await server.run_stdio_async()
        finally:
            await backend.aclose()

    asyncio.run(main())
    return EXIT_OK
