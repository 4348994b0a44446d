"""Warming the openai SDK off the event loop, so the first send does not import on it.

The adapter builds its client in a worker thread (`OpenAICompatibleAdapter.warm`) and
calls `preload` there: whatever the SDK would import or resolve lazily during the first
request is done then, while the user is still reading the thread list.
"""

from __future__ import annotations

import contextlib
import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from openai import AsyncOpenAI

_SAMPLE_BODY: dict[str, Any] = {
    "model": "m",
    "stream": True,
    "stream_options": {"include_usage": True},
    "messages": [
        {"role": "system", "content": "s"},
        {"role": "user", "content": "u"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "c",
                    "type": "function",
                    "function": {"name": "f", "arguments": "{}"},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "c", "content": "r"},
    ],
    "tools": [
        {
            "type": "function",
            "function": {
                "name": "f",
                "description": "d",
                "parameters": {"type": "object"},
            },
        }
    ],
}
"""A request body of every shape the adapter sends, to warm the SDK's caches."""


def preload(client: AsyncOpenAI) -> None:
    """Import, off the event loop, what the first request would import on it.

    The SDK builds `client.chat` (importing every chat resource module) on first
    access, and anyio loads its asyncio backend when the first connection opens:
    ~0.25 s of imports that would otherwise land on the loop inside the first send
    (measured by the benchmarks' "first message after start-up"). Best effort: a
    module that moved in a later SDK is simply imported when it is first used.
    """
    with contextlib.suppress(Exception):
        # Touching the property chain builds (and caches) the resource objects.
        _ = client.chat.completions.with_streaming_response.create
        _ = client.models.list
    with contextlib.suppress(Exception):
        # The SDK rewrites every request body against its TypedDicts; the first time
        # it resolves their type hints (~20 ms, cached after). Do that here.
        from openai._utils import maybe_transform
        from openai.types.chat import completion_create_params

        maybe_transform(_SAMPLE_BODY, completion_create_params.CompletionCreateParams)
    for name in (
        "anyio._backends._asyncio",
        "anyio.streams.memory",
        "anyio.streams.stapled",
        "jiter",
        "httpcore2._async.http11",
        "httpcore2._backends.anyio",
    ):
        with contextlib.suppress(ImportError):
            importlib.import_module(name)
