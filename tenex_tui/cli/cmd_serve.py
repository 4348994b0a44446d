"""`tenex-tui serve`: the local engine as the `/api/v1/chat` HTTP API.

It binds 127.0.0.1 by default; binding another address without TLS prints a warning,
because keys and chats would cross the network in clear text. Requests need a key from
`tenex-tui keys create`. Ctrl+C stops the server (replies still streaming end `stopped`).
`--workers N` serves the port from N processes (see `server/workers.py`).
"""

from __future__ import annotations

import argparse
import socket
from collections.abc import Awaitable, Callable
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
    p.add_argument(
        "--workers",
        type=_workers,
        default=1,
        metavar="N",
        help="processes serving the port (default 1; one per core for hundreds of "
        "concurrent streams; POSIX only)",
    )
    p.set_defaults(handler=serve)


def _workers(text: str) -> int:
    from tenex_tui.server.workers import MAX_WORKERS

    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 1 <= value <= MAX_WORKERS:
        raise argparse.ArgumentTypeError(f"--workers is 1 to {MAX_WORKERS}")
    return value


def serve(args: argparse.Namespace, ctx: CliContext) -> int:
    """`serve`: run until Ctrl+C."""
    from tenex_tui.server.api import create_app
    from tenex_tui.server.auth import Authenticator
    from tenex_tui.server.run import (
        configure_access_log,
        engine_provider,
        serve_forever,
        tune_gc,
    )

    if (args.tls_cert is None) != (args.tls_key is None):
        raise UsageError("--tls-cert and --tls-key go together")
    for path in (args.tls_cert, args.tls_key):
        if path is not None and not path.is_file():
            raise UsageError(f"{path} is not a file")

    async def check_keys(engine: LocalEngine) -> None:
        keys = await engine.list_api_keys()
        if not any(record.revoked_at is None for record in keys):
            ctx.error(
                "tenex-tui: no active API keys yet; create one with "
                "`tenex-tui keys create` (requests without one get 401)"
            )

    def body(sock: socket.socket | None) -> Callable[[LocalEngine], Awaitable[None]]:
        async def run(engine: LocalEngine) -> None:
            if sock is None:
                await check_keys(engine)
            # Starts warming the model adapter now (the SDK import and its first
            # request's setup run in a worker thread), not on the first requests.
            await engine.info()
            app = create_app(engine_provider(engine), Authenticator(engine))
            configure_access_log(ctx.stderr)
            tune_gc()
            await serve_forever(
                app,
                host=args.host,
                port=args.port,
                tls_cert=str(args.tls_cert) if args.tls_cert else None,
                tls_key=str(args.tls_key) if args.tls_key else None,
                out=ctx.stderr,
                sock=sock,
            )

        return run

    try:
        if args.workers == 1:
            ctx.run_engine(body(None), with_model=True)
            return EXIT_OK
        return _serve_workers(args, ctx, check_keys, body)
    except OSError as exc:
        ctx.error(f"tenex-tui: cannot serve on {args.host}:{args.port}: {exc.strerror}")
        return 1


def _serve_workers(
    args: argparse.Namespace,
    ctx: CliContext,
    check_keys: Callable[[LocalEngine], Awaitable[None]],
    body: Callable[[socket.socket | None], Callable[[LocalEngine], Awaitable[None]]],
) -> int:
    """`serve --workers N`: prepare once, bind once, fork, serve in every process."""
    from tenex_tui.server.run import announce, bind_socket
    from tenex_tui.server.workers import (
        WorkersUnavailable,
        check_can_fork,
        run_workers,
    )

    # One process migrates and reconciles the database (and checks the keys) before
    # the others exist: several processes opening a fresh file at once would race.
    ctx.run_engine(check_keys)
    try:
        check_can_fork()
    except WorkersUnavailable as exc:
        raise UsageError(str(exc)) from None
    sock = bind_socket(args.host, args.port, reuse_port=True)
    port = int(sock.getsockname()[1])
    announce(
        args.host,
        sock,
        tls=args.tls_cert is not None,
        out=ctx.stderr,
        workers=args.workers,
    )

    def serve_here(index: int) -> int:
        # Each child listens on its own socket of the port (see `bind_socket`); the
        # copy of the parent's it inherited would let it take the parent's share.
        own = sock
        if index:
            sock.close()
            own = bind_socket(args.host, port, reuse_port=True)
        try:
            ctx.run_engine(body(own), with_model=True)
        finally:
            own.close()
        return EXIT_OK

    try:
        return run_workers(args.workers, serve_here)
    finally:
        sock.close()
