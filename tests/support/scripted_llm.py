"""A scripted fake `LLMAdapter` (in the style of llm's `MockModel`), for engine and UI tests.

Queue replies with `enqueue(...)`; each call to `stream()` takes the next one and records
the turns it was called with. A reply is a list of chunks (text, or `ToolFragment`s that
are assembled per index the way the real adapter does), then one `Finished` with usage.
Faults and timing are scripted, never slept for:

- `error=..., error_at=N` raises the error before chunk N (`error_at=None`: at once);
- `hold_at=(N, …)` pauses the stream before chunk N until the test calls `release(N)`;
  `await reply.held(N).wait()` waits until the stream got there, so a test can cancel,
  back up or read the store mid-reply;
- `finish=False` ends the stream without a `Finished` (a server that just stops).

`reply.closed` tells whether the engine closed the stream before its end (a cancel, a
cut reply), which is how the real adapter stops the server generating.

    llm = ScriptedLLM()
    reply = llm.enqueue("Hello", ", world", hold_at=(1,))
    ...
    await reply.held(1).wait()
    reply.release(1)
"""

from __future__ import annotations

import asyncio
import json
from collections import deque
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field

from tenex_tui.core.errors import ModelError
from tenex_tui.core.models import Usage
from tenex_tui.engine.llm import (
    AssembledToolCall,
    ChatTurn,
    Finished,
    LLMEvent,
    TextDelta,
    ToolCallProgress,
    ToolSpec,
)


@dataclass(frozen=True)
class ToolFragment:
    """A piece of a tool call, as a streaming server sends it."""

    index: int
    id: str = ""
    name: str = ""
    arguments: str = ""


Chunk = str | ToolFragment


@dataclass
class ScriptedReply:
    """One scripted reply and what happened to it."""

    chunks: list[Chunk]
    finish_reason: str = "stop"
    usage: Usage | None = None
    error: BaseException | None = None
    error_at: int | None = None
    hold_at: tuple[int, ...] = ()
    finish: bool = True
    yielded: int = 0
    """Chunks handed to the engine so far."""
    started: bool = False
    completed: bool = False
    """True when the stream reached its end (Finished yielded, or the scripted error)."""
    closed: bool = False
    """True when the consumer closed the stream before its end."""
    _holds: dict[int, tuple[asyncio.Event, asyncio.Event]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for index in self.hold_at:
            self._holds[index] = (asyncio.Event(), asyncio.Event())

    @property
    def text(self) -> str:
        """All the text chunks joined: what a complete reply stores."""
        return "".join(c for c in self.chunks if isinstance(c, str))

    def held(self, index: int) -> asyncio.Event:
        """Set when the stream is paused before chunk `index`."""
        return self._holds[index][0]

    def release(self, index: int) -> None:
        """Let the stream go on past chunk `index`."""
        self._holds[index][1].set()


@dataclass(frozen=True)
class ScriptedCall:
    """One call of `stream`."""

    turns: tuple[ChatTurn, ...]
    model: str
    tools: tuple[ToolSpec, ...]


class ScriptedLLM:
    """An `LLMAdapter` that plays queued replies."""

    def __init__(
        self,
        *,
        default_model: str | None = "scripted-1",
        models: Sequence[str] = ("scripted-1", "scripted-2"),
        list_error: BaseException | None = None,
    ) -> None:
        self._default_model = default_model
        self.models = list(models)
        self.list_error = list_error
        self.replies: deque[ScriptedReply] = deque()
        self.played: list[ScriptedReply] = []
        self.calls: list[ScriptedCall] = []
        self.warm_calls = 0
        self.closed = False

    @property
    def default_model(self) -> str | None:
        """The model used when a thread names none."""
        return self._default_model

    def enqueue(
        self,
        *chunks: Chunk,
        finish_reason: str = "stop",
        usage: Usage | None = None,
        error: BaseException | None = None,
        error_at: int | None = None,
        hold_at: Sequence[int] = (),
        finish: bool = True,
    ) -> ScriptedReply:
        """Queue the next reply.

        Args:
            chunks: Text pieces and tool-call fragments, in order.
            finish_reason: The reason in the final `Finished`.
            usage: Token counts (default: 3 prompt tokens, one per chunk).
            error: An exception to raise mid-stream.
            error_at: Raise `error` before this chunk (None: before the first).
            hold_at: Chunk indexes to pause before until `release(index)`.
            finish: False to end without a `Finished` (a stream that just stops).

        Returns:
            The reply, to inspect or to drive its holds.
        """
        reply = ScriptedReply(
            chunks=list(chunks),
            finish_reason=finish_reason,
            usage=usage
            if usage is not None
            else Usage(prompt_tokens=3, completion_tokens=len(chunks)),
            error=error,
            error_at=error_at,
            hold_at=tuple(hold_at),
            finish=finish,
        )
        self.replies.append(reply)
        return reply

    def stream(
        self,
        turns: Sequence[ChatTurn],
        *,
        model: str,
        tools: Sequence[ToolSpec] = (),
    ) -> AsyncIterator[LLMEvent]:
        """Play the next queued reply (raises `ModelError` when none is queued)."""
        self.calls.append(ScriptedCall(tuple(turns), model, tuple(tools)))
        reply = self.replies.popleft() if self.replies else None
        if reply is not None:
            self.played.append(reply)
        return self._play(reply)

    async def _play(self, reply: ScriptedReply | None) -> AsyncIterator[LLMEvent]:
        if reply is None:
            raise ModelError("no scripted reply queued")
        reply.started = True
        calls: dict[int, list[str]] = {}
        try:
            for index, chunk in enumerate(reply.chunks):
                if index in reply._holds:
                    reached, go = reply._holds[index]
                    reached.set()
                    await go.wait()
                if reply.error is not None and reply.error_at in (None, index):
                    reply.completed = True
                    raise reply.error
                # Give other tasks (the engine's checkpoints) a turn, as a socket would.
                await asyncio.sleep(0)
                reply.yielded += 1
                if isinstance(chunk, str):
                    yield TextDelta(chunk)
                    continue
                parts = calls.setdefault(chunk.index, [chunk.id, chunk.name, ""])
                # id and name are set once (servers that repeat them are not appended).
                parts[0] = parts[0] or chunk.id
                parts[1] = parts[1] or chunk.name
                parts[2] += chunk.arguments
                yield ToolCallProgress(chunk.index, parts[0], parts[1], parts[2])
            end = len(reply.chunks)
            if end in reply._holds:
                reached, go = reply._holds[end]
                reached.set()
                await go.wait()
            if reply.error is not None and reply.error_at in (None, end):
                reply.completed = True
                raise reply.error
            reply.completed = True
            if not reply.finish:
                return
            yield Finished(
                finish_reason="tool_calls" if calls else reply.finish_reason,
                usage=reply.usage,
                tool_calls=tuple(_assemble(i, p) for i, p in sorted(calls.items())),
            )
        finally:
            if not reply.completed:
                reply.closed = True

    async def list_models(self) -> list[str]:
        """The scripted model list (or the scripted error)."""
        if self.list_error is not None:
            raise self.list_error
        return list(self.models)

    async def warm(self) -> None:
        """Count warm-ups."""
        self.warm_calls += 1

    async def aclose(self) -> None:
        """Remember that the engine closed the adapter."""
        self.closed = True


def _assemble(index: int, parts: list[str]) -> AssembledToolCall:
    call_id, name, text = parts
    try:
        parsed = json.loads(text) if text else {}
    except ValueError as exc:
        return AssembledToolCall(
            index, call_id, name, text, None, f"invalid JSON: {exc}"
        )
    if not isinstance(parsed, dict):
        return AssembledToolCall(
            index, call_id, name, text, None, "the arguments are not a JSON object"
        )
    return AssembledToolCall(index, call_id, name, text, parsed)
