"""Building the prompt (a list of `ChatTurn`s) from a thread's stored history.

Rules (DESIGN.md §4, test-plan T53):

- The thread's system prompt comes first.
- Then the history of finished messages, oldest first: an `error` reply with no text is
  skipped (it carries nothing the model said), but the partial text of a `stopped` or
  `interrupted` reply is kept, because the user saw it and may refer to it.
- Attachments are data, not instructions: each is rendered after the user's text as a
  clearly delimited block, `<attachment name="…" type="…">…</attachment>`, with hidden
  characters (Unicode tags, the "ASCII smuggling" carriers) stripped and any closing
  tag inside the text defused, so a file cannot end its own block early.
- The oldest messages are dropped when the history exceeds a character budget; the
  newest user message is always kept.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field

from tenex_tui.core.models import ToolCall
from tenex_tui.core.text import strip_hidden
from tenex_tui.engine.llm import ChatTurn, ToolCallRequest

DEFAULT_HISTORY_CHARS = 400_000
"""Characters of history sent at most (roughly 100k tokens); older turns are dropped."""


@dataclass(frozen=True)
class AttachmentText:
    """The extracted text of an attachment, as stored for the prompt."""

    name: str
    text: str
    kind: str = "file"
    media_type: str = "text/plain"
    truncated: bool = False


@dataclass(frozen=True)
class HistoryItem:
    """One stored message, as the prompt builder needs it."""

    role: str
    content: str
    status: str = "complete"
    attachments: tuple[AttachmentText, ...] = ()
    tool_calls: tuple[ToolCall, ...] = field(default=())


def _attribute(value: str) -> str:
    return (
        value.replace("&", "&amp;")
        .replace('"', "&quot;")
        .replace("<", "&lt;")
        .replace(">", "&gt;")
        .replace("\n", " ")
    )


def render_attachment(attachment: AttachmentText) -> str:
    """One attachment as a delimited data block.

    Returns:
        `<attachment name="…" type="…">` + the text + `</attachment>`.
    """
    text, _removed = strip_hidden(attachment.text)
    # A file that contains "</attachment>" must not close its own block.
    text = text.replace("</attachment", "<\\/attachment")
    marker = "\n[truncated: the file was longer]" if attachment.truncated else ""
    return (
        f'<attachment name="{_attribute(attachment.name)}" '
        f'type="{_attribute(attachment.media_type)}">\n{text}{marker}\n</attachment>'
    )


def _user_content(item: HistoryItem) -> str:
    if not item.attachments:
        return item.content
    blocks = "\n\n".join(render_attachment(a) for a in item.attachments)
    return f"{item.content}\n\n{blocks}" if item.content else blocks


def _assistant_turn(item: HistoryItem) -> ChatTurn | None:
    requests = tuple(
        ToolCallRequest(
            id=call.id,
            name=call.name,
            arguments_json=call.raw_arguments
            if call.raw_arguments is not None
            else json.dumps(call.arguments),
        )
        for call in item.tool_calls
        if call.status in ("completed", "failed") and call.result is not None
    )
    if not item.content and not requests:
        return None
    return ChatTurn(role="assistant", content=item.content, tool_calls=requests)


def _turns_for(item: HistoryItem) -> list[ChatTurn]:
    if item.role == "user":
        return [ChatTurn(role="user", content=_user_content(item))]
    if item.role == "assistant":
        if item.status == "streaming":
            return []
        if item.status == "error" and not item.content:
            return []
        turn = _assistant_turn(item)
        if turn is None:
            return []
        turns = [turn]
        # Results of tools that ran follow the assistant turn that asked for them.
        for request, call in zip(
            turn.tool_calls,
            [c for c in item.tool_calls if c.status in ("completed", "failed")],
            strict=False,
        ):
            result = call.result if call.error is None else f"error: {call.error}"
            text = result if isinstance(result, str) else json.dumps(result)
            turns.append(ChatTurn(role="tool", content=text, tool_call_id=request.id))
        return turns
    if item.role == "system":
        return [ChatTurn(role="system", content=item.content)]
    return []


def build_turns(
    system_prompt: str | None,
    history: Sequence[HistoryItem],
    *,
    max_chars: int = DEFAULT_HISTORY_CHARS,
) -> list[ChatTurn]:
    """The turns to send for a reply.

    Args:
        system_prompt: The thread's system prompt (None or blank: none).
        history: The thread's messages up to the one being answered, oldest first.
        max_chars: Budget for the history; the oldest turns beyond it are dropped.

    Returns:
        The system turn (if any) followed by the history turns.
    """
    groups = [_turns_for(item) for item in history]
    kept: list[list[ChatTurn]] = []
    used = 0
    for group in reversed(groups):
        if not group:
            continue
        size = sum(len(t.content) for t in group)
        if kept and used + size > max_chars:
            break
        kept.append(group)
        used += size
    turns: list[ChatTurn] = []
    if system_prompt and system_prompt.strip():
        turns.append(ChatTurn(role="system", content=system_prompt))
    for group in reversed(kept):
        turns.extend(group)
    return turns
