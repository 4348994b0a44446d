"""The tool loop: run the calls of one model round and build the turns that continue it.

A reply is one or more *rounds*. Each round streams the model; when it finishes with
`finish_reason="tool_calls"`, the engine (`replies.LiveReply`) hands that round's
envelopes to `run_round`, appends `continuation(...)` to the conversation (the
assistant turn that asked, then one tool turn per call) and streams the model again,
until a round ends without calls or `ToolSession.max_rounds` rounds have run. All
rounds write into the same assistant message: its text, and its envelopes in the
order the model asked for them.

Every envelope goes `requested → running → completed | failed`, and each change is
handed to `update` (which records it on the message and streams a `message.tool_call`
event). What never runs (T20, T53):

- a call whose arguments were not a JSON object, or were cut off by a broken stream
  (already `failed` when it gets here);
- a call to an unknown tool, or to a tool the thread's agent does not allow;
- a call whose arguments break the tool's schema;
- calls past `max_calls_per_round` in one round, or asked for after the last round.

Such a call gets a `failed` envelope with a sentence saying why, and the model is told
that sentence as the call's result, so it can correct itself; nothing else happens.
The calls of a round that may run run concurrently, each under its tool's timeout.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from tenex_tui.core.models import ToolCall, Usage
from tenex_tui.engine.clock import Clock
from tenex_tui.engine.llm import ChatTurn, ToolSpec
from tenex_tui.engine.prompt import tool_message, tool_request
from tenex_tui.engine.tools import (
    Tool,
    ToolContext,
    ToolFailed,
    ToolRefused,
    ToolRegistry,
)

MAX_TOOL_ROUNDS = 5
"""Rounds of tool calls one reply may run; the model's next request is refused."""
MAX_CALLS_PER_ROUND = 8
"""Calls one round may run; the rest are refused."""

Update = Callable[[ToolCall], None]
"""Records a changed envelope (on the message, and as a stream event)."""


def add_usage(total: Usage | None, more: Usage | None) -> Usage | None:
    """The token counts of a reply so far plus one more round's.

    A reply with tool rounds is billed for every round, so its usage is the sum.
    """
    if more is None:
        return total
    if total is None:
        return more
    return Usage(
        prompt_tokens=_sum(total.prompt_tokens, more.prompt_tokens),
        completion_tokens=_sum(total.completion_tokens, more.completion_tokens),
    )


def _sum(a: int | None, b: int | None) -> int | None:
    if a is None:
        return b
    if b is None:
        return a
    return a + b


def round_cap_error(rounds: int) -> str:
    """Why the calls asked for after the last allowed round were not run."""
    return (
        f"Not run: this reply already used its {rounds} rounds of tool calls; "
        "answer with what you have."
    )


def round_cap_note(rounds: int) -> str:
    """The note a reply ends with when the model asked for tools too many times."""
    return (
        f"[Stopped: the model asked for tools again after {rounds} rounds of tool "
        "calls, the limit for one reply. Ask a follow-up question to continue.]"
    )


def unfinished_error(finish_reason: str) -> str:
    """Why calls of a round that did not end with `tool_calls` were not run."""
    return (
        f"Not run: the model stopped (finish reason {finish_reason!r}) before "
        "finishing its tool calls."
    )


@dataclass(frozen=True)
class ToolSession:
    """The tools of one reply: what may run, against which workspace, how often."""

    registry: ToolRegistry
    allowed: frozenset[str]
    """The tool names the thread's agent allows."""
    context: ToolContext
    """The caller's scope, which the tools read."""
    clock: Clock
    max_rounds: int = MAX_TOOL_ROUNDS
    max_calls_per_round: int = MAX_CALLS_PER_ROUND

    @property
    def specs(self) -> tuple[ToolSpec, ...]:
        """The tools offered to the model."""
        return self.registry.specs(self.allowed)

    def failed(self, call: ToolCall, error: str) -> ToolCall:
        """The call, failed with this sentence and stamped now."""
        return call.model_copy(
            update={
                "status": "failed",
                "error": error,
                "completed_at": self.clock.now(),
            }
        )


def refuse(
    session: ToolSession, calls: Sequence[ToolCall], error: str, update: Update
) -> list[ToolCall]:
    """Fail every call that is not failed yet, without running any.

    Returns:
        The round's envelopes in order.
    """
    final = []
    for call in calls:
        if call.status != "failed":
            call = session.failed(call, error)
            update(call)
        final.append(call)
    return final


async def run_round(
    session: ToolSession, calls: Sequence[ToolCall], update: Update
) -> list[ToolCall]:
    """Check and run the calls of one round.

    Args:
        session: The reply's tools.
        calls: The round's envelopes, in the order the model asked for them
            (`requested`, or already `failed` when their arguments were unusable).
        update: Called with every changed envelope, in order of change.

    Returns:
        The round's envelopes in order, each `completed` or `failed`.
    """
    final = list(calls)
    runnable: list[tuple[int, ToolCall, Tool]] = []
    for position, call in enumerate(calls):
        if call.status == "failed":
            continue
        if position >= session.max_calls_per_round:
            final[position] = session.failed(
                call,
                f"Not run: at most {session.max_calls_per_round} tool calls can run "
                "in one round.",
            )
            update(final[position])
            continue
        try:
            tool = session.registry.check(call.name, call.arguments, session.allowed)
        except ToolRefused as exc:
            final[position] = session.failed(call, exc.message)
            update(final[position])
            continue
        running = call.model_copy(
            update={"status": "running", "started_at": session.clock.now()}
        )
        final[position] = running
        update(running)
        runnable.append((position, running, tool))

    async def run_one(position: int, running: ToolCall, tool: Tool) -> None:
        try:
            result = await session.registry.run(
                tool, session.context, running.arguments
            )
        except ToolFailed as exc:
            done = session.failed(running, exc.message)
        else:
            done = running.model_copy(
                update={
                    "status": "completed",
                    "result": result,
                    "completed_at": session.clock.now(),
                }
            )
        final[position] = done
        update(done)

    await asyncio.gather(*(run_one(*item) for item in runnable))
    return final


def continuation(text: str, calls: Sequence[ToolCall]) -> list[ChatTurn]:
    """The turns that give a round's results back to the model.

    Args:
        text: What the model wrote in the round, before asking for the tools.
        calls: The round's envelopes, each `completed` or `failed`.

    Returns:
        The assistant turn with the calls, then one tool turn per call.
    """
    turns = [
        ChatTurn(
            role="assistant",
            content=text,
            tool_calls=tuple(tool_request(call) for call in calls),
        )
    ]
    turns += [
        ChatTurn(role="tool", content=tool_message(call), tool_call_id=call.id)
        for call in calls
    ]
    return turns
