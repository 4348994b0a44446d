"""The reply operations of `LocalEngine`: send, regenerate, follow, resume, cancel.

Replies are engine-owned asyncio tasks (`replies.LiveReply`): the iterator that
`send_message` returns only follows one; leaving it detaches, `cancel_message` stops it.
A reply streamed by another process (another engine on the same file) is followed by
reading its stored events, and ended `interrupted` if that process dies.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from typing import Literal

from tenex_tui.core.errors import (
    InvalidRequest,
    ModelNotConfigured,
    NotFound,
    StorageError,
)
from tenex_tui.core.events import StreamEvent
from tenex_tui.core.models import Agent, Attachment, Message, Thread
from tenex_tui.core.payloads import AttachmentInput
from tenex_tui.engine.engine_core import NO_MODEL
from tenex_tui.engine.engine_knowledge import KnowledgeOperations
from tenex_tui.engine.prompt import (
    AttachmentText,
    build_turns,
    compose_system,
    render_thread_context,
)
from tenex_tui.engine.replies import LiveReply
from tenex_tui.engine.reply_checkpoints import CheckpointBatcher
from tenex_tui.engine.store_events import parse_event_id
from tenex_tui.engine.store_replies import ReplyStart, validate_content
from tenex_tui.engine.tool_loop import ToolSession
from tenex_tui.engine.tools import GET_LEAD, SEARCH_KNOWLEDGE
from tenex_tui.engine.writer_lock import writer_alive

logger = logging.getLogger("tenex_tui.engine")

LIVENESS_CHECK_SECONDS = 1.0
"""How often a follower of another process's reply checks that process is alive."""
CANCEL_WAIT_SECONDS = 5.0
"""How long a cancel waits for another process to stop its reply."""
REQUEST_HEAD_START = 0.25
"""At most this long, a new reply's first event waits for its model request to go out
(see `_start_and_follow`)."""
OPEN_ASSISTANT_TOOLS: frozenset[str] = frozenset({SEARCH_KNOWLEDGE, GET_LEAD})
"""What a thread bound to no agent may call: the seed says assistants have the same
brand knowledge and connectors as agents."""


@dataclass(frozen=True)
class ReplyPlan:
    """What a thread's agent and context add to each of its replies."""

    model: str
    agent_prompt: str | None
    """The agent's system prompt, which goes before the thread's own."""
    context: str | None
    """The thread's knowledge documents and lead, rendered as data."""
    tools: ToolSession


class ReplyOperations(KnowledgeOperations):
    """Sending, regenerating, following and stopping replies."""

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

    def _agent(self, thread: Thread) -> Agent | None:
        if thread.agent is None:
            return None
        registry = self._core.agents
        if thread.agent not in registry:
            # The user removed the agent's file: the thread goes on as the open
            # assistant rather than failing every send.
            logger.warning(
                "thread %s is bound to the missing agent %r", thread.id, thread.agent
            )
            return None
        return registry.get(thread.agent)

    async def _plan(self, thread: Thread) -> ReplyPlan:
        """The model, prompts and tools of a reply in this thread.

        Raises:
            ModelNotConfigured: When there is no model.
            ModelUnavailable: When the provider must be asked and cannot be reached.
        """
        core = self._core
        agent = self._agent(thread)
        model = await core.model(thread.model or (agent.model if agent else None))
        context = None
        if thread.context.knowledge or thread.context.lead:
            items = await self._run(
                core.store.thread_context, self._scope, thread.context
            )
            context = render_thread_context(items)
        allowed = frozenset(agent.tools) if agent is not None else OPEN_ASSISTANT_TOOLS
        return ReplyPlan(
            model=model,
            agent_prompt=agent.system_prompt if agent is not None else None,
            context=context,
            tools=ToolSession(
                registry=core.tools, allowed=allowed, context=self, clock=core.clock
            ),
        )

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
        plan = await self._plan(thread)
        model = plan.model
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

        async for event in self._start_and_follow(thread_id, start, plan):
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
        plan = await self._plan(thread)
        model = plan.model
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

        async for event in self._start_and_follow(thread_id, start, plan):
            yield event

    async def _start_and_follow(
        self, thread_id: str, start: Callable[[str], ReplyStart], plan: ReplyPlan
    ) -> AsyncIterator[StreamEvent]:
        core = self._core
        if core.closed:
            raise StorageError("The engine is closed.")
        # The start runs as an engine task, shielded: a caller cancelled mid-start
        # still leaves a started reply running, never a `streaming` row nobody owns.
        outcome = await asyncio.shield(core.spawn(self._start(thread_id, start, plan)))
        result, live = outcome
        if live is None:
            async for event in self.stream_events(result.thread_id, result.message.id):
                yield event
            return
        # The model request goes out before the caller hears of the reply: whatever
        # a caller does on `message.started` (an app mounting views, ~50-150 ms of the
        # event loop this engine shares) would otherwise delay the request, and so the
        # first token, by as much.
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(REQUEST_HEAD_START):
                await live.requested.wait()
        async for event in live.follow(None):
            yield event

    async def _start(
        self, thread_id: str, start: Callable[[str], ReplyStart], plan: ReplyPlan
    ) -> tuple[ReplyStart, LiveReply | None]:
        core = self._core
        llm = core.llm
        if llm is None:
            raise ModelNotConfigured(NO_MODEL)
        # One start at a time per thread: a resend with the same request id (same
        # thread) must find the first send's reply registered here, not half-started.
        # Starts in different threads run side by side: with one engine-wide lock, a
        # server starting hundreds of replies at once queued every start behind every
        # other one's round trip to the DB thread (seconds at 500 streams).
        async with self._start_lock(thread_id):
            result = await core.db.run(start, core.lock.instance_id)
            if result.existing or result.started is None:
                return result, None
            live = LiveReply(
                db=core.db,
                store=core.store,
                scope=self._scope,
                started=result.started,
                writer_id=core.lock.instance_id,
                checkpoints=self._checkpoints(),
                initial_bytes=len(result.message.content.encode("utf-8")),
                # A continued reply keeps the envelopes it already has.
                initial_calls=result.message.tool_calls,
            )
            key = (self._scope.workspace_id, result.message.id)
            core.replies[key] = live
            system = compose_system(
                plan.agent_prompt, result.system_prompt, plan.context
            )
            turns = build_turns(system, result.history)
            live.start(llm, turns, plan.model, plan.tools)
            assert live.task is not None
            live.task.add_done_callback(lambda _task: core.replies.pop(key, None))
            return result, live

    @contextlib.asynccontextmanager
    async def _start_lock(self, thread_id: str) -> AsyncIterator[None]:
        locks = self._core.start_locks
        key = (self._scope.workspace_id, thread_id)
        entry = locks.get(key)
        if entry is None:
            entry = locks[key] = (asyncio.Lock(), [0])
        lock, users = entry
        users[0] += 1
        try:
            async with lock:
                yield
        finally:
            users[0] -= 1
            if users[0] == 0 and locks.get(key) is entry:
                del locks[key]

    def _checkpoints(self) -> CheckpointBatcher:
        core = self._core
        if core.checkpoints is None:
            core.checkpoints = CheckpointBatcher(
                core.db, core.store, core.checkpoint_interval, core.spawn
            )
        return core.checkpoints

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
