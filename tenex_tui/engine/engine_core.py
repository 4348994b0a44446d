"""What every view of one engine shares, and the base class of those views.

`EngineCore` holds the DB thread, the store, the model adapter, the writer lock, the
agent and tool registries and the live replies of one engine instance; `EngineView` is one workspace-and-user scope over
it (`LocalEngine` is the concrete view).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from tenex_tui.core.errors import ModelNotConfigured, StorageError
from tenex_tui.core.models import Message, Thread
from tenex_tui.engine.agents import AgentRegistry
from tenex_tui.engine.clock import Clock
from tenex_tui.engine.llm import LLMAdapter
from tenex_tui.engine.replies import LiveReply
from tenex_tui.engine.reply_checkpoints import CheckpointBatcher
from tenex_tui.engine.store import Scope, Store
from tenex_tui.engine.store_db import DbThread
from tenex_tui.engine.tools import ToolRegistry, builtin_tools
from tenex_tui.engine.writer_lock import WriterLock

T = TypeVar("T")

NO_MODEL = (
    "No model is configured. Set OPENAI_API_KEY (and OPENAI_BASE_URL for a local server "
    "such as Ollama or llama.cpp), or add a provider to config.toml."
)


def _forget(task: asyncio.Task[T]) -> None:
    # A caller that stopped waiting (cancelled mid-start) already got its answer; its
    # task's error must not be logged as "never retrieved".
    if not task.cancelled():
        task.exception()


@dataclass
class EngineCore:
    """What every scoped view of one engine shares."""

    path: Path
    db: DbThread
    store: Store
    llm: LLMAdapter | None
    clock: Clock
    lock: WriterLock
    checkpoint_interval: float
    poll_interval: float
    read_only: bool
    default_model: str | None
    agents: AgentRegistry = field(default_factory=lambda: AgentRegistry.load(None))
    """Built-in agents plus the user's (`LocalEngine.open(agents_dir=...)`)."""
    tools: ToolRegistry = field(default_factory=builtin_tools)
    """The tools replies may run (the agent's list says which)."""
    replies: dict[tuple[str, str], LiveReply] = field(default_factory=dict)
    checkpoints: CheckpointBatcher | None = None
    """Writes every live reply's checkpoints in one batch (made with the first reply)."""
    tasks: set[asyncio.Task[object]] = field(default_factory=set)
    start_lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    start_locks: dict[tuple[str, str], tuple[asyncio.Lock, list[int]]] = field(
        default_factory=dict
    )
    """Per-thread start locks with their user counts (`engine_replies`)."""
    warm_started: bool = False
    closed: bool = False

    def spawn(self, coro: Coroutine[object, object, T]) -> asyncio.Task[T]:
        """Run a coroutine as an engine-owned task (kept referenced until done)."""
        task = asyncio.get_running_loop().create_task(coro)
        self.tasks.add(task)
        task.add_done_callback(_forget)
        task.add_done_callback(self.tasks.discard)
        return task

    async def model(self, thread_model: str | None = None) -> str:
        """The model for a request: the thread's, else the configured default.

        Raises:
            ModelNotConfigured: When there is no adapter or no model at all.
            ModelUnavailable: When the provider must be asked and cannot be reached.
        """
        if self.llm is None:
            raise ModelNotConfigured(NO_MODEL)
        if thread_model:
            return thread_model
        if self.default_model is None:
            self.default_model = self.llm.default_model
        if self.default_model is None:
            models = await self.llm.list_models()
            if not models:
                raise ModelNotConfigured(
                    "The model provider lists no models; name one with --model, "
                    "TENEX_MODEL or config.toml."
                )
            self.default_model = models[0]
        return self.default_model


class EngineView:
    """One scope (workspace and user) over an engine core."""

    def __init__(self, core: EngineCore, scope: Scope, *, owner: bool) -> None:
        """Wire a view; use `LocalEngine.open` or `for_scope` instead."""
        self._core = core
        self._scope = scope
        self._owner = owner

    @property
    def scope(self) -> Scope:
        """The workspace and user this view acts for."""
        return self._scope

    @property
    def path(self) -> Path:
        """The database file."""
        return self._core.path

    async def _run(self, fn: Callable[..., T], *args: object, **kwargs: object) -> T:
        if self._core.closed:
            raise StorageError("The engine is closed.")
        return await self._core.db.run(fn, *args, **kwargs)

    async def get_thread(self, thread_id: str) -> Thread:
        """Return one thread (see `ChatBackend.get_thread`)."""
        return await self._run(self._core.store.get_thread, self._scope, thread_id)

    async def get_message(self, thread_id: str, message_id: str) -> Message:
        """Return one message (see `ChatBackend.get_message`)."""
        return await self._run(
            self._core.store.get_message, self._scope, thread_id, message_id
        )
