"""The project's own HTTP server on 127.0.0.1:0, over a real `LocalEngine`, for tests.

`serve_stack(tmp_path)` opens an engine on a fresh SQLite file with a `StepLLM` (a small
scripted model whose replies can be held at a chosen delta), creates three scopes with a
key each — `a1` and `a2` (two users of workspace `ws_a`) and `b1` (workspace `ws_b`) —
and serves the API with uvicorn as a task in the test's own event loop (the engine's
tasks and the server share that loop, as they do in `tenex-tui serve`). `stack.remote()`
builds a `RemoteBackend` for one of the keys.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tenex_tui.core.models import Usage
from tenex_tui.core.secrets import Secret
from tenex_tui.engine.clock import FixedClock
from tenex_tui.engine.engine import LocalEngine
from tenex_tui.engine.llm import ChatTurn, Finished, LLMEvent, TextDelta, ToolSpec
from tenex_tui.remote.client import RemoteBackend
from tenex_tui.remote.sse import ResumePolicy
from tenex_tui.server.api import create_app
from tenex_tui.server.auth import Authenticator, generate_key
from tenex_tui.server.routes import ServerConfig
from tenex_tui.server.run import RunningServer, engine_provider, start_server

SCOPES: dict[str, tuple[str, str]] = {
    "a1": ("ws_a", "usr_a1"),
    "a2": ("ws_a", "usr_a2"),
    "b1": ("ws_b", "usr_b1"),
}
"""Key name → (workspace, user)."""


@dataclass
class Reply:
    """One scripted answer of `StepLLM`."""

    deltas: list[str]
    hold_at: int | None = None
    """Wait for `release` before yielding this delta (index into `deltas`)."""
    release: asyncio.Event = field(default_factory=asyncio.Event)
    reached: asyncio.Event = field(default_factory=asyncio.Event)
    """Set when the stream has reached `hold_at`."""
    fail: Exception | None = None
    """Raised after the deltas instead of finishing."""

    @property
    def text(self) -> str:
        return "".join(self.deltas)


class StepLLM:
    """A scripted `LLMAdapter`: replies from a queue (or a default), holdable mid-way."""

    def __init__(self, default_deltas: int = 5) -> None:
        self.queue: deque[Reply] = deque()
        self.default_deltas = default_deltas
        self.calls = 0
        """How many generations were started (T67/T68 count them)."""
        self.turns: list[Sequence[ChatTurn]] = []

    @property
    def default_model(self) -> str | None:
        return "step-model"

    def enqueue(
        self,
        deltas: Sequence[str],
        *,
        hold_at: int | None = None,
        fail: Exception | None = None,
    ) -> Reply:
        reply = Reply(list(deltas), hold_at=hold_at, fail=fail)
        self.queue.append(reply)
        return reply

    async def stream(
        self, turns: Sequence[ChatTurn], *, model: str, tools: Sequence[ToolSpec] = ()
    ) -> AsyncIterator[LLMEvent]:
        self.calls += 1
        self.turns.append(list(turns))
        reply = (
            self.queue.popleft()
            if self.queue
            else Reply([f"w{i} " for i in range(self.default_deltas)])
        )
        for index, delta in enumerate(reply.deltas):
            if reply.hold_at == index:
                reply.reached.set()
                await reply.release.wait()
            yield TextDelta(delta)
        if reply.fail is not None:
            raise reply.fail
        yield Finished(
            "stop", usage=Usage(prompt_tokens=3, completion_tokens=len(reply.deltas))
        )

    async def list_models(self) -> list[str]:
        return ["step-model", "step-model-large"]

    async def warm(self) -> None:
        return None

    async def aclose(self) -> None:
        return None


@dataclass
class Stack:
    """An engine served over HTTP, with keys for three scopes."""

    engine: LocalEngine
    llm: StepLLM
    server: RunningServer
    keys: dict[str, Secret]
    authenticator: Authenticator

    @property
    def base_url(self) -> str:
        return self.server.base_url

    def scoped(self, name: str) -> LocalEngine:
        """The engine as the user of key `name` sees it."""
        workspace, user = SCOPES[name]
        return self.engine.for_scope(workspace, user)

    def remote(self, name: str = "a1", **kwargs: Any) -> RemoteBackend:
        """A `RemoteBackend` for key `name` (closed by the stack)."""
        kwargs.setdefault(
            "resume", ResumePolicy(max_attempts=4, base_delay=0.05, max_delay=0.2)
        )
        backend = RemoteBackend(self.base_url, self.keys[name], **kwargs)
        self._remotes.append(backend)
        return backend

    _remotes: list[RemoteBackend] = field(default_factory=list)


@asynccontextmanager
async def serve_stack(
    tmp_path: Path,
    *,
    config: ServerConfig | None = None,
    revocation_ttl: float = 0.0,
    host: str = "127.0.0.1",
) -> AsyncIterator[Stack]:
    """Open an engine, create the scopes and keys, serve it, and clean up after."""
    llm = StepLLM()
    engine = await LocalEngine.open(
        tmp_path / "server.db",
        llm=llm,
        clock=FixedClock(),
        workspace_id="ws_a",
        user_id="usr_a1",
        workspace_name="Acme",
        checkpoint_interval=0.05,
        poll_interval=0.02,
    )
    server: RunningServer | None = None
    stack: Stack | None = None
    try:
        keys: dict[str, Secret] = {}
        for name, (workspace, user) in SCOPES.items():
            await engine.ensure_scope(
                workspace,
                user,
                workspace_name="Acme" if workspace == "ws_a" else "Beta",
            )
            key = generate_key()
            await engine.create_api_key(
                workspace_id=workspace,
                user_id=user,
                prefix=key.prefix,
                secret_hash=key.secret_hash,
                name=name,
            )
            keys[name] = key.token
        authenticator = Authenticator(engine, revocation_ttl=revocation_ttl)
        app = create_app(
            engine_provider(engine),
            authenticator,
            config=config or ServerConfig(ping_interval=15.0),
        )
        server = await start_server(app, host=host)
        stack = Stack(
            engine=engine,
            llm=llm,
            server=server,
            keys=keys,
            authenticator=authenticator,
        )
        yield stack
    finally:
        if stack is not None:
            for remote in stack._remotes:
                await remote.aclose()
        if server is not None:
            await server.stop(grace=5.0)
        await engine.aclose()
