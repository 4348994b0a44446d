"""`tenex-tui serve`: the local engine as the `/api/v1/chat` HTTP API.

It binds 127.0.0.1 by default; binding another address without TLS prints a warning,
because keys and chats would cross the network in clear text. Requests need a key from
`tenex-tui keys create`. Ctrl+C stops the server (replies still streaming end `stopped`).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from tenex_tui.cli.context import EXIT_OK, CliContext, UsageError

if TYPE_CHECKING:
    from tenex_tui.engine.engine import LocalEngine


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port number: {text!r}") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError("a port is 0 to 65535")
    return value


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `serve`."""
    p = subparsers.add_parser(
        "serve",
        help="serve the local engine as the /api/v1/chat HTTP API",
        description="Serve the local threads over HTTP (the 10ex chat API, with SSE "
        "streaming). Clients authenticate with keys from `tenex-tui keys create`.",
    )
    p.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to bind (default 127.0.0.1: this machine only)",
    )
    p.add_argument("--port", type=_port, default=8765, help="port (default 8765)")
    p.add_argument(
        "--tls-cert", metavar="PATH", type=Path, help="TLS certificate (PEM)"
    )
    p.add_argument("--tls-key", metavar="PATH", type=Path, help="TLS private key (PEM)")
    p.set_defaults(handler=serve)


def serve(args: argparse.Namespace, ctx: CliContext) -> int:
    """`serve`: run until Ctrl+C."""
    from tenex_tui.server.api import create_app
    from tenex_tui.server.auth import Authenticator
    from tenex_tui.server.run import (
        configure_access_log,
        engine_provider,
        serve_forever,
    )

    if (args.tls_cert is None) != (args.tls_key is None):
        raise UsageError("--tls-cert and --tls-key go together")
    for path in (args.tls_cert, args.tls_key):
        if path is not None and not path.is_file():
            raise UsageError(f"{path} is not a file")

    async def body(engine: LocalEngine) -> None:
        keys = await engine.list_api_keys()
        if not any(record.revoked_at is None for record in keys):
            ctx.error(
                "tenex-tui: no active API keys yet; create one with "
                "`tenex-tui keys create` (requests without one get 401)"
            )
        app = create_app(engine_provider(engine), Authenticator(engine))
        configure_access_log(ctx.stderr)
        await serve_forever(
            app,
            host=args.host,
            port=args.port,
            tls_cert=str(args.tls_cert) if args.tls_cert else None,
            tls_key=str(args.tls_key) if args.tls_key else None,
            out=ctx.stderr,
        )

    try:
        ctx.run_engine(body, with_model=True)
    except OSError as exc:
        ctx.error(f"tenex-tui: cannot serve on {args.host}:{args.port}: {exc.strerror}")
        return 1
    return EXIT_OK
