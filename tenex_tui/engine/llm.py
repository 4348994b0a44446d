"""The model port: what the engine asks of a language model, in the engine's own types.

`LLMAdapter.stream` yields `LLMEvent`s only; vendor types (openai chunks, httpx errors)
never leave the adapter that owns them (`openai_adapter.py`). Failures are raised as
`tenex_tui.core.errors` model errors, with any secret already redacted:

- `ModelNotConfigured`: no provider or model.
- `ModelUnavailable`: the provider could not be reached, or timed out before replying.
- `ModelError`: the provider answered with an error (401, 429 after retries, 5xx, an
  error object mid-stream).
- `StreamBroken`: the reply started and then the connection dropped, stalled past the
  idle timeout, or ended without a finish reason. The engine keeps the partial text and
  marks the message `interrupted`; it never retries a started reply on its own.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from tenex_tui.core.errors import ModelError
from tenex_tui.core.models import Usage


class StreamBroken(ModelError):
    """A started reply ended abnormally; the partial text is kept as `interrupted`."""

    code = "stream_interrupted"
    status = 502


@dataclass(frozen=True)
class ToolCallRequest:
    """A tool call as sent back to the model in the history."""

    id: str
    name: str
    arguments_json: str
    """The arguments exactly as the model produced them (JSON text)."""


@dataclass(frozen=True)
class ChatTurn:
    """One message of the prompt, provider-neutral."""

    role: Literal["system", "user", "assistant", "tool"]
    content: str
    tool_calls: tuple[ToolCallRequest, ...] = ()
    """For assistant turns that asked for tools."""
    tool_call_id: str | None = None
    """For tool turns: which call this is the result of."""


@dataclass(frozen=True)
class ToolSpec:
    """A tool offered to the model (OpenAI function-calling shape)."""

    name: str
    description: str
    parameters: dict[str, Any] = field(default_factory=dict)
    """A JSON Schema object for the arguments."""


@dataclass(frozen=True)
class TextDelta:
    """Some reply text."""

    text: str


@dataclass(frozen=True)
class ToolCallProgress:
    """A tool call being assembled, so a UI can show it while it streams.

    Emitted when a call first appears (id and name known) and as its arguments grow.
    """

    index: int
    id: str
    name: str
    arguments_so_far: str


@dataclass(frozen=True)
class AssembledToolCall:
    """A finished tool call, after the model's finish reason."""

    index: int
    id: str
    name: str
    arguments_json: str
    """The concatenated argument text."""
    arguments: dict[str, Any] | None
    """The parsed JSON object, or None when the text is not a JSON object."""
    parse_error: str | None = None
    """Why `arguments` is None, in a sentence."""


@dataclass(frozen=True)
class Finished:
    """The model finished the reply."""

    finish_reason: str
    """`stop`, `length`, `tool_calls`, `content_filter`, or a server's own value."""
    usage: Usage | None = None
    tool_calls: tuple[AssembledToolCall, ...] = ()


LLMEvent = TextDelta | ToolCallProgress | Finished
"""What `LLMAdapter.stream` yields."""


class LLMAdapter(Protocol):
    """A chat model reachable through some provider."""

    @property
    def default_model(self) -> str | None:
        """The model used when a thread names none (None: ask the provider's list)."""
        ...

    def stream(
        self,
        turns: Sequence[ChatTurn],
        *,
        model: str,
        tools: Sequence[ToolSpec] = (),
    ) -> AsyncIterator[LLMEvent]:
        """Stream one reply.

        Closing the iterator (or cancelling the task iterating it) closes the HTTP
        stream, so the server stops generating.

        Yields:
            Text deltas and tool-call progress, then exactly one `Finished`.

        Raises:
            ModelUnavailable, ModelError, StreamBroken: see the module docstring.
        """
        ...

    async def list_models(self) -> list[str]:
        """The model ids the provider lists.

        Raises:
            ModelUnavailable: When the provider cannot be reached.
            ModelError: When it answers with an error.
        """
        ...

    async def warm(self) -> None:
        """Do the slow one-time work (importing the SDK, building the client) now.

        The app calls this in the background after its first frame, so the first send
        does not pay for it (Elia pays 3.8 s there).
        """
        ...

    async def aclose(self) -> None:
        """Close connections."""
        ...
