"""The chat completions wire shapes of our prompt turns and tools (OpenAI's format,
which every OpenAI-compatible server reads)."""

from __future__ import annotations

from typing import Any

from tenex_tui.engine.llm import ChatTurn, ToolSpec


def wire_message(turn: ChatTurn) -> dict[str, Any]:
    """A prompt turn as a chat completions message.

    Raises:
        ValueError: When a tool turn has no `tool_call_id`.
    """
    if turn.role == "tool":
        if not turn.tool_call_id:
            raise ValueError("a tool turn needs the tool_call_id it answers")
        return {
            "role": "tool",
            "tool_call_id": turn.tool_call_id,
            "content": turn.content,
        }
    if turn.role == "assistant" and turn.tool_calls:
        return {
            "role": "assistant",
            # OpenAI documents null content beside tool calls; "" confuses some servers.
            "content": turn.content or None,
            "tool_calls": [
                {
                    "id": call.id,
                    "type": "function",
                    "function": {"name": call.name, "arguments": call.arguments_json},
                }
                for call in turn.tool_calls
            ],
        }
    return {"role": turn.role, "content": turn.content}


def wire_tool(spec: ToolSpec) -> dict[str, Any]:
    """A tool as a chat completions `tools` entry."""
    # Strict servers reject a missing schema; an empty object schema means "no arguments".
    parameters = spec.parameters or {"type": "object", "properties": {}}
    return {
        "type": "function",
        "function": {
            "name": spec.name,
            "description": spec.description,
            "parameters": parameters,
        },
    }
