"""`LocalEngine`: the `ChatBackend` on SQLite and an OpenAI-compatible model.

One engine instance owns one database connection (on its DB thread), one writer lock
file, and the replies it streams. `for_scope` gives views of the same engine for other
workspaces and users (the HTTP server serves many keys from one engine); they share
everything but the scope, and only the instance that `open` returned closes it.

Replies are engine-owned asyncio tasks (`replies.LiveReply`): the iterator that
`send_message` returns only follows one; leaving it detaches, `cancel_message` stops it,
`aclose` stops them all (they end `stopped`: the user quit).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from pathlib import Path
from typing import Literal

from tenex_tui.core.errors import (
    InvalidRequest,
    ModelError,
    ModelNotConfigured,
    StorageError,
    StorageReadOnly,
)
from tenex_tui.core.models import (
    Agent,
    BackendInfo,
    Message,
    Page,
    SearchHit,
    Thread,
    ThreadContext,
)
from tenex_tui.engine.agents import AgentRegistry
from tenex_tui.engine.clock import Clock, SystemClock
from tenex_tui.engine.engine_core import NO_MODEL, EngineCore
from tenex_tui.engine.engine_replies import ReplyOperations
from tenex_tui.engine.llm import LLMAdapter
from tenex_tui.engine.mirror_port import SyncOperations
from tenex_tui.engine.store import ApiKeyRecord, IdempotencyRecord, Scope, Store
from tenex_tui.engine.store_db import DbThread, backup_database, open_connection
from tenex_tui.engine.tools import ToolRegistry, builtin_tools
from tenex_tui.engine.writer_lock import WriterLock

logger = logging.getLogger("tenex_tui.engine")

MODEL_LOOKUP_SECONDS = 5.0
"""How long `info()` waits for the provider's model list when no model is named."""


class LocalEngine(SyncOperations, ReplyOperations):
    """The local chat engine: every `ChatBackend` operation, on SQLite."""

    @classmethod
    async def open(
        cls,
        path: str | Path,
        *,
        llm: LLMAdapter | None = None,
        clock: Clock | None = None,
        workspace_id: str = "ws_local",
        user_id: str = "usr_local",
        workspace_name: str = "Local",
        locks_dir: Path | None = None,
        checkpoint_interval: float = 0.25,
        busy_timeout_ms: int = 5000,
        default_model: str | None = None,
        read_only: bool = False,
        poll_interval: float = 0.1,
        agents_dir: Path | None = None,
        tools: ToolRegistry | None = None,
    ) -> LocalEngine:
        """Open (creating and migrating) the database and start the engine.

        Streaming messages left by dead processes are ended `interrupted` (never
        regenerated).

        Args:
            path: The SQLite file.
            llm: The model adapter (None: the engine reads and triages but cannot chat).
                The engine closes it in `aclose`.
            clock: Time and ids (tests pass a `FixedClock`).
            workspace_id: The default scope's workspace.
            user_id: The default scope's user.
            workspace_name: The workspace's display name, set if it has none yet.
            locks_dir: Where writer lock files live (default `<db folder>/locks`).
            checkpoint_interval: Seconds between checkpoints of a streaming reply.
            busy_timeout_ms: How long a write waits for another process's lock.
            default_model: The model when a thread names none (else the adapter's
                default, else the provider's first listed model).
            read_only: Open with `mode=ro`: reading only, `info().read_only` is True.
            poll_interval: Seconds between reads when following a reply that another
                process streams.
            agents_dir: The user's agent files (`Paths.agents_dir`); None for the
                built-in agents only. Malformed files are skipped and listed in
                `agent_problems`.
            tools: The tools replies may run (default: `builtin_tools()`).

        Returns:
            The engine for the default scope.

        Raises:
            StorageCorrupt: The file is not a database or is damaged (left untouched).
            StorageReadOnly: The file cannot be created or needs an upgrade it cannot get.
            StorageBusy: Another process held the lock past the busy timeout.
            StorageError: The path is unsafe (symlink, hard links, network filesystem).
        """
        path = Path(path)
        tool_registry = tools if tools is not None else builtin_tools()
        # Reading the agent files is blocking I/O: off the event loop.
        agents = await asyncio.to_thread(
            AgentRegistry.load, agents_dir, known_tools=tool_registry.names
        )
        for problem in agents.problems:
            logger.warning("agent file skipped: %s", problem.message)
        locks = locks_dir if locks_dir is not None else path.parent / "locks"
        the_clock = clock if clock is not None else SystemClock()
        db = DbThread(path)
        lock = WriterLock(locks, f"inst_{secrets.token_hex(8)}")
        scope = Scope(workspace_id, user_id)
        try:
            connection = await db.run(
                open_connection,
                path,
                busy_timeout_ms=busy_timeout_ms,
                read_only=read_only,
            )
            db.connection = connection
            store = await db.run(Store, connection, the_clock, locks)
            if not connection.read_only:
                try:
                    lock.acquire()
                except OSError as exc:
                    raise StorageReadOnly(
                        f"The lock folder {locks} cannot be written: {exc.strerror}."
                    ) from None
                await db.run(store.ensure_scope, scope, None, None)
                await db.run(store.name_workspace_if_unnamed, scope, workspace_name)
                ended = await db.run(store.reconcile)
                if ended:
                    logger.info("marked %d interrupted replies", ended)
        except BaseException:
            lock.release()
            await asyncio.to_thread(db.shutdown)
            raise
        core = EngineCore(
            path=path,
            db=db,
            store=store,
            llm=llm,
            clock=the_clock,
            lock=lock,
            checkpoint_interval=checkpoint_interval,
            poll_interval=poll_interval,
            read_only=connection.read_only,
            default_model=default_model,
            agents=agents,
            tools=tool_registry,
        )
        return cls(core, scope, owner=True)

    def for_scope(self, workspace_id: str, user_id: str) -> LocalEngine:
        """A view of this engine for another workspace and user (same DB, same replies).

        Closing a view does nothing; close the engine `open` returned.
        """
        return LocalEngine(self._core, Scope(workspace_id, user_id), owner=False)

    # -- scope, keys, idempotency, backup ------------------------------------------

    async def ensure_scope(
        self,
        workspace_id: str,
        user_id: str,
        *,
        workspace_name: str | None = None,
        user_name: str | None = None,
    ) -> None:
        """Create a workspace and user if missing (and name them when names are given)."""
        await self._run(
            self._core.store.ensure_scope,
            Scope(workspace_id, user_id),
            workspace_name,
            user_name,
        )

    async def backup(self, dest: Path) -> None:
        """Write a consistent copy of the database to `dest` (SQLite backup API, T9).

        Raises:
            InvalidRequest: When `dest` is the database itself.
            StorageError: When the copy cannot be written.
        """
        dest = Path(dest)
        if dest.resolve() == self._core.path.resolve():
            raise InvalidRequest("A backup cannot overwrite the database it copies.")
        await asyncio.to_thread(backup_database, self._core.path, dest)

    async def create_api_key(
        self,
        *,
        workspace_id: str,
        user_id: str,
        prefix: str,
        secret_hash: str,
        name: str = "",
    ) -> ApiKeyRecord:
        """Store an API key (only its prefix and the hash of its secret)."""
        return await self._run(
            self._core.store.create_api_key,
            workspace_id=workspace_id,
            user_id=user_id,
            prefix=prefix,
            secret_hash=secret_hash,
            name=name,
        )

    async def find_api_key(self, prefix: str) -> ApiKeyRecord | None:
        """The key with this prefix, revoked ones included (`revoked_at` set)."""
        return await self._run(self._core.store.find_api_key, prefix)

    async def list_api_keys(
        self, workspace_id: str | None = None
    ) -> list[ApiKeyRecord]:
        """Every key, or those of one workspace."""
        return await self._run(self._core.store.list_api_keys, workspace_id)

    async def revoke_api_key(self, prefix: str) -> bool:
        """Revoke a key; False when no active key has that prefix."""
        return await self._run(self._core.store.revoke_api_key, prefix)

    async def get_idempotency(self, key: str) -> IdempotencyRecord | None:
        """The first stored result for this key, in this view's workspace and user."""
        return await self._run(self._core.store.get_idempotency, self._scope, key)

    async def put_idempotency(
        self, key: str, *, request_hash: str, status: int, body: str
    ) -> None:
        """Store the first result for a key (later puts are ignored: first one wins)."""
        await self._run(
            self._core.store.put_idempotency,
            self._scope,
            key,
            request_hash=request_hash,
            status=status,
            body=body,
        )

    # -- info, models, agents --------------------------------------------------------

    async def info(self) -> BackendInfo:
        """Describe the engine; starts warming the model adapter in the background."""
        core = self._core
        if core.llm is not None and not core.warm_started and not core.closed:
            core.warm_started = True
            core.spawn(self._warm(core.llm))
        try:
            name = await self._run(core.store.workspace_name, self._scope)
        except StorageError:
            name = self._scope.workspace_id
        model: str | None = None
        problem: str | None = None
        try:
            async with asyncio.timeout(MODEL_LOOKUP_SECONDS):
                model = await core.model()
        except ModelNotConfigured as exc:
            problem = exc.message
        except ModelError as exc:
            problem = f"The model provider could not be reached: {exc.message}"
        except TimeoutError:
            problem = "The model provider did not answer in time."
        return BackendInfo(
            kind="local",
            workspace=name,
            model=model,
            model_problem=problem,
            read_only=core.read_only,
        )

    @staticmethod
    async def _warm(llm: LLMAdapter) -> None:
        try:
            await llm.warm()
        except Exception:
            logger.exception("warming the model adapter failed")

    async def list_models(self) -> list[str]:
        """The provider's models.

        Raises:
            ModelNotConfigured: Without an adapter.
            ModelUnavailable: When the provider cannot be reached.
        """
        if self._core.llm is None:
            raise ModelNotConfigured(NO_MODEL)
        return await self._core.llm.list_models()

    async def list_agents(self) -> list[Agent]:
        """The agents a thread can be bound to: built-ins first, then the user's."""
        return self._core.agents.list()

    @property
    def agent_problems(self) -> list[str]:
        """Why user agent files were skipped (one sentence each, naming the file)."""
        return [problem.message for problem in self._core.agents.problems]

    # -- threads ---------------------------------------------------------------------

    async def create_thread(
        self,
        *,
        title: str | None = None,
        system_prompt: str | None = None,
        agent: str | None = None,
        context: ThreadContext | None = None,
        model: str | None = None,
    ) -> Thread:
        """Create a thread (see `ChatBackend.create_thread`)."""
        if agent is not None and agent not in self._core.agents:
            raise InvalidRequest(f"There is no agent {agent!r}.")
        return await self._run(
            self._core.store.create_thread,
            self._scope,
            title=title,
            system_prompt=system_prompt,
            agent=agent,
            context=context,
            model=model,
        )

    async def list_threads(
        self,
        *,
        limit: int | None = None,
        cursor: str | None = None,
        archived: bool | None = False,
        pinned: bool | None = None,
        agent: str | None = None,
        q: str | None = None,
    ) -> Page[Thread]:
        """List threads, pinned first, then by recency (see `ChatBackend.list_threads`)."""
        return await self._run(
            self._core.store.list_threads,
            self._scope,
            limit=limit,
            cursor=cursor,
            archived=archived,
            pinned=pinned,
            agent=agent,
            q=q,
        )

    async def update_thread(
        self,
        thread_id: str,
        *,
        title: str | None = None,
        pinned: bool | None = None,
        archived: bool | None = None,
        draft: str | None = None,
    ) -> Thread:
        """Rename, pin, archive or save a draft (see `ChatBackend.update_thread`)."""
        return await self._run(
            self._core.store.update_thread,
            self._scope,
            thread_id,
            title=title,
            pinned=pinned,
            archived=archived,
            draft=draft,
        )

    async def mark_read(self, thread_id: str) -> Thread:
        """Clear the thread's unread mark (see `ChatBackend.mark_read`)."""
        return await self._run(self._core.store.mark_read, self._scope, thread_id)

    # -- messages --------------------------------------------------------------------

    async def list_messages(
        self,
        thread_id: str,
        *,
        limit: int | None = None,
        cursor: str | None = None,
        order: Literal["asc", "desc"] = "asc",
    ) -> Page[Message]:
        """Page through a thread's history (see `ChatBackend.list_messages`)."""
        return await self._run(
            self._core.store.list_messages,
            self._scope,
            thread_id,
            limit=limit,
            cursor=cursor,
            order=order,
        )

    async def edit_message(
        self, thread_id: str, message_id: str, content: str
    ) -> Message:
        """Replace the last user message's text (see `ChatBackend.edit_message`)."""
        return await self._run(
            self._core.store.edit_message, self._scope, thread_id, message_id, content
        )

    async def search(
        self, q: str, *, limit: int | None = None, cursor: str | None = None
    ) -> Page[SearchHit]:
        """Full-text search (see `ChatBackend.search`)."""
        return await self._run(
            self._core.store.search, self._scope, q, limit=limit, cursor=cursor
        )

    # -- closing ---------------------------------------------------------------------

    async def aclose(self) -> None:
        """Stop live replies (they end `stopped`), close the adapter and the database.

        Only the engine `open` returned closes anything; on a `for_scope` view this
        does nothing.
        """
        core = self._core
        if not self._owner or core.closed:
            return
        lives = list(core.replies.values())
        for live in lives:
            live.closing()
        await asyncio.gather(*(live.cancel() for live in lives), return_exceptions=True)
        core.closed = True
        pending = [t for t in core.tasks if not t.done()]
        for task in pending:
            task.cancel()
        if pending:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(5):
                    await asyncio.gather(*pending, return_exceptions=True)
        if core.llm is not None:
            try:
                await core.llm.aclose()
            except Exception:
                logger.exception("closing the model adapter failed")
        await asyncio.to_thread(core.db.shutdown)
        core.lock.release()
