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
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, TypeVar

from tenex_tui.core.errors import (
    InvalidRequest,
    ModelError,
    ModelNotConfigured,
    NotFound,
    StorageError,
    StorageReadOnly,
)
from tenex_tui.core.events import StreamEvent
from tenex_tui.core.models import (
    Agent,
    Attachment,
    BackendInfo,
    Message,
    Page,
    SearchHit,
    Thread,
    ThreadContext,
)
from tenex_tui.core.payloads import AttachmentInput
from tenex_tui.engine.clock import Clock, SystemClock
from tenex_tui.engine.llm import LLMAdapter
from tenex_tui.engine.prompt import AttachmentText, build_turns
from tenex_tui.engine.replies import LiveReply
from tenex_tui.engine.store import ApiKeyRecord, IdempotencyRecord, Scope, Store
from tenex_tui.engine.store_db import DbThread, backup_database, open_connection
from tenex_tui.engine.store_replies import (
    ReplyStart,
    parse_event_id,
    validate_content,
)
from tenex_tui.engine.writer_lock import WriterLock, writer_alive

logger = logging.getLogger("tenex_tui.engine")

T = TypeVar("T")

NO_MODEL = (
    "No model is configured. Set OPENAI_API_KEY (and OPENAI_BASE_URL for a local server "
    "such as Ollama or llama.cpp), or add a provider to config.toml."
)
MODEL_LOOKUP_SECONDS = 5.0
"""How long `info()` waits for the provider's model list when no model is named."""
LIVENESS_CHECK_SECONDS = 1.0
"""How often a follower of another process's reply checks that process is alive."""
CANCEL_WAIT_SECONDS = 5.0
"""How long a cancel waits for another process to stop its reply."""


def default_agents() -> list[Agent]:
    """The agents a thread can be bound to (the agents issue replaces this)."""
    return [
        Agent(
            slug="assistant",
            name="Assistant",
            level="associate",
            description="The open assistant: no fixed role, no tools.",
        )
    ]


@dataclass
class _Core:
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
    replies: dict[tuple[str, str], LiveReply] = field(default_factory=dict)
    tasks: set[asyncio.Task[object]] = field(default_factory=set)
    start_lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    warm_started: bool = False
    closed: bool = False

    def spawn(self, coro: Awaitable[T]) -> asyncio.Task[T]:
        """Run a coroutine as an engine-owned task (kept referenced until done)."""

        async def wrap() -> T:
            return await coro

        task: asyncio.Task[T] = asyncio.get_running_loop().create_task(wrap())
        self.tasks.add(task)
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


class LocalEngine:
    """The local chat engine: every `ChatBackend` operation, on SQLite."""

    def __init__(self, core: _Core, scope: Scope, *, owner: bool) -> None:
        """Use `LocalEngine.open` (or `for_scope`); this wires an opened core."""
        self._core = core
        self._scope = scope
        self._owner = owner

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

        Returns:
            The engine for the default scope.

        Raises:
            StorageCorrupt: The file is not a database or is damaged (left untouched).
            StorageReadOnly: The file cannot be created or needs an upgrade it cannot get.
            StorageBusy: Another process held the lock past the busy timeout.
            StorageError: The path is unsafe (symlink, hard links, network filesystem).
        """
        path = Path(path)
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
        core = _Core(
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
        )
        return cls(core, scope, owner=True)

    def for_scope(self, workspace_id: str, user_id: str) -> LocalEngine:
        """A view of this engine for another workspace and user (same DB, same replies).

        Closing a view does nothing; close the engine `open` returned.
        """
        return LocalEngine(self._core, Scope(workspace_id, user_id), owner=False)

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
        """The agents a thread can be bound to."""
        return default_agents()

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
        if agent is not None and agent not in {
            a.slug for a in await self.list_agents()
        }:
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

    async def get_thread(self, thread_id: str) -> Thread:
        """Return one thread (see `ChatBackend.get_thread`)."""
        return await self._run(self._core.store.get_thread, self._scope, thread_id)

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

    async def delete_thread(self, thread_id: str) -> None:
        """Delete a thread, stopping its streaming reply first."""
        for live in self._live_in_thread(thread_id):
            await live.cancel()
        await self._run(self._core.store.delete_thread, self._scope, thread_id)

    def _live_in_thread(self, thread_id: str) -> list[LiveReply]:
        return [
            live
            for live in self._core.replies.values()
            if live.scope == self._scope and live.thread_id == thread_id
        ]

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

    async def get_message(self, thread_id: str, message_id: str) -> Message:
        """Return one message (see `ChatBackend.get_message`)."""
        return await self._run(
            self._core.store.get_message, self._scope, thread_id, message_id
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

    # -- replies ---------------------------------------------------------------------

    def _attachments(
        self, inputs: Sequence[AttachmentInput]
    ) -> tuple[list[Attachment], list[AttachmentText]]:
        records, texts = [], []
        for item in inputs:
            records.append(
                Attachment(
                    id=self._core.clock.new_id("att"),
                    kind=item.kind,
                    name=item.name,
                    media_type=item.media_type,
                    size=item.size,
                    sha256=item.sha256,
                    truncated=item.truncated,
                )
            )
            texts.append(
                AttachmentText(
                    name=item.name,
                    text=item.text,
                    kind=item.kind,
                    media_type=item.media_type,
                    truncated=item.truncated,
                )
            )
        return records, texts

    async def send_message(
        self,
        thread_id: str,
        content: str,
        *,
        attachments: Sequence[AttachmentInput] = (),
        knowledge: Sequence[str] = (),
        lead: str | None = None,
        client_request_id: str | None = None,
    ) -> AsyncIterator[StreamEvent]:
        """Store the user message, start the reply, and follow it.

        See `ChatBackend.send_message`. The reply is engine-owned: leaving the
        iteration detaches; the first event is `message.started`.
        """
        validate_content(content, bool(attachments or knowledge or lead))
        thread = await self.get_thread(thread_id)
        model = await self._core.model(thread.model)
        records, texts = self._attachments(attachments)
        if knowledge or lead is not None:
            for record, text in await self._run(
                self._core.store.resolve_context, self._scope, knowledge, lead
            ):
                records.append(record)
                texts.append(text)
        store = self._core.store

        def start(writer_id: str) -> ReplyStart:
            return store.start_send(
                self._scope,
                thread_id,
                content=content,
                attachments=records,
                attachment_text=texts,
                request_id=client_request_id,
                writer_id=writer_id,
                model=model,
            )

        async for event in self._start_and_follow(start, model):
            yield event

    async def regenerate(
        self,
        thread_id: str,
        *,
        mode: Literal["regenerate", "continue"] = "regenerate",
        client_request_id: str | None = None,
    ) -> AsyncIterator[StreamEvent]:
        """Answer the last user message again, or continue the last reply.

        See `ChatBackend.regenerate`.
        """
        if mode not in ("regenerate", "continue"):
            raise InvalidRequest("mode is 'regenerate' or 'continue'.")
        thread = await self.get_thread(thread_id)
        model = await self._core.model(thread.model)
        store = self._core.store

        def start(writer_id: str) -> ReplyStart:
            return store.start_regenerate(
                self._scope,
                thread_id,
                mode=mode,
                request_id=client_request_id,
                writer_id=writer_id,
                model=model,
            )

        async for event in self._start_and_follow(start, model):
            yield event

    async def _start_and_follow(
        self, start: Callable[[str], ReplyStart], model: str
    ) -> AsyncIterator[StreamEvent]:
        core = self._core
        if core.closed:
            raise StorageError("The engine is closed.")
        # The start runs as an engine task, shielded: a caller cancelled mid-start
        # still leaves a started reply running, never a `streaming` row nobody owns.
        outcome = await asyncio.shield(core.spawn(self._start(start, model)))
        result, live = outcome
        if live is None:
            async for event in self.stream_events(result.thread_id, result.message.id):
                yield event
            return
        async for event in live.follow(None):
            yield event

    async def _start(
        self, start: Callable[[str], ReplyStart], model: str
    ) -> tuple[ReplyStart, LiveReply | None]:
        core = self._core
        llm = core.llm
        if llm is None:
            raise ModelNotConfigured(NO_MODEL)
        # One start at a time: a resend with the same request id must find the first
        # send's reply registered here, not half-started.
        async with core.start_lock:
            result = await core.db.run(start, core.lock.instance_id)
            if result.existing or result.started is None:
                return result, None
            live = LiveReply(
                db=core.db,
                store=core.store,
                scope=self._scope,
                started=result.started,
                writer_id=core.lock.instance_id,
                checkpoint_interval=core.checkpoint_interval,
                initial_bytes=len(result.message.content.encode("utf-8")),
            )
            key = (self._scope.workspace_id, result.message.id)
            core.replies[key] = live
            turns = build_turns(result.system_prompt, result.history)
            live.start(llm, turns, model)
            assert live.task is not None
            live.task.add_done_callback(lambda _task: core.replies.pop(key, None))
            return result, live

    async def stream_events(
        self, thread_id: str, message_id: str, *, after: str | None = None
    ) -> AsyncIterator[StreamEvent]:
        """Exactly the events after `after`, then the live tail (see `ChatBackend`).

        A reply streamed by this process is followed in memory; one streamed by another
        process is followed by reading the store every `poll_interval` seconds, and
        ended `interrupted` if that process dies.
        """
        after_seq = parse_event_id(message_id, after) if after is not None else None
        live = self._core.replies.get((self._scope.workspace_id, message_id))
        if (
            live is not None
            and live.scope == self._scope
            and live.thread_id == thread_id
        ):
            if after_seq is not None and not (
                live.first_seq <= after_seq <= live.last_seq
            ):
                raise NotFound("event not found")
            async for event in live.follow(after_seq):
                yield event
            return
        async for event in self._follow_stored(thread_id, message_id, after_seq):
            yield event

    async def _follow_stored(
        self, thread_id: str, message_id: str, after_seq: int | None
    ) -> AsyncIterator[StreamEvent]:
        core = self._core
        store = core.store
        stored = await self._run(
            store.read_events, self._scope, thread_id, message_id, after_seq
        )
        position = after_seq if after_seq is not None else stored.first_seq - 1
        loop = asyncio.get_running_loop()
        next_liveness = loop.time() + LIVENESS_CHECK_SECONDS
        while True:
            for event in stored.events:
                position = int(event.id.rpartition(".")[2])
                yield event
                if event.terminal:
                    return
            if stored.status != "streaming":
                return
            live = core.replies.get((self._scope.workspace_id, message_id))
            if live is not None and live.scope == self._scope:
                # It became live here (a start that was registering): follow memory.
                async for event in live.follow(max(position, live.first_seq - 1)):
                    yield event
                return
            await asyncio.sleep(core.poll_interval)
            if loop.time() >= next_liveness:
                next_liveness = loop.time() + LIVENESS_CHECK_SECONDS
                writer = stored.writer_id
                if writer != core.lock.instance_id and not writer_alive(
                    core.lock.locks_dir, writer
                ):
                    await self._run(
                        store.end_orphan,
                        self._scope,
                        thread_id,
                        message_id,
                        "interrupted",
                    )
            stored = await self._run(
                store.read_events,
                self._scope,
                thread_id,
                message_id,
                position,
                strict=False,
            )

    async def cancel_message(self, thread_id: str, message_id: str) -> Message:
        """Stop a streaming reply; it ends `stopped` with its partial text. Idempotent."""
        core = self._core
        live = core.replies.get((self._scope.workspace_id, message_id))
        if (
            live is not None
            and live.scope == self._scope
            and live.thread_id == thread_id
        ):
            await live.cancel()
            if live.final is not None:
                return live.final
            return await self.get_message(thread_id, message_id)
        message, writer = await self._run(
            core.store.request_cancel, self._scope, thread_id, message_id
        )
        if writer is None or writer == core.lock.instance_id:
            return message
        if not writer_alive(core.lock.locks_dir, writer):
            return await self._run(
                core.store.end_orphan, self._scope, thread_id, message_id, "stopped"
            )
        # Another live process streams it: it sees the flag at its next checkpoint.
        loop = asyncio.get_running_loop()
        deadline = loop.time() + CANCEL_WAIT_SECONDS
        while message.status == "streaming" and loop.time() < deadline:
            await asyncio.sleep(core.poll_interval)
            message = await self.get_message(thread_id, message_id)
        return message

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
