"""Scripts for the fake LLM server: what one chat-completions request gets back.

A `Script` describes a reply (text chunks, tool-call fragments, usage, finish reason) and
the faults to inject into it. `build_frames` turns it into the exact SSE bytes the
server writes; `completion_body` into the non-streamed `chat.completion` object. See
`tests/support/fake_llm.py` for the server and how chunks are counted.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

CREATED = 1767225600
"""The fixed `created` timestamp of every reply (2026-01-01), for stable snapshots."""


@dataclass(frozen=True)
class Chunk:
    """One scripted SSE event, for anything beyond a plain text delta.

    Exactly one of the fields is normally used: `delta` (wrapped in the usual chunk
    envelope, with `finish_reason`), `body` (a whole chunk object sent verbatim, e.g.
    one without `choices`), or `raw` (bytes written as they are, e.g. an invalid JSON
    line or invalid UTF-8; include the `data: ` prefix and the blank line yourself).
    """

    delta: Mapping[str, Any] | None = None
    finish_reason: str | None = None
    body: Mapping[str, Any] | None = None
    raw: bytes | None = None


def tool_fragment(
    index: int,
    *,
    id: str | None = None,  # noqa: A002 - the wire name
    name: str | None = None,
    arguments: str | None = None,
) -> Chunk:
    """A `delta.tool_calls[index]` fragment; fields left None are omitted from the JSON."""
    call: dict[str, Any] = {"index": index}
    if id is not None:
        call["id"] = id
        call["type"] = "function"
    function: dict[str, Any] = {}
    if name is not None:
        function["name"] = name
    if arguments is not None:
        function["arguments"] = arguments
    if function:
        call["function"] = function
    return Chunk(delta={"tool_calls": [call]})


def function_call_fragment(
    *, name: str | None = None, arguments: str | None = None
) -> Chunk:
    """A legacy `delta.function_call` fragment (pre-tools servers)."""
    function: dict[str, Any] = {}
    if name is not None:
        function["name"] = name
    if arguments is not None:
        function["arguments"] = arguments
    return Chunk(delta={"function_call": function})


def split_words(text: str) -> list[str]:
    """Split text into word-sized chunks that join back to the original text."""
    return re.findall(r"\s*\S+\s*|\s+", text) or ([text] if text else [])


@dataclass(frozen=True)
class Script:
    """What the server does with one chat-completions request.

    Build one with the class methods (`reply`, `text`, `http_error`, `full_speed`,
    `eof_without_finish`) and adjust it with `dataclasses.replace` or keyword args.
    """

    chunks: Sequence[str | Chunk] = ()
    """The reply, in order: a `str` is a content delta, a `Chunk` anything else."""
    finish_reason: str | None = "stop"
    """Sent in its own chunk after `chunks`; None sends no finish chunk."""
    role_chunk: Literal["empty", "no_content", "null_content", "none"] = "empty"
    """The first chunk: `{"role":"assistant","content":""}`, without `content`, with
    `content: null`, or no role chunk at all."""
    usage: Literal["auto", "always", "never"] = "auto"
    """`auto`: a usage chunk when the request asked (`stream_options.include_usage`);
    `never` plays a server that ignores the option."""
    prompt_tokens: int | None = None
    """Reported prompt tokens (None: a count derived from the request's text)."""
    completion_tokens: int | None = None
    """Reported completion tokens (None: the number of scripted chunks)."""
    done: bool = True
    """Send `data: [DONE]` at the end."""
    status: int = 200
    """Any other value answers with an error (`error_body`) instead of a reply."""
    error_body: Mapping[str, Any] | None = None
    """The JSON body of an error status (default: an OpenAI-style error envelope)."""
    headers: Mapping[str, str] = field(default_factory=dict)
    """Extra response headers (`Retry-After`, `retry-after-ms`, ...)."""
    error_after: int | None = None
    """After this many chunks, send an error object (`error_message`) and end cleanly."""
    error_message: str = "The model crashed while generating."
    drop_after: int | None = None
    """After this many chunks, cut the connection (`drop_mode`) with no end marker."""
    drop_mode: Literal["rst", "fin"] = "rst"
    """`rst`: SO_LINGER(1, 0) then abort; `fin`: a normal close mid-body."""
    stall_after: int | None = None
    """After this many chunks, send nothing until `release()` or the client leaves."""
    chunk_delay: float = 0.0
    """Seconds between chunks (the server's pacing; the client is not slowed)."""
    batch: int = 1
    """Chunks written per socket write (full-speed mode coalesces them)."""
    model: str | None = None
    """The `model` field of the reply (None: the request's model)."""
    ignore_stream: bool = False
    """Answer a streamed request with one `chat.completion` JSON object (a server or
    proxy that ignores `stream: true`)."""
    hang_up: Literal["rst", "fin"] | None = None
    """Read the request, then close the connection without any response."""

    @classmethod
    def reply(cls, text: str, **options: Any) -> Script:
        """A text reply split into word-sized chunks."""
        return cls(chunks=tuple(split_words(text)), **options)

    @classmethod
    def text(cls, *chunks: str | Chunk, **options: Any) -> Script:
        """A reply made of exactly these chunks."""
        return cls(chunks=chunks, **options)

    @classmethod
    def http_error(
        cls,
        status: int,
        message: str = "Something went wrong.",
        *,
        code: str | None = None,
        type: str = "server_error",  # noqa: A002 - the wire name
        headers: Mapping[str, str] | None = None,
        retry_after_ms: int | None = 1,
    ) -> Script:
        """An HTTP error with an OpenAI-style body.

        `retry_after_ms` defaults to 1 so an SDK retry happens at once instead of after
        its 0.5 s backoff; pass None to leave the header out.
        """
        all_headers = dict(headers or {})
        if retry_after_ms is not None:
            all_headers.setdefault("retry-after-ms", str(retry_after_ms))
        body = {
            "error": {"message": message, "type": type, "param": None, "code": code}
        }
        return cls(status=status, error_body=body, headers=all_headers)

    @classmethod
    def full_speed(cls, n: int = 4000, token: str = "tok ", batch: int = 64) -> Script:
        """`n` one-token chunks sent as fast as the socket takes them (benchmarks)."""
        return cls(chunks=(token,) * n, batch=batch)

    @classmethod
    def eof_without_finish(cls, *chunks: str | Chunk) -> Script:
        """Chunks, then a clean end of body with no finish reason and no `[DONE]`."""
        return cls(chunks=chunks, finish_reason=None, done=False, usage="never")


def echo_script(body: Mapping[str, Any]) -> Script:
    """The default script: reply with the last user message, word by word."""
    text = "ok"
    for message in reversed(list(body.get("messages") or [])):
        if isinstance(message, Mapping) and message.get("role") == "user":
            text = _content_text(message.get("content")) or text
            break
    return Script.reply(text)


def _content_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(
            str(part.get("text", "")) for part in content if isinstance(part, Mapping)
        )
    return ""


def dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def build_frames(script: Script, body: Mapping[str, Any], reply_id: str) -> list[bytes]:
    """Every SSE event of a streamed reply, encoded, in order."""
    model = script.model or str(body.get("model") or "fake-model")
    head = f'{{"id":"{reply_id}","object":"chat.completion.chunk","created":{CREATED},"model":{dumps(model)},'
    delta_head = head + '"choices":[{"index":0,"delta":'

    def frame(delta: Mapping[str, Any], finish: str | None = None) -> bytes:
        tail = f',"finish_reason":{dumps(finish)}}}]}}\n\n'
        return ("data: " + delta_head + dumps(delta) + tail).encode()

    frames: list[bytes] = []
    role = {
        "empty": {"role": "assistant", "content": ""},
        "no_content": {"role": "assistant"},
        "null_content": {"role": "assistant", "content": None},
    }.get(script.role_chunk)
    if role is not None:
        frames.append(frame(role))
    text_head = ("data: " + delta_head + '{"content":').encode()
    text_tail = b'},"finish_reason":null}]}\n\n'
    for chunk in script.chunks:
        if isinstance(chunk, str):
            frames.append(text_head + dumps(chunk).encode() + text_tail)
        elif chunk.raw is not None:
            frames.append(chunk.raw)
        elif chunk.body is not None:
            frames.append(f"data: {dumps(chunk.body)}\n\n".encode())
        else:
            frames.append(frame(chunk.delta or {}, chunk.finish_reason))
    if script.finish_reason is not None:
        frames.append(frame({}, script.finish_reason))
    wants_usage = bool((body.get("stream_options") or {}).get("include_usage"))
    if script.usage == "always" or (script.usage == "auto" and wants_usage):
        usage = _usage(script, body)
        frames.append(f'data: {head}"choices":[],"usage":{dumps(usage)}}}\n\n'.encode())
    if script.done:
        frames.append(b"data: [DONE]\n\n")
    return frames


def _usage(script: Script, body: Mapping[str, Any]) -> dict[str, int]:
    prompt = script.prompt_tokens
    if prompt is None:
        words = sum(
            len(_content_text(m.get("content")).split())
            for m in body.get("messages") or []
            if isinstance(m, Mapping)
        )
        prompt = words + 1
    completion = script.completion_tokens
    if completion is None:
        completion = len(script.chunks)
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    }


def completion_body(
    script: Script, body: Mapping[str, Any], reply_id: str
) -> dict[str, Any]:
    """The non-streamed `chat.completion` object for a script."""
    text: list[str] = []
    calls: dict[int, dict[str, Any]] = {}
    for chunk in script.chunks:
        if isinstance(chunk, str):
            text.append(chunk)
            continue
        delta = chunk.delta or {}
        if isinstance(delta.get("content"), str):
            text.append(delta["content"])
        for part in delta.get("tool_calls") or []:
            call = calls.setdefault(
                part["index"],
                {
                    "id": "",
                    "type": "function",
                    "function": {"name": "", "arguments": ""},
                },
            )
            call["id"] = call["id"] or part.get("id", "")
            function = part.get("function") or {}
            call["function"]["name"] = call["function"]["name"] or function.get(
                "name", ""
            )
            call["function"]["arguments"] += function.get("arguments", "")
    message: dict[str, Any] = {"role": "assistant", "content": "".join(text)}
    if calls:
        message["tool_calls"] = [calls[i] for i in sorted(calls)]
    return {
        "id": reply_id,
        "object": "chat.completion",
        "created": CREATED,
        "model": script.model or str(body.get("model") or "fake-model"),
        "choices": [
            {"index": 0, "message": message, "finish_reason": script.finish_reason}
        ],
        "usage": _usage(script, body),
    }
