"""The model adapter for every OpenAI-compatible server (OpenAI, Ollama, llama.cpp, vLLM…).

`OpenAICompatibleAdapter` sends chat completions with `stream=True` through the `openai`
SDK and turns the reply into the engine's `LLMEvent`s. SDK and HTTP types never leave
this module; failures leave it as `ModelUnavailable`, `ModelError` or `StreamBroken`,
with secrets redacted.

Why the body is read here and not by the SDK's `AsyncStream`: the SDK gives us the
client, authentication, status errors and its pre-response retry policy, which we keep.
But its stream decoder ends the whole reply on one undecodable byte
(`UnicodeDecodeError`) or one malformed line (`JSONDecodeError`), and builds a pydantic
object per chunk. Local servers do send such lines (llama.cpp split UTF-8 sequences,
proxies' keep-alive junk), so the adapter asks for the raw body through
`with_streaming_response` and decodes the SSE itself: invalid UTF-8 becomes U+FFFD, a
line that is not JSON is skipped and logged (truncated), and plain dicts make unknown
fields harmless (test-plan T19).

Retries are deliberate (test-plan T68): the SDK retries connection errors, timeouts,
408/409/429 and 5xx up to `max_retries` times, only before the response starts; a reply
that started is never retried, because a second generation would be billed and would
differ. The SDK sends no `Idempotency-Key` header.

The SDK costs ~0.6 s to import and ~50 ms to build a client, so nothing is imported at
module import; `warm()` does both in a worker thread, and also what the first request
would import on the event loop.

Throughput (a server streams thousands of chunks a second through here): the text of
every chunk that arrived together is yielded as one `TextDelta`; the request body goes
in `extra_body`, skipping the SDK's per-request rewrite of it; the SDK's client runs on
`openai_transport.StreamingTransport` (a lean HTTP/1.1 transport) unless a proxy is
configured; the idle timeout costs one timer per idle period, not one per read.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from collections.abc import AsyncGenerator, AsyncIterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from tenex_tui.core.errors import ModelError, ModelNotConfigured, ModelUnavailable
from tenex_tui.core.secrets import Secret, redact
from tenex_tui.engine.llm import (
    ChatTurn,
    LLMEvent,
    StreamBroken,
    TextDelta,
    ToolSpec,
)
from tenex_tui.engine.openai_stream import (
    JSON,
    LOG_PAYLOAD,
    ReplyAssembler,
    SSEDecoder,
    StallWatch,
    error_detail,
)
from tenex_tui.engine.openai_wire import wire_message, wire_tool
from tenex_tui.engine.request_signal import request_sent

if TYPE_CHECKING:
    from openai import AsyncOpenAI

log = logging.getLogger(__name__)

DEFAULT_BASE_URL = "https://api.openai.com/v1"
LOCAL_API_KEY = "not-needed"
"""Sent when no key is configured: llama.cpp, Ollama and LM Studio ignore the header."""

_DRAIN_SECONDS = 0.1
"""How long to read the rest of a body after `[DONE]`, so the connection can be reused."""


class OpenAICompatibleAdapter:
    """An `LLMAdapter` for any server that speaks OpenAI's `/v1/chat/completions`.

    Use one instance per event loop (the HTTP client binds to the loop it first runs on)
    and `aclose()` it when done.

    Args:
        base_url: The API root, such as `http://127.0.0.1:11434/v1` (None: OpenAI's).
        api_key: The provider key (None: a placeholder, for local servers).
        default_model: The model used when a thread names none.
        timeout: Seconds to wait for the response to start (and for any one read).
        connect_timeout: Seconds to wait for the TCP/TLS connection.
        idle_timeout: Seconds without data, once the reply started, before it is
            declared broken.
        max_retries: SDK retries before the response starts (never after).
        extra_headers: Headers sent with every request (e.g. for a proxy).
        include_usage: Ask for a final usage chunk (`stream_options.include_usage`).
        lean_transport: Speak HTTP/1.1 through `openai_transport.StreamingTransport`
            under the SDK's client (False: the SDK's own httpx2 stack throughout).
    """

    def __init__(
        self,
        *,
        base_url: str | None,
        api_key: Secret | None,
        default_model: str | None = None,
        timeout: float = 60.0,
        connect_timeout: float = 5.0,
        idle_timeout: float = 60.0,
        max_retries: int = 1,
        extra_headers: Mapping[str, str] | None = None,
        include_usage: bool = True,
        lean_transport: bool = True,
    ) -> None:
        self._base_url = (base_url or DEFAULT_BASE_URL).rstrip("/")
        self._api_key = api_key
        self._default_model = default_model
        self._timeout = timeout
        self._connect_timeout = connect_timeout
        self._idle_timeout = idle_timeout
        self._max_retries = max_retries
        self._extra_headers = dict(extra_headers or {})
        self._include_usage = include_usage
        self._lean_transport = lean_transport
        self._stream_options_refused = False
        self._client: AsyncOpenAI | None = None
        self._client_lock = asyncio.Lock()
        self._announce_in_open = False

    def __repr__(self) -> str:
        shown = self._shown_url()
        return f"OpenAICompatibleAdapter(base_url={shown!r}, key={self._api_key!r})"

    announces_requests = True
    """Requests are announced to the reply that streams them (`request_signal`)."""

    @property
    def default_model(self) -> str | None:
        """The model used when a thread names none (None: ask the provider's list)."""
        return self._default_model

    @property
    def base_url(self) -> str:
        """The API root requests go to."""
        return self._base_url

    # ------------------------------------------------------------------ lifecycle

    async def warm(self) -> None:
        """Import the SDK and build the HTTP client in a worker thread, once.

        Also imports what the SDK would otherwise import lazily on the first request,
        on the event loop: the chat resources (~0.25 s cold), anyio's asyncio backend
        and the JSON parser. After `warm()` the first send costs what any send costs.
        """
        await self._ensure_client()

    async def aclose(self) -> None:
        """Close the HTTP client and its connections (the adapter can warm again)."""
        client, self._client = self._client, None
        if client is not None:
            await client.close()

    async def _ensure_client(self) -> AsyncOpenAI:
        if self._client is None:
            async with self._client_lock:
                if self._client is None:
                    self._client = await asyncio.to_thread(self._build_client)
        return self._client

    def _build_client(self) -> AsyncOpenAI:
        import openai

        from tenex_tui.engine.openai_preload import preload
        from tenex_tui.engine.openai_transport import streaming_client

        http_client = streaming_client() if self._lean_transport else None
        # The lean transport says when the request is written; the SDK's own does not
        # (see `request_signal`), so `_open` says so just before handing it over.
        self._announce_in_open = http_client is None
        client = openai.AsyncOpenAI(
            base_url=self._base_url,
            api_key=self._api_key.reveal() if self._api_key else LOCAL_API_KEY,
            # Passed explicitly so the SDK never falls back to OPENAI_* variables.
            organization=None,
            project=None,
            timeout=openai.Timeout(self._timeout, connect=self._connect_timeout),
            max_retries=self._max_retries,
            default_headers=self._extra_headers or None,
            http_client=http_client,
        )
        preload(client)
        return client

    # ------------------------------------------------------------------ models

    async def list_models(self) -> list[str]:
        """The model ids the provider lists, in the provider's order.

        Raises:
            ModelUnavailable: When the provider cannot be reached.
            ModelError: When it answers with an error.
        """
        import openai

        client = await self._ensure_client()
        try:
            page = await client.models.list()
        except openai.APIError as exc:
            raise self._map_error(exc, model=None) from None
        ids = (getattr(item, "id", None) for item in getattr(page, "data", None) or ())
        return [model_id for model_id in ids if isinstance(model_id, str)]

    # ------------------------------------------------------------------ streaming

    async def stream(
        self,
        turns: Sequence[ChatTurn],
        *,
        model: str,
        tools: Sequence[ToolSpec] = (),
    ) -> AsyncGenerator[LLMEvent, None]:
        """Stream one reply; see `LLMAdapter.stream`.

        Closing the iterator or cancelling its task closes the HTTP response, so the
        server sees the disconnect and stops generating.

        Yields:
            `TextDelta`s and `ToolCallProgress`es, then exactly one `Finished`.

        Raises:
            ModelNotConfigured: When `model` is empty.
            ModelUnavailable: When the server cannot be reached before replying.
            ModelError: When it answers with an error status or an error object.
            StreamBroken: When a started reply drops, stalls or ends unfinished.
            ValueError: When a tool turn has no `tool_call_id`.
        """
        if not model:
            raise ModelNotConfigured(
                "no model is configured: choose one with --model, TENEX_MODEL or the config"
            )
        messages = [wire_message(turn) for turn in turns]
        wire_tools = [wire_tool(spec) for spec in tools]
        client = await self._ensure_client()
        async with contextlib.AsyncExitStack() as stack:
            response = await self._open(stack, client, model, messages, wire_tools)
            if "json" in response.headers.get("content-type", ""):
                # A server (or proxy) that ignored stream=True and sent one object.
                async for event in self._read_whole(response):
                    yield event
                return
            async for event in self._read_events(response):
                yield event

    async def _open(
        self,
        stack: contextlib.AsyncExitStack,
        client: AsyncOpenAI,
        model: str,
        messages: list[dict[str, Any]],
        tools: list[dict[str, Any]],
    ) -> Any:
        """Send the request; return the streamed response whose status was 2xx."""
        import openai

        # The body goes in `extra_body`, which the SDK merges over its own fields
        # ("the second mapping takes precedence"), so `messages` and `tools` skip
        # the SDK's per-request rewrite against its TypedDicts: ~1-3 ms of event-loop
        # CPU per request for nothing (our dicts are already wire-shaped), which a
        # server starting hundreds of replies a second cannot afford.
        body: dict[str, Any] = {"messages": messages}
        if tools:
            body["tools"] = tools
        ask_usage = self._include_usage and not self._stream_options_refused
        if ask_usage:
            body["stream_options"] = {"include_usage": True}
        create = client.chat.completions.with_streaming_response.create

        def request() -> Any:
            if self._announce_in_open:
                request_sent()
            return create(model=model, messages=[], stream=True, extra_body=body)

        try:
            return await stack.enter_async_context(request())
        except openai.BadRequestError as exc:
            if not (ask_usage and "stream_options" in _provider_message(exc).lower()):
                raise self._map_error(exc, model=model) from None
        except openai.APIError as exc:
            raise self._map_error(exc, model=model) from None
        # Older vLLM/LocalAI builds refuse the option: remember, and ask once without it.
        log.info("%s refused stream_options; retrying without usage", self._host())
        self._stream_options_refused = True
        del body["stream_options"]
        try:
            return await stack.enter_async_context(request())
        except openai.APIError as exc:
            raise self._map_error(exc, model=model) from None

    async def _read_events(self, response: Any) -> AsyncIterator[LLMEvent]:
        """Decode the SSE body into events, mapping every way it can end.

        The text of every chunk that arrived in one network read is yielded as ONE
        `TextDelta` (at full speed a read holds dozens of chunks): the engine makes
        one stored, resumable event per delta, so fewer deltas cost less everywhere
        downstream while the text stays byte-identical.
        """
        decoder = SSEDecoder()
        reply = ReplyAssembler()
        chunks = 0
        done = False
        body: AsyncIterator[bytes] = response.iter_bytes().__aiter__()
        broken: tuple[type[BaseException], ...] = (TimeoutError, *_transport_errors())
        stall = StallWatch(self._idle_timeout)
        try:
            while not done:
                try:
                    stall.waiting()
                    data = await anext(body)
                    stall.idle()
                except StopAsyncIteration:
                    stall.idle()
                    events, chunks, done, error = self._decode_all(
                        decoder.close(), reply, chunks
                    )
                    for event in events:
                        yield event
                    if error is not None:
                        raise error from None
                    break
                except asyncio.CancelledError:
                    if stall.timed_out():
                        if reply.finish_reason is not None:
                            break  # Complete; only the usage or [DONE] was lost.
                        raise self._broken(TimeoutError(), chunks) from None
                    raise
                except broken as exc:
                    stall.idle()
                    if reply.finish_reason is not None:
                        break  # The reply was complete; only the usage or [DONE] was lost.
                    raise self._broken(exc, chunks) from None
                events, chunks, done, error = self._decode_all(
                    decoder.feed(data), reply, chunks
                )
                for event in events:
                    yield event
                if error is not None:
                    raise error
        finally:
            stall.close()
        if done:
            await _drain(body)
        elif reply.finish_reason is None:
            # ollama#17118: a clean end of body with no finish reason is a lost reply.
            raise StreamBroken(
                f"connection to the model lost after {chunks} chunks: "
                "the reply ended without a finish reason"
            )
        yield reply.finished()

    def _decode_all(
        self, pairs: list[tuple[str, str]], reply: ReplyAssembler, chunks: int
    ) -> tuple[list[LLMEvent], int, bool, ModelError | None]:
        """Decode one read's SSE events; consecutive text is merged into one delta.

        Returns:
            The events, the chunk count so far, whether `[DONE]` came, and the error
            a chunk carried (raised by the caller after the events before it).
        """
        events: list[LLMEvent] = []
        text: list[str] = []
        done = False
        error: ModelError | None = None
        try:
            for event_name, data in pairs:
                if data.startswith("[DONE]"):
                    done = True
                    break
                chunks += 1
                chunk = self._chunk(event_name, data, chunks)
                if chunk is None:
                    continue
                plain = reply.feed_text(chunk)
                if plain is not None:
                    if plain:
                        text.append(plain)
                    continue
                for event in reply.feed(chunk):
                    if type(event) is TextDelta:
                        text.append(event.text)
                        continue
                    if text:
                        events.append(TextDelta("".join(text)))
                        text = []
                    events.append(event)
        except ModelError as exc:
            error = exc
        if text:
            events.append(TextDelta("".join(text)))
        return events, chunks, done, error

    def _chunk(self, event_name: str, text: str, chunks: int) -> dict[str, Any] | None:
        """One SSE event's chunk object (None: skipped, logged).

        Raises:
            ModelError: When the chunk is an error object or an `error` event.
        """
        try:
            chunk = JSON.decode(text)
        except ValueError as exc:
            log.warning(
                "skipped chunk %d from %s, not JSON (%s): %r",
                chunks,
                self._host(),
                exc,
                self._redact(text[:LOG_PAYLOAD]),
            )
            return None
        if not isinstance(chunk, dict):
            log.warning("skipped chunk %d from %s, not an object", chunks, self._host())
            return None
        error = chunk.get("error")
        if error or event_name == "error":
            detail = error_detail(error if error else chunk) or "no details given"
            raise ModelError(self._redact(f"the model failed mid-reply: {detail}"))
        return chunk

    async def _read_whole(self, response: Any) -> AsyncIterator[LLMEvent]:
        broken: tuple[type[BaseException], ...] = (TimeoutError, *_transport_errors())
        try:
            async with asyncio.timeout(self._idle_timeout):
                raw = await response.read()
        except broken as exc:
            raise self._broken(exc, 0) from None
        try:
            body = JSON.decode(raw.decode("utf-8", "replace"))
        except ValueError:
            raise ModelError("the model sent a reply that is not JSON") from None
        if not isinstance(body, dict):
            raise ModelError("the model sent a reply that is not a JSON object")
        if body.get("error"):
            detail = error_detail(body["error"]) or "no details given"
            raise ModelError(self._redact(f"the model failed: {detail}"))
        reply = ReplyAssembler()
        for choice in body.get("choices") or ():
            if isinstance(choice, dict) and isinstance(choice.get("message"), dict):
                message = choice["message"]
                calls = message.get("tool_calls")
                delta = {
                    "content": message.get("content"),
                    "tool_calls": [
                        {**call, "index": i}
                        for i, call in enumerate(calls)
                        if isinstance(call, dict)
                    ]
                    if isinstance(calls, list)
                    else None,
                    "function_call": message.get("function_call"),
                }
                choice = {**choice, "delta": delta}
            for event in reply.feed({"choices": [choice], "usage": body.get("usage")}):
                yield event
        if reply.finish_reason is None and not reply.has_output:
            raise ModelError("the model sent an empty reply")
        yield reply.finished()

    # ------------------------------------------------------------------ errors

    def _host(self) -> str:
        parts = urlsplit(self._base_url)
        return parts.netloc.rpartition("@")[2] or self._base_url

    def _shown_url(self) -> str:
        """The base URL without any `user:password@` part, for messages."""
        parts = urlsplit(self._base_url)
        return parts._replace(netloc=self._host(), query="", fragment="").geturl()

    def _redact(self, text: str) -> str:
        return redact(text, [self._api_key.reveal()] if self._api_key else [])

    def _broken(self, exc: BaseException, chunks: int) -> StreamBroken:
        if _is_timeout(exc):
            seconds = (
                self._idle_timeout if isinstance(exc, TimeoutError) else self._timeout
            )
            return StreamBroken(f"the model sent nothing for {seconds:g} s")
        log.info("stream from %s broke after %d chunks: %r", self._host(), chunks, exc)
        return StreamBroken(f"connection to the model lost after {chunks} chunks")

    def _map_error(self, exc: Exception, *, model: str | None) -> ModelError:
        """Turn an SDK error raised before the response started into ours."""
        import openai

        host = self._host()
        if isinstance(exc, openai.APITimeoutError):
            return ModelUnavailable(
                f"cannot reach the model at {host}: no answer within {self._timeout:g} s"
            )
        if isinstance(exc, openai.APIConnectionError):
            reason = _connection_reason(exc)
            return ModelUnavailable(
                self._redact(f"cannot reach the model at {host}: {reason}")
            )
        if not isinstance(exc, openai.APIStatusError):
            return ModelError(self._redact(f"the model provider failed: {exc}"))
        status = exc.status_code
        detail = _provider_message(exc)
        if status == 401:
            text = f"the model provider at {host} refused the API key (401): {detail}"
        elif status == 403:
            text = f"the API key may not use this model or endpoint (403): {detail}"
        elif status == 404:
            what = f"the model {model!r}" if model else "the model"
            text = f"{what} or the URL {self._shown_url()} is wrong (404): {detail}"
        elif status == 429:
            wait = exc.response.headers.get("retry-after")
            hint = f"; retry after {wait} s" if wait else ""
            text = f"rate limited by the model provider (429){hint}: {detail}"
        elif status >= 500:
            text = f"the model provider failed ({status}): {detail}"
        else:
            text = f"the model provider rejected the request ({status}): {detail}"
        return ModelError(self._redact(text))


def _provider_message(exc: Any) -> str:
    """The provider's own sentence from an `APIStatusError`, else its body text."""
    detail = error_detail(exc.body) if exc.body else ""
    if not detail:
        try:
            detail = exc.response.text[:LOG_PAYLOAD]
        except Exception:  # A body that could not be read says nothing more.
            detail = ""
    return detail.strip() or exc.response.reason_phrase or "no details given"


def _connection_reason(exc: BaseException) -> str:
    cause = exc.__cause__ or exc.__context__
    while cause is not None:
        if isinstance(cause, ConnectionRefusedError):
            return "connection refused"
        text = str(cause)
        if "refused" in text.lower():
            return "connection refused"
        if cause.__cause__ is None and cause.__context__ is None:
            return text or type(cause).__name__
        cause = cause.__cause__ or cause.__context__
    return "connection failed"


def _transport_errors() -> tuple[type[BaseException], ...]:
    """Exceptions that mean the body's connection broke (httpx2 is the SDK's fork)."""
    import anyio
    import httpx2
    import openai

    return (
        httpx2.TransportError,
        httpx2.DecodingError,
        httpx2.StreamError,
        openai.APIConnectionError,
        anyio.EndOfStream,
        anyio.BrokenResourceError,
        anyio.ClosedResourceError,
        ssl.SSLError,
        OSError,
    )


def _is_timeout(exc: BaseException) -> bool:
    import httpx2
    import openai

    return isinstance(
        exc, TimeoutError | httpx2.TimeoutException | openai.APITimeoutError
    )


async def _drain(body: AsyncIterator[bytes]) -> None:
    """Read what follows `[DONE]` briefly, so HTTP/1.1 can reuse the connection."""
    with contextlib.suppress(Exception):
        async with asyncio.timeout(_DRAIN_SECONDS):
            async for _ in body:
                pass
