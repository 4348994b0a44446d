"""Server-Sent Events: a WHATWG decoder, and the reply stream's resume policy.

The decoder follows the "event stream interpretation" of the HTML standard
(https://html.spec.whatwg.org/multipage/server-sent-events.html), which httpx-sse
approximates: UTF-8 with replacement, one leading BOM dropped, lines ending in CRLF, LF
or CR (also when a CRLF is split across two chunks), `data:` lines joined with LF,
comments ignored, an `id` containing NUL ignored, `retry` honoured only when it is all
ASCII digits, a block without data not dispatched (its `id` still counts), and an event
cut off by the end of the stream discarded. It is incremental, so the events are the same
whatever the chunk boundaries (a Hypothesis property test checks this), and it caps the
size of one event so a hostile server cannot grow memory without bound.

`ReplyStream` turns a reply's SSE connection into `StreamEvent`s and keeps it alive:
when the connection drops before the terminal event it reconnects to the events route
with `Last-Event-ID`, waits between attempts with backoff and jitter (or the server's
`retry:`), gives up after a bounded number of attempts without progress, drops events it
already delivered (dedupe by id), stops on 204 and fetches the final message over REST,
restarts from the beginning on 410, and fails at once on any other status or a wrong
content type, as the standard says.
"""

from __future__ import annotations

import codecs
import json
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass

import httpx
import pydantic

from tenex_tui.core.errors import RemoteUnavailable, TenexError, error_from_wire
from tenex_tui.core.events import EventType, StreamEvent
from tenex_tui.core.models import Message
from tenex_tui.remote.http import HeadersTimeout

_EOL = re.compile(r"\r\n|\r|\n")

DEFAULT_MAX_EVENT_BYTES = 8 * 1024 * 1024
"""Largest single event accepted (a terminal event carries the whole message)."""


class SSEError(RemoteUnavailable):
    """The event stream is not one: wrong content type, or an oversized event."""


@dataclass(frozen=True)
class SSEMessage:
    """One dispatched event."""

    event: str
    """The event type (`message` when the block named none)."""
    data: str
    """The data lines joined with LF."""
    id: str
    """The stream's last event id at dispatch time ("" when none was ever set)."""


class SSEDecoder:
    """Incremental event-stream decoder: feed bytes, get dispatched events.

    Args:
        max_event_bytes: The cap on one event's buffered text (data and line).
    """

    def __init__(self, max_event_bytes: int = DEFAULT_MAX_EVENT_BYTES) -> None:
        self._text = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._max = max_event_bytes
        self._pieces: list[str] = []
        self._pending = 0
        self._skip_lf = False
        self._started = False
        self._data: list[str] = []
        self._data_size = 0
        self._event = ""
        self._id_buffer = ""
        self.last_event_id = ""
        """The id to send as `Last-Event-ID` on reconnection."""
        self.retry: int | None = None
        """The reconnection time in milliseconds the server asked for, if any."""

    def feed(self, chunk: bytes) -> list[SSEMessage]:
        """Decode a chunk of the stream.

        Returns:
            The events completed by this chunk, in order.

        Raises:
            SSEError: When one event grows past the cap.
        """
        return self._feed_text(self._text.decode(chunk))

    def close(self) -> list[SSEMessage]:
        """End of stream: the standard discards an event not ended by a blank line.

        Returns:
            Events completed by the decoder's last bytes (a split character's
            replacement can end a line); an event cut off by the end is dropped.
        """
        tail = self._text.decode(b"", final=True)
        events = self._feed_text(tail) if tail else []
        # "Once the end of the file is reached, any pending data must be discarded":
        # an unterminated line, and an event without its blank line, are dropped.
        self._pieces = []
        self._pending = 0
        self._data = []
        self._data_size = 0
        self._event = ""
        return events

    def _feed_text(self, text: str) -> list[SSEMessage]:
        if not text:
            return []
        if not self._started:
            self._started = True
            if text.startswith("\ufeff"):
                text = text[1:]
        if self._skip_lf:
            self._skip_lf = False
            if text.startswith("\n"):
                text = text[1:]
        if "\n" not in text and "\r" not in text:
            # No line ends here: keep the piece without re-copying the partial line
            # (a server dripping one byte at a time must not cost quadratic time).
            self._pieces.append(text)
            self._pending += len(text)
            self._check_size()
            return []
        buffer = "".join([*self._pieces, text])
        self._pieces = []
        events: list[SSEMessage] = []
        start = 0
        for match in _EOL.finditer(buffer):
            event = self._process_line(buffer[start : match.start()])
            if event is not None:
                events.append(event)
            start = match.end()
            if match.group() == "\r" and start == len(buffer):
                # A CR at the very end may be the first half of a CRLF.
                self._skip_lf = True
        rest = buffer[start:]
        self._pieces = [rest] if rest else []
        self._pending = len(rest)
        self._check_size()
        return events

    def _check_size(self) -> None:
        if self._pending + self._data_size > self._max:
            raise SSEError("The server sent an event larger than the limit.")

    def _process_line(self, line: str) -> SSEMessage | None:
        if not line:
            return self._dispatch()
        if line.startswith(":"):
            return None
        self._process_field(line)
        return None

    def _process_field(self, line: str) -> None:
        name, colon, value = line.partition(":")
        if colon and value.startswith(" "):
            value = value[1:]
        if name == "data":
            self._data.append(value)
            self._data_size += len(value) + 1
            if self._data_size > self._max:
                raise SSEError("The server sent an event larger than the limit.")
        elif name == "event":
            self._event = value
        elif name == "id":
            if "\x00" not in value:
                self._id_buffer = value
        elif name == "retry" and value.isascii() and value.isdigit():
            self.retry = int(value)

    def _dispatch(self) -> SSEMessage | None:
        self.last_event_id = self._id_buffer
        if not self._data:
            self._event = ""
            return None
        message = SSEMessage(
            event=self._event or "message",
            data="\n".join(self._data),
            id=self._id_buffer,
        )
        self._data = []
        self._data_size = 0
        self._event = ""
        return message


async def aiter_sse(
    response: httpx.Response, decoder: SSEDecoder | None = None
) -> AsyncIterator[SSEMessage]:
    """Decode an open streaming response's body into events.

    Raises:
        SSEError: When an event exceeds the decoder's cap.
        httpx.TransportError: When the connection fails mid-stream.
    """
    decoder = decoder or SSEDecoder()
    async for chunk in response.aiter_bytes():
        for message in decoder.feed(chunk):
            yield message
    for message in decoder.close():
        yield message


@dataclass(frozen=True)
class ResumePolicy:
    """How a dropped reply stream is reconnected (T22, T23)."""

    max_attempts: int = 6
    """Reconnections in a row without a new event before giving up."""
    base_delay: float = 0.5
    """The first backoff ceiling in seconds (doubles per attempt, full jitter)."""
    max_delay: float = 10.0
    """No single wait is longer than this."""
    honour_server_retry: bool = True
    """Wait the server's `retry:` time (when it sent one) instead of the backoff."""

    def delay(self, attempt: int, server_retry_ms: int | None, rand: float) -> float:
        """The wait before reconnection `attempt` (1-based).

        Args:
            attempt: How many reconnections in a row this one is.
            server_retry_ms: The stream's `retry:` value, if any.
            rand: A uniform random number in [0, 1) for the jitter.

        Returns:
            Seconds to wait.
        """
        if self.honour_server_retry and server_retry_ms is not None:
            return min(server_retry_ms / 1000.0, self.max_delay)
        ceiling = min(self.max_delay, self.base_delay * (2.0 ** (attempt - 1)))
        return rand * ceiling


StreamOpener = Callable[[str | None], AbstractAsyncContextManager[httpx.Response]]
"""Opens a reply stream: given the last event id (None: from the start)."""


def terminal_event_for(message: Message, last_event_id: str | None) -> StreamEvent:
    """Build the terminal event of a finished message fetched over REST.

    Used when the server answers a resume with 204 (nothing more to stream).
    """
    kinds: dict[str, EventType] = {
        "complete": "message.completed",
        "stopped": "message.stopped",
    }
    kind = kinds.get(message.status, "message.failed")
    return StreamEvent(
        id=last_event_id or f"{message.id}.final",
        type=kind,
        message_id=message.id,
        thread_id=message.thread_id,
        usage=message.usage,
        error=message.error if kind == "message.failed" else None,
        status=message.status,
        message=message,
        extra={"synthesized": True},
    )


class ReplyStream:
    """Reads one reply's events over SSE, reconnecting until the terminal event.

    Args:
        open_first: Opens the first connection (the POST of a send, or the events
            route for a resume). Called again after a failure only when `first_retryable`
            (a POST carrying an `Idempotency-Key`, which the server replays).
        open_resume: Opens the events route for `(message_id, last_event_id)`.
        fetch_message: Fetches a message over REST (for a 204 answer).
        thread_id: The thread the reply belongs to.
        policy: Reconnection limits and backoff.
        sleep: The wait between attempts.
        rand: A source of uniform random numbers in [0, 1).
        describe: How errors name the endpoint (`POST /api/v1/chat/threads/…`).
        redact: Removes secrets from error texts.
        first_retryable: Whether the first request may be sent again.
        message_id: The assistant message, when already known (a resume).
        after: The last event id already seen (a resume).
    """

    def __init__(
        self,
        *,
        open_first: StreamOpener,
        open_resume: Callable[
            [str, str | None], AbstractAsyncContextManager[httpx.Response]
        ],
        fetch_message: Callable[[str, str], Awaitable[Message]],
        thread_id: str,
        policy: ResumePolicy,
        sleep: Callable[[float], Awaitable[None]],
        rand: Callable[[], float],
        describe: str,
        redact: Callable[[str], str],
        first_retryable: bool,
        message_id: str | None = None,
        after: str | None = None,
        max_event_bytes: int = DEFAULT_MAX_EVENT_BYTES,
    ) -> None:
        self._open_first = open_first
        self._open_resume = open_resume
        self._fetch = fetch_message
        self._thread_id = thread_id
        self._policy = policy
        self._sleep = sleep
        self._rand = rand
        self._describe = describe
        self._redact = redact
        self._first_retryable = first_retryable
        self.message_id = message_id
        """The assistant message, once known."""
        self.last_event_id = after
        """The last event id delivered (what a reconnection resumes after)."""
        self.reconnects = 0
        """How many reconnections were made in total."""
        self._max_event_bytes = max_event_bytes
        self._seen: set[str] = set()

    def __aiter__(self) -> AsyncIterator[StreamEvent]:
        return self._run()

    async def _run(self) -> AsyncIterator[StreamEvent]:
        attempts = 0
        server_retry: int | None = None
        use_first = True
        while True:
            opener: AbstractAsyncContextManager[httpx.Response]
            if use_first:
                opener = self._open_first(self.last_event_id)
            else:
                assert self.message_id is not None
                opener = self._open_resume(self.message_id, self.last_event_id)
            try:
                async with opener as response:
                    status = response.status_code
                    if status == 204:
                        # "No more events". On the first request of a resume that means
                        # nothing follows the caller's id; after a drop it means the reply
                        # ended while we were away: fetch how it ended.
                        if self._seen or self.reconnects:
                            yield await self._final_over_rest()
                        return
                    if status == 410:
                        # The server no longer has the events after our id: replay the
                        # whole reply; dedupe by id keeps what was already delivered.
                        self.last_event_id = None
                    else:
                        await self._check_stream_response(response)
                        decoder = SSEDecoder(self._max_event_bytes)
                        async for sse in aiter_sse(response, decoder):
                            if decoder.retry is not None:
                                server_retry = decoder.retry
                            event = self._decode(sse)
                            if event is None or event.id in self._seen:
                                continue
                            self._seen.add(event.id)
                            self.last_event_id = sse.id or event.id
                            self.message_id = event.message_id
                            attempts = 0
                            yield event
                            if event.terminal:
                                return
                        if decoder.retry is not None:
                            server_retry = decoder.retry
            except (httpx.TransportError, HeadersTimeout):
                if use_first and self.message_id is None and not self._first_retryable:
                    raise RemoteUnavailable(
                        f"The connection was lost before the reply started "
                        f"({self._describe})."
                    ) from None
            attempts += 1
            if attempts > self._policy.max_attempts:
                raise RemoteUnavailable(
                    f"Lost the reply stream and gave up after "
                    f"{self._policy.max_attempts} reconnection attempts "
                    f"({self._describe}). The reply may still be running on the server."
                )
            self.reconnects += 1
            use_first = self.message_id is None
            await self._sleep(self._policy.delay(attempts, server_retry, self._rand()))

    async def _final_over_rest(self) -> StreamEvent:
        if self.message_id is None:
            raise RemoteUnavailable(
                f"The server had nothing to stream ({self._describe})."
            )
        message = await self._fetch(self._thread_id, self.message_id)
        return terminal_event_for(message, self.last_event_id)

    async def _check_stream_response(self, response: httpx.Response) -> None:
        status = response.status_code
        content_type = response.headers.get("content-type", "").split(";")[0]
        if status == 200 and content_type.strip().lower() == "text/event-stream":
            return
        body = b""
        try:
            async for chunk in response.aiter_bytes():
                body += chunk
                if len(body) > 64 * 1024:
                    break
        except httpx.TransportError:
            pass
        if status != 200:
            raise self._error_from_body(status, body)
        raise SSEError(
            f"{self._describe} answered with {content_type or 'no content type'}, "
            "not an event stream."
        )

    def _error_from_body(self, status: int, body: bytes) -> TenexError:
        try:
            data = json.loads(body)
            envelope = data["error"]
            return error_from_wire(
                str(envelope["code"]), self._redact(str(envelope["message"]))[:500]
            )
        except (ValueError, KeyError, TypeError, UnicodeDecodeError):
            return RemoteUnavailable(
                f"{self._describe} failed with HTTP {status} (not the API's answer)."
            )

    def _decode(self, sse: SSEMessage) -> StreamEvent | None:
        if sse.event == "error":
            # The server ends a stream with an `error` event when, for example, the
            # key was revoked while it was open (T61).
            raise self._error_from_body(0, sse.data.encode())
        if not sse.data:
            return None
        try:
            return StreamEvent.from_wire(json.loads(sse.data))
        except (ValueError, pydantic.ValidationError):
            raise RemoteUnavailable(
                f"{self._describe} sent an event that is not the API's "
                "(not a stream event)."
            ) from None
