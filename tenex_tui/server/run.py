"""Running the API with uvicorn: for `tenex-tui serve`, and in-process for tests.

The socket is bound here (not by uvicorn) so that port 0 works and the real port is known
before the first request; a bound, listening socket queues connections until uvicorn
accepts them, so callers never have to wait for start-up.

uvicorn's own access log is off: it prints the query string, which can carry search
terms. `api.AccessLog` logs paths, statuses and the key's public prefix instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import importlib.util
import ipaddress
import logging
import socket
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol, TextIO

import uvicorn
from starlette.types import ASGIApp

from tenex_tui.server.auth import AuthScope, KeyStore
from tenex_tui.server.routes import BackendProvider, ServedBackend
from tenex_tui.server.streaming import StreamRegistry

log = logging.getLogger("tenex_tui.server")

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8765


class ScopedEngine(KeyStore, Protocol):
    """An engine that serves many scopes (the local engine's `for_scope`)."""

    def for_scope(self, workspace_id: str, user_id: str) -> ServedBackend:
        """The engine's view for one workspace and user."""
        ...


def engine_provider(engine: ScopedEngine) -> BackendProvider:
    """The backend provider of a multi-scope engine."""

    async def provide(scope: AuthScope) -> ServedBackend:
        return engine.for_scope(scope.workspace_id, scope.user_id)

    return provide


def is_loopback_host(host: str) -> bool:
    """True for `localhost` and loopback addresses (127.0.0.0/8, ::1)."""
    host = host.strip("[]").lower()
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def exposure_warning(host: str, *, tls: bool) -> str | None:
    """A warning for a server reachable from other machines without TLS.

    Returns:
        The sentence to print, or None for loopback or TLS.
    """
    if tls or is_loopback_host(host):
        return None
    return (
        f"warning: serving on {host} without TLS: API keys and chats cross the network "
        "in clear text. Bind 127.0.0.1, or pass --tls-cert and --tls-key."
    )


def bind_socket(host: str, port: int, *, reuse_port: bool = False) -> socket.socket:
    """Bind and listen on `host:port` (port 0: any free port).

    Args:
        host: The address.
        port: The port (0: any free one).
        reuse_port: Set `SO_REUSEPORT`, so the workers of `serve --workers` each
            listen on their own socket of one port and the kernel spreads new
            connections evenly (one shared socket lets whichever loop wakes first
            accept a whole burst).

    Raises:
        OSError: When the address is in use or cannot be bound.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP explicitly: asyncio turns Nagle off (TCP_NODELAY) only on sockets
    # whose `proto` says TCP, and accepted sockets inherit it; with proto 0 every
    # answer written in two parts waited ~40 ms for the client's delayed ACK.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if reuse_port:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((host.strip("[]"), port))
        sock.listen(2048)
        sock.setblocking(False)
    except OSError:
        sock.close()
        raise
    return sock


class _Server(uvicorn.Server):
    """uvicorn's server, optionally without its signal handlers (for tests).

    On shutdown it first ends the app's open SSE streams (`StreamRegistry`): uvicorn
    would otherwise wait its whole graceful timeout for streams that never end by
    themselves, then cut them without the final chunk.
    """

    def __init__(
        self,
        config: uvicorn.Config,
        *,
        signals: bool,
        streams: StreamRegistry | None = None,
    ) -> None:
        super().__init__(config)
        self._signals = signals
        self._streams = streams

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        if self._streams is not None:
            self._streams.close_all()
        await super().shutdown(sockets=sockets)

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        if self._signals:
            with super().capture_signals():
                yield
        else:
            yield


def http_protocol() -> str:
    """uvicorn's HTTP implementation: `httptools` when installed, else `h11`.

    httptools (a dependency) took ~7% less server CPU per SSE event than h11 at 500
    streams (benchmarks `server.sse`, medians of several runs); without it the server
    still works on h11, which uvicorn always has.
    """
    return "httptools" if importlib.util.find_spec("httptools") is not None else "h11"


def _config(
    app: ASGIApp,
    *,
    tls_cert: str | None,
    tls_key: str | None,
    graceful_timeout: float,
) -> uvicorn.Config:
    return uvicorn.Config(
        app,
        http=http_protocol(),
        access_log=False,
        log_config=None,
        lifespan="off",
        ssl_certfile=tls_cert,
        ssl_keyfile=tls_key,
        timeout_graceful_shutdown=max(1, int(graceful_timeout)),
        server_header=False,
    )


def _streams_of(app: ASGIApp) -> StreamRegistry | None:
    """The open-stream registry of an app made by `api.create_app` (else None)."""
    state = getattr(getattr(app, "state", None), "server", None)
    streams = getattr(state, "streams", None)
    return streams if isinstance(streams, StreamRegistry) else None


@dataclass
class RunningServer:
    """A server running as a task in the current event loop."""

    host: str
    port: int
    server: uvicorn.Server
    task: asyncio.Task[None]
    scheme: str = "http"

    @property
    def base_url(self) -> str:
        """`http://127.0.0.1:<port>`."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}://{host}:{self.port}"

    async def stop(self, grace: float = 10.0) -> None:
        """Ask the server to exit, and wait (bounded) for it."""
        self.server.should_exit = True
        try:
            async with asyncio.timeout(grace):
                await self.task
        except TimeoutError:
            self.server.force_exit = True
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self.task


async def start_server(
    app: ASGIApp,
    *,
    host: str = DEFAULT_HOST,
    port: int = 0,
    tls_cert: str | None = None,
    tls_key: str | None = None,
    graceful_timeout: float = 2.0,
) -> RunningServer:
    """Start serving `app` in the current event loop (tests and embedding).

    Returns:
        The running server; connections are accepted as soon as this returns.
    """
    sock = bind_socket(host, port)
    bound_port = int(sock.getsockname()[1])
    config = _config(
        app, tls_cert=tls_cert, tls_key=tls_key, graceful_timeout=graceful_timeout
    )
    server = _Server(config, signals=False, streams=_streams_of(app))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    return RunningServer(
        host=host,
        port=bound_port,
        server=server,
        task=task,
        scheme="https" if tls_cert else "http",
    )


def announce(
    host: str, sock: socket.socket, *, tls: bool, out: TextIO, workers: int = 1
) -> None:
    """Print where `serve` listens (and the warning for a non-loopback address)."""
    warning = exposure_warning(host, tls=tls)
    if warning:
        out.write(warning + "\n")
    bound_port = int(sock.getsockname()[1])
    scheme = "https" if tls else "http"
    shown = f"[{host}]" if ":" in host else host
    processes = f" in {workers} processes" if workers > 1 else ""
    out.write(
        f"tenex-tui: serving {scheme}://{shown}:{bound_port}/api/v1/chat "
        f"(OpenAPI: /api/v1/openapi.json){processes}; Ctrl+C stops\n"
    )
    out.flush()


async def serve_forever(
    app: ASGIApp,
    *,
    host: str = DEFAULT_HOST,
    port: int = DEFAULT_PORT,
    tls_cert: str | None = None,
    tls_key: str | None = None,
    out: TextIO | None = None,
    sock: socket.socket | None = None,
) -> None:
    """Serve until Ctrl+C or SIGTERM (`tenex-tui serve`).

    Args:
        app: The ASGI app.
        host: The address to bind (and to show).
        port: The port to bind.
        tls_cert: TLS certificate (PEM), with `tls_key`.
        tls_key: TLS private key (PEM).
        out: Where the address is printed (stderr by default).
        sock: A socket already bound and announced (a worker of `serve --workers`);
            `host` and `port` are then not bound again and nothing is printed.

    Raises:
        OSError: When the address cannot be bound.
    """
    out = out if out is not None else sys.stderr
    if sock is None:
        sock = bind_socket(host, port)
        announce(host, sock, tls=bool(tls_cert), out=out)
    config = _config(app, tls_cert=tls_cert, tls_key=tls_key, graceful_timeout=5.0)
    server = _Server(config, signals=True, streams=_streams_of(app))
    await server.serve(sockets=[sock])


GC_THRESHOLDS = (50_000, 20, 100)
"""Allocations between young collections, and young/middle collections per older one."""


def tune_gc() -> None:
    """Make the cyclic garbage collector cheap for a long-running server.

    A busy server holds hundreds of thousands of long-lived objects (every live reply
    keeps its events for followers, plus the SDK, pydantic and Starlette), and with
    CPython's default thresholds (700, 10, 10) the full collections that rescan them
    took ~13% of the CPU at 500 streams, with single pauses of ~0.4 s: every stream's
    p99. Freezing what start-up built moves it out of every collection; larger
    thresholds make collections rarer (reference counting frees almost everything
    anyway; the collector is only for cycles).
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


def configure_access_log(stream: TextIO, level: int = logging.INFO) -> None:
    """Print the server's access log and warnings on `stream` (for `serve`)."""
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(asctime)s %(message)s"))
    logger = logging.getLogger("tenex_tui.server")
    if not any(isinstance(h, logging.StreamHandler) for h in logger.handlers):
        logger.addHandler(handler)
    logger.setLevel(level)
