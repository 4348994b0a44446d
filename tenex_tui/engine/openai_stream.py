"""Reading an OpenAI-compatible chat stream: SSE decoding and reply assembly.

Pure code with no SDK or network, used by `openai_adapter.py`: `SSEDecoder` turns raw
body bytes into `(event, data)` pairs, linear in size and tolerant of invalid UTF-8 and
of servers that omit the blank line between events; `ReplyAssembler` turns decoded
chunk objects into `LLMEvent`s and the final `Finished`, assembling tool-call fragments
per index (id and name set once, arguments concatenated, JSON parsed at the end);
`StallWatch` is the idle timeout of a body being read.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, cast

from tenex_tui.core.models import Usage
from tenex_tui.engine.llm import (
    AssembledToolCall,
    Finished,
    LLMEvent,
    TextDelta,
    ToolCallProgress,
)

log = logging.getLogger(__name__)

JSON = json.JSONDecoder(strict=False)
"""Lenient about raw control characters (NUL) inside strings; the sanitiser handles them."""
LOG_PAYLOAD = 200
"""Characters of a skipped or unexpected payload kept in logs and messages."""


class SSEDecoder:
    """Server-sent events from raw bytes: `(event name, data)` pairs, linear in size."""

    def __init__(self) -> None:
        self._partial: list[bytes] = []
        self._data: list[str] = []
        self._event = ""

    def feed(self, data: bytes) -> list[tuple[str, str]]:
        lines = data.split(b"\n")
        if len(lines) == 1:
            # No line end yet (a large delta arriving in pieces): keep it without copying.
            self._partial.append(data)
            return []
        if self._partial:
            lines[0] = b"".join([*self._partial, lines[0]])
            self._partial = []
        if lines[-1]:
            self._partial.append(lines[-1])
        events: list[tuple[str, str]] = []
        for line in lines[:-1]:
            self._line(line, events)
        return events

    def close(self) -> list[tuple[str, str]]:
        """Events left when the body ends without a final blank line."""
        events: list[tuple[str, str]] = []
        if self._partial:
            self._line(b"".join(self._partial), events)
            self._partial = []
        self._line(b"", events)
        return events

    def _line(self, line: bytes, events: list[tuple[str, str]]) -> None:
        if line.endswith(b"\r"):
            line = line[:-1]
        if not line:
            if self._data:
                data = "\n".join(self._data)
                if len(self._data) > 1 and _splits_into_objects(self._data):
                    # Servers that put one JSON object per `data:` line, no blank lines.
                    events.extend((self._event, part) for part in self._data)
                else:
                    events.append((self._event, data))
            self._data = []
            self._event = ""
        elif line.startswith(b"data:"):
            value = line[6:] if line.startswith(b"data: ") else line[5:]
            self._data.append(_text(value))
        elif line.startswith(b"event:"):
            self._event = _text(line[6:]).strip()
        # Comments (`: ping`), `id:` and `retry:` carry nothing for a chat reply.


def _splits_into_objects(lines: list[str]) -> bool:
    return all(line.startswith(("{", "[DONE]")) for line in lines)


def _text(value: bytes) -> str:
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError:
        log.warning("the model sent invalid UTF-8; replaced with U+FFFD")
        return value.decode("utf-8", "replace")


@dataclass
class _CallParts:
    id: str = ""
    name: str = ""
    arguments: str = ""
    announced: bool = False


@dataclass
class ReplyAssembler:
    """Accumulates one reply's chunks (choice 0 only) into events and a `Finished`."""

    calls: dict[int, _CallParts] = field(default_factory=dict)
    finish_reason: str | None = None
    usage: Usage | None = None
    has_output: bool = False
    _saw_tool_calls: bool = False

    def feed_text(self, chunk: Mapping[str, Any]) -> str | None:
        """The text of a plain text chunk, the common case, taken in one step.

        A chunk with exactly one choice (index 0, no finish reason) whose delta holds
        only `content` (and perhaps `role`), and no usage, adds its text and nothing
        else. Any other chunk returns None, untouched: give it to `feed`. This skips
        `feed`'s generator and checks for the thousands of text chunks of a reply.
        """
        choices = chunk.get("choices")
        if type(choices) is not list or len(choices) != 1 or chunk.get("usage"):
            return None
        choice = choices[0]
        if type(choice) is not dict or choice.get("finish_reason"):
            return None
        delta = choice.get("delta")
        if type(delta) is not dict or choice.get("index", 0) != 0:
            return None
        content = delta.get("content")
        if type(content) is not str or len(delta) > 2:
            return None
        if len(delta) == 2 and "role" not in delta:
            return None
        if content:
            self.has_output = True
        return content

    def feed(self, chunk: Mapping[str, Any]) -> Iterator[LLMEvent]:
        usage = chunk.get("usage")
        if isinstance(usage, dict):
            self.usage = Usage(
                prompt_tokens=_int(usage.get("prompt_tokens")),
                completion_tokens=_int(usage.get("completion_tokens")),
            )
        choices = chunk.get("choices")
        if not isinstance(choices, list):
            return
        for choice in choices:
            if not isinstance(choice, dict) or choice.get("index", 0) != 0:
                continue
            delta = choice.get("delta")
            if isinstance(delta, dict):
                yield from self._delta(delta)
            reason = choice.get("finish_reason")
            if isinstance(reason, str) and reason:
                self.finish_reason = reason

    def _delta(self, delta: Mapping[str, Any]) -> Iterator[LLMEvent]:
        content = delta.get("content")
        if isinstance(content, str) and content:
            self.has_output = True
            yield TextDelta(content)
        tool_calls = delta.get("tool_calls")
        if isinstance(tool_calls, list) and tool_calls:
            self._saw_tool_calls = True
            for position, call in enumerate(tool_calls):
                if isinstance(call, dict):
                    yield from self._fragment(self._index(call, position), call)
        elif not self._saw_tool_calls and isinstance(delta.get("function_call"), dict):
            # The legacy single function call: it is tool call 0. Servers that send it
            # beside `tool_calls` are read from `tool_calls` only.
            yield from self._fragment(0, {"function": delta["function_call"]})

    def _index(self, call: Mapping[str, Any], position: int) -> int:
        index = call.get("index")
        if isinstance(index, int) and not isinstance(index, bool):
            return index
        # Some servers (Gemini's compatibility layer) omit `index`: a fragment with an
        # id is that call (or a new one), one without continues the latest call.
        call_id = call.get("id")
        if call_id:
            for known, parts in self.calls.items():
                if parts.id == call_id:
                    return known
            return max(self.calls) + 1 if self.calls else 0
        return max(self.calls) if self.calls else position

    def _fragment(self, index: int, call: Mapping[str, Any]) -> Iterator[LLMEvent]:
        parts = self.calls.setdefault(index, _CallParts())
        self.has_output = True
        call_id = call.get("id")
        if isinstance(call_id, str) and call_id and not parts.id:
            parts.id = (
                call_id  # Set once: some servers repeat the id in every fragment.
            )
        function = call.get("function")
        if not isinstance(function, dict):
            function = {}
        name = function.get("name")
        if isinstance(name, str) and name and not parts.name:
            parts.name = name  # Set once, or repeats give `get_weatherget_weather`.
        arguments = function.get("arguments")
        if isinstance(arguments, dict) and not parts.arguments:
            arguments = json.dumps(arguments)  # Some servers send the object itself.
        grew = isinstance(arguments, str) and bool(arguments)
        if grew:
            parts.arguments += cast(str, arguments)
        if parts.name and (grew or not parts.announced):
            parts.announced = True
            yield ToolCallProgress(
                index=index,
                id=parts.id or f"call_{index}",
                name=parts.name,
                arguments_so_far=parts.arguments,
            )

    def finished(self) -> Finished:
        calls = tuple(_assemble(i, parts) for i, parts in sorted(self.calls.items()))
        reason = self.finish_reason or ("tool_calls" if calls else "stop")
        # Legacy servers say `function_call`, and some (older Ollama) say `stop` beside
        # finished tool calls: both ask for tools. `length` and others pass through.
        if reason == "function_call" or (reason == "stop" and calls):
            reason = "tool_calls"
        return Finished(finish_reason=reason, usage=self.usage, tool_calls=calls)


def _assemble(index: int, parts: _CallParts) -> AssembledToolCall:
    text = parts.arguments
    arguments: dict[str, Any] | None = None
    error: str | None = None
    if not text.strip():
        arguments = {}  # Servers send "" for a call without arguments.
    else:
        try:
            value = JSON.decode(text)
        except ValueError as exc:
            error = f"the arguments are not valid JSON: {exc}"
        else:
            if isinstance(value, dict):
                arguments = value
            else:
                error = (
                    f"the arguments are a JSON {type(value).__name__}, not an object"
                )
    return AssembledToolCall(
        index=index,
        id=parts.id or f"call_{index}",
        name=parts.name,
        arguments_json=text,
        arguments=arguments,
        parse_error=error,
    )


def _int(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def error_detail(error: object) -> str:
    if isinstance(error, dict):
        for key in ("message", "detail", "error"):
            value = error.get(key)
            if isinstance(value, str) and value:
                return value
            if isinstance(value, dict):
                return error_detail(value)
        return json.dumps(error)[:LOG_PAYLOAD]
    return str(error)[:LOG_PAYLOAD] if error else ""


class StallWatch:
    """The idle timeout of a streamed body, without a timer per read.

    `asyncio.timeout` around every read schedules and cancels a timer handle per
    chunk, thousands per second on a busy server. This arms one timer per idle
    period instead: when it fires it checks whether the current wait really has
    lasted `seconds`, and re-arms for the remainder otherwise. Only a wait that did
    last that long cancels the task, and `timed_out()` tells that cancel apart from
    any other (the same bookkeeping as `asyncio.Timeout`).
    """

    def __init__(self, seconds: float) -> None:
        self._loop = asyncio.get_running_loop()
        task = asyncio.current_task()
        assert task is not None
        self._task = task
        self._cancelling = task.cancelling()
        self._seconds = seconds
        self._since = self._loop.time()
        self._waiting = False
        self._expired = False
        self._handle: asyncio.TimerHandle | None = self._loop.call_at(
            self._since + seconds, self._fire
        )

    def waiting(self) -> None:
        """A read starts now (in the task that will be cancelled if it stalls)."""
        task = asyncio.current_task()
        if task is not self._task and task is not None:
            self._task, self._cancelling = task, task.cancelling()
        self._since = self._loop.time()
        self._waiting = True

    def idle(self) -> None:
        """The read ended (data, end of body or error)."""
        self._waiting = False

    def timed_out(self) -> bool:
        """Whether the CancelledError being handled is this watch's (uncancels it)."""
        if not self._expired:
            return False
        self._expired = False
        return self._task.uncancel() <= self._cancelling

    def close(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None

    def _fire(self) -> None:
        now = self._loop.time()
        due = self._since + self._seconds
        if not self._waiting or now < due:
            # Still inside the idle period (or between reads): look again later.
            later = due if self._waiting else now + self._seconds
            self._handle = self._loop.call_at(later, self._fire)
            return
        self._handle = None
        self._expired = True
        self._task.cancel()
