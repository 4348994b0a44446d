"""The tool-call envelopes of one live reply: their ids, their states, their changes.

A reply may span several model rounds (`tool_loop`), and each round numbers its calls
from 0. Envelopes are kept by *key*: the round's call index plus the round's base, so
every round's call 0 gets its own envelope. Every change is published at once (as a
`message.tool_call` event, by the reply) and marks the set dirty, so the next
checkpoint writes the envelopes with the text.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime

from tenex_tui.core.models import ToolCall
from tenex_tui.engine.llm import AssembledToolCall, ToolCallProgress
from tenex_tui.engine.store_base import dumps

TOOL_CUT = "The tool call was cut off before it finished; it was not run."
TOOL_STOPPED = "The reply stopped while the tool was running."
TOOL_NOT_RUN = "The reply ended before the tool could run."
NOT_AN_OBJECT = "The tool call's arguments are not a JSON object."

Clock = Callable[[], datetime]


class ReplyCalls:
    """The envelopes of one reply, in the order the model asked for them.

    Args:
        initial: The envelopes already stored (a continued reply keeps its calls).
        publish: Called with every changed envelope (the reply emits the event).
    """

    def __init__(
        self, initial: Sequence[ToolCall], publish: Callable[[ToolCall], None]
    ) -> None:
        self._calls: dict[int, ToolCall] = dict(enumerate(initial))
        self._keys: dict[str, int] = {c.id: k for k, c in self._calls.items()}
        self._round_base = len(self._calls)
        self._publish = publish
        self.dirty = False
        """True when an envelope changed since the last `take_json`."""

    def set(self, call: ToolCall) -> None:
        """Replace an envelope (by its id) and publish the change."""
        self._calls[self._keys[call.id]] = call
        self.dirty = True
        self._publish(call)

    def take_json(self) -> str | None:
        """The envelopes as stored JSON if they changed (None otherwise); clean after."""
        if not self.dirty:
            return None
        self.dirty = False
        return dumps([c.model_dump(mode="json") for c in self._calls.values()])

    def _call_id(self, key: int, wanted: str) -> str:
        # Ids are fixed at first sight, and unique in the message: servers that number
        # calls per round send "call_0" in every round, and the UI, the stored
        # envelopes and the tool turns all need one id per call.
        candidate = wanted or f"call_{key}"
        suffix = 0
        while candidate in self._keys and self._keys[candidate] != key:
            suffix += 1
            candidate = f"{wanted or 'call'}_{key}_{suffix}"
        self._keys[candidate] = key
        return candidate

    def progress(self, item: ToolCallProgress) -> None:
        """A call's arguments grew: a new envelope (`requested`) on first sight, then
        the raw arguments kept up to date without an event per fragment."""
        key = self._round_base + item.index
        known = self._calls.get(key)
        if known is not None:
            self._calls[key] = known.model_copy(
                update={"raw_arguments": item.arguments_so_far}
            )
            self.dirty = True
            return
        self.set(
            ToolCall(
                id=self._call_id(key, item.id),
                name=item.name,
                status="requested",
                raw_arguments=item.arguments_so_far,
            )
        )

    def finished(
        self, calls: Sequence[AssembledToolCall], now: Clock | None
    ) -> list[ToolCall]:
        """Record a round's finished calls; returns their envelopes in order.

        A call whose arguments are not a JSON object is `failed` at once, with the
        reason (the model is told about it; it never crashes the stream).
        """
        finished: list[ToolCall] = []
        for item in calls:
            key = self._round_base + item.index
            known = self._calls.get(key)
            call_id = known.id if known is not None else self._call_id(key, item.id)
            if item.arguments is not None:
                call = ToolCall(id=call_id, name=item.name, arguments=item.arguments)
            else:
                call = ToolCall(
                    id=call_id,
                    name=item.name,
                    status="failed",
                    error=item.parse_error or NOT_AN_OBJECT,
                    raw_arguments=item.arguments_json,
                    completed_at=now() if now is not None else None,
                )
            self.set(call)
            finished.append(call)
        self._round_base = max(self._calls, default=-1) + 1
        return finished

    def close_open(self, now: Clock | None) -> None:
        """The reply ended without finishing: no call is left runnable. A call whose
        arguments never got their finish reason is incomplete (T20)."""
        for call in list(self._calls.values()):
            if call.status in ("completed", "failed"):
                continue
            if call.status == "running":
                error = TOOL_STOPPED
            elif call.arguments == {} and call.raw_arguments is not None:
                error = TOOL_CUT
            else:
                error = TOOL_NOT_RUN
            update: dict[str, object] = {"status": "failed", "error": error}
            if now is not None:
                update["completed_at"] = now()
            self.set(call.model_copy(update=update))
