"""A loopback OpenAI-compatible server for tests: scriptable, recording, faulty on demand.

Every test that needs a model talks to this server through the real `openai` SDK (or any
HTTP client) on `127.0.0.1:<free port>`. It speaks just enough HTTP/1.1 (keep-alive,
chunked responses) for `POST /v1/chat/completions` (streamed and not) and `GET /v1/models`.

Each chat request takes the next `Script` from a queue; an empty queue echoes the last
user message back, word by word. A script describes the reply (text chunks, tool-call
fragments, usage, finish reason) and the faults to inject (an HTTP error, an error object
mid-stream, a dropped connection as RST or FIN, a hang-up before any response, a clean
end without a finish reason, a stall, a delay per chunk, a JSON reply to a streamed
request, raw bytes such as an invalid JSON line or invalid UTF-8).

The server records every request (headers, JSON body, chunks sent, whether the client
went away before the reply ended) and lets a test wait, with a bounded timeout, until
something happened: N chunks sent, a disconnect, N requests.

Counting: every SSE event the server writes is one chunk, including the role chunk, the
finish chunk, the usage chunk and `data: [DONE]`. A plain `Script.reply("a b c")` sends
`role, "a ", "b ", "c", finish, [usage], [DONE]`; `drop_after=N` cuts the connection once
N events were written, so the client saw exactly those N.

Two ways to run it:

In the test's event loop (async tests)::

    async with FakeLLMServer() as llm:
        llm.enqueue(Script.reply("Hello there"))
        adapter = OpenAICompatibleAdapter(base_url=llm.base_url, api_key=None)
        ...
        assert llm.chat_requests[0].body["model"] == "m"

In its own thread (sync tests, subprocess tests such as the CLI, benchmarks)::

    with FakeLLMServer() as llm:  # or: url = llm.start_in_thread(); ...; llm.stop_in_thread()
        llm.enqueue(Script.reply("Hi"))
        subprocess.run([...], env={"OPENAI_BASE_URL": llm.base_url, ...})
        llm.wait_for_requests_blocking(1)

Acting at a known point (e.g. cancel at delta 3, T18)::

    llm.enqueue(Script.reply("w " * 100, stall_after=4))   # role + 3 deltas, then wait
    task = asyncio.create_task(consume())
    await llm.wait_for_chunks(4, request=0)
    task.cancel()
    await llm.wait_for_disconnect(request=0)                # the server saw the hang-up
    # or llm.release() to let the stalled reply continue.

The fixtures `fake_llm` (in-loop) and `fake_llm_in_thread` at the end of this module are
available to a test module that imports `fake_llm_fixture` / `fake_llm_in_thread_fixture`
(with `# noqa: F401`), or to a whole tree whose root conftest lists this module in
`pytest_plugins`.
"""

from __future__ import annotations

import asyncio
import contextlib
import http
import json
import threading
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pytest

from tests.support.fake_llm_http import Closed, Connection
from tests.support.fake_llm_scripts import (
    CREATED,
    Chunk,
    Script,
    build_frames,
    completion_body,
    dumps,
    echo_script,
    function_call_fragment,
    split_words,
    tool_fragment,
)

DEFAULT_TIMEOUT = 5.0
"""Seconds a `wait_*` helper waits before failing the test."""

_MAX_BODY = 64 * 1024 * 1024


# --------------------------------------------------------------------------- records


@dataclass
class RecordedRequest:
    """One request the server received, and what became of its response."""

    index: int
    """Position among all requests (0-based)."""
    method: str
    path: str
    headers: dict[str, str]
    """Header names in lower case."""
    body: Any
    """The parsed JSON body (None when empty or not JSON)."""
    status: int = 0
    """The status the server answered with (0 until it answered)."""
    chunks_sent: int = 0
    """SSE events written for this request."""
    completed: bool = False
    """The response was written to its end."""
    disconnected: bool = False
    """The client went away before the response was complete."""

    @property
    def is_chat(self) -> bool:
        """True for `POST /v1/chat/completions` (other paths get a 404, as a real
        server's would when a base URL lacks its `/v1`)."""
        return self.method == "POST" and self.path == "/v1/chat/completions"


class _Waiter:
    __slots__ = ("notify", "predicate")

    def __init__(
        self, predicate: Callable[[], bool], notify: Callable[[], None]
    ) -> None:
        self.predicate = predicate
        self.notify = notify


# --------------------------------------------------------------------------- server


class FakeLLMServer:
    """An OpenAI-compatible HTTP server on 127.0.0.1, scripted per request.

    Args:
        models: The ids `GET /v1/models` lists, in this order.
        required_api_key: When set, requests without `Authorization: Bearer <it>` get a
            401 whose message echoes the key they sent (as real providers do), so tests
            can check the client redacts it.
        reject_stream_options: Play a server that answers 400 to any request carrying
            `stream_options` (older vLLM/LocalAI builds).
        default_script: Called with the request body when the queue is empty
            (default: `echo_script`).
    """

    def __init__(
        self,
        *,
        models: Sequence[str] = ("fake-model",),
        required_api_key: str | None = None,
        reject_stream_options: bool = False,
        default_script: Callable[[Mapping[str, Any]], Script] = echo_script,
    ) -> None:
        self.models = list(models)
        """Listed by `GET /v1/models`; change it at any time."""
        self.models_error: Script | None = None
        """When set, `GET /v1/models` answers with this script's error status."""
        self.required_api_key = required_api_key
        self.reject_stream_options = reject_stream_options
        self.default_script = default_script
        self._queue: deque[Script] = deque()
        self._requests: list[RecordedRequest] = []
        self._lock = threading.Lock()
        self._waiters: list[_Waiter] = []
        self._releases = 0
        self._releases_used = 0
        self._release_event: asyncio.Event | None = None
        self._server: asyncio.Server | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._connections: set[Connection] = set()
        self._thread: threading.Thread | None = None
        self._thread_stop: asyncio.Event | None = None
        self.port = 0

    # ---- lifecycle
    @property
    def base_url(self) -> str:
        """`http://127.0.0.1:<port>/v1`, what an OpenAI client takes as `base_url`."""
        if not self.port:
            raise RuntimeError("the fake LLM server is not started")
        return f"http://127.0.0.1:{self.port}/v1"

    async def start(self) -> str:
        """Listen on a free loopback port in the running loop; return the base URL."""
        self._loop = asyncio.get_running_loop()
        self._release_event = asyncio.Event()
        self._server = await self._loop.create_server(
            lambda: self._track(Connection(self._serve, self._changed)), "127.0.0.1", 0
        )
        self.port = self._server.sockets[0].getsockname()[1]
        return self.base_url

    async def stop(self) -> None:
        """Stop listening and close every connection (stalls end as disconnects)."""
        if self._server is None:
            return
        self._server.close()
        for conn in list(self._connections):
            if conn.transport is not None:
                conn.transport.abort()
        tasks = [c.task for c in self._connections if c.task is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self._server.wait_closed()
        self._server = None

    async def __aenter__(self) -> FakeLLMServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def start_in_thread(self, timeout: float = DEFAULT_TIMEOUT) -> str:
        """Run the server in a daemon thread with its own loop; return the base URL."""
        ready = threading.Event()
        failure: list[BaseException] = []

        async def main() -> None:
            self._thread_stop = asyncio.Event()
            try:
                await self.start()
            except BaseException as exc:
                failure.append(exc)
                raise
            finally:
                ready.set()
            await self._thread_stop.wait()
            await self.stop()

        self._thread = threading.Thread(
            target=asyncio.run, args=(main(),), name="fake-llm", daemon=True
        )
        self._thread.start()
        if not ready.wait(timeout):
            raise RuntimeError("the fake LLM server did not start")
        if failure:
            raise RuntimeError("the fake LLM server failed to start") from failure[0]
        return self.base_url

    def stop_in_thread(self, timeout: float = DEFAULT_TIMEOUT) -> None:
        """Stop a server started with `start_in_thread` and join its thread."""
        if self._thread is None or self._loop is None or self._thread_stop is None:
            return
        self._loop.call_soon_threadsafe(self._thread_stop.set)
        self._thread.join(timeout)
        if self._thread.is_alive():
            raise RuntimeError("the fake LLM server thread did not stop")
        self._thread = None

    def __enter__(self) -> FakeLLMServer:
        self.start_in_thread()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop_in_thread()

    def _track(self, conn: Connection) -> Connection:
        self._connections.add(conn)
        return conn

    # ---- scripting
    def enqueue(self, *scripts: Script) -> None:
        """Queue scripts; each chat request takes the next one (thread-safe)."""
        with self._lock:
            self._queue.extend(scripts)

    @property
    def pending_scripts(self) -> int:
        """Scripts not yet taken by a request."""
        with self._lock:
            return len(self._queue)

    def release(self, count: int = 1) -> None:
        """Let `count` stalls continue (one already waiting, or the next ones to come)."""
        with self._lock:
            self._releases += count
        if self._loop is not None and self._release_event is not None:
            self._loop.call_soon_threadsafe(self._release_event.set)

    def _take_release(self) -> bool:
        with self._lock:
            if self._releases_used < self._releases:
                self._releases_used += 1
                return True
            return False

    async def _release_signal(self) -> None:
        assert self._release_event is not None
        await self._release_event.wait()
        self._release_event.clear()

    # ---- records
    @property
    def requests(self) -> list[RecordedRequest]:
        """Every request received, in order (a copy of the list)."""
        with self._lock:
            return list(self._requests)

    @property
    def chat_requests(self) -> list[RecordedRequest]:
        """The chat-completions requests, in order."""
        return [r for r in self.requests if r.is_chat]

    @property
    def request_count(self) -> int:
        """How many requests arrived (any path)."""
        with self._lock:
            return len(self._requests)

    @property
    def chat_request_count(self) -> int:
        """How many chat-completions requests arrived (each is a generation)."""
        return len(self.chat_requests)

    # ---- waiting
    def _changed(self) -> None:
        with self._lock:
            fired = [w for w in self._waiters if w.predicate()]
            for waiter in fired:
                self._waiters.remove(waiter)
        for waiter in fired:
            waiter.notify()

    def _add_waiter(self, waiter: _Waiter) -> None:
        with self._lock:
            if not waiter.predicate():
                self._waiters.append(waiter)
                return
        waiter.notify()

    def _drop_waiter(self, waiter: _Waiter) -> None:
        with self._lock, contextlib.suppress(ValueError):
            self._waiters.remove(waiter)

    # The async waits take `timeout` themselves (ASYNC109) so every call is bounded
    # by default and fails with a sentence naming what did not happen.
    async def wait_until(
        self,
        predicate: Callable[[], bool],
        *,
        timeout: float = DEFAULT_TIMEOUT,  # noqa: ASYNC109
        what: str = "a condition",
    ) -> None:
        """Wait until `predicate()` holds (checked on every server state change).

        Raises:
            AssertionError: When it does not hold within `timeout` seconds.
        """
        loop = asyncio.get_running_loop()
        done: asyncio.Future[None] = loop.create_future()

        def notify() -> None:
            loop.call_soon_threadsafe(lambda: done.done() or done.set_result(None))

        waiter = _Waiter(predicate, notify)
        self._add_waiter(waiter)
        try:
            await asyncio.wait_for(done, timeout)
        except TimeoutError:
            raise AssertionError(f"fake LLM: no {what} within {timeout} s") from None
        finally:
            self._drop_waiter(waiter)

    def wait_until_blocking(
        self,
        predicate: Callable[[], bool],
        *,
        timeout: float = DEFAULT_TIMEOUT,
        what: str = "a condition",
    ) -> None:
        """`wait_until` for code outside the server's loop (a thread-hosted server)."""
        event = threading.Event()
        waiter = _Waiter(predicate, event.set)
        self._add_waiter(waiter)
        try:
            if not event.wait(timeout):
                raise AssertionError(f"fake LLM: no {what} within {timeout} s")
        finally:
            self._drop_waiter(waiter)

    def _chunks_reached(self, n: int, request: int | None) -> Callable[[], bool]:
        def check() -> bool:
            chats = [r for r in self._requests if r.is_chat]
            if request is not None:
                return len(chats) > request and chats[request].chunks_sent >= n
            return any(r.chunks_sent >= n for r in chats)

        return check

    def _disconnected(self, request: int | None) -> Callable[[], bool]:
        def check() -> bool:
            chats = [r for r in self._requests if r.is_chat]
            if request is not None:
                return len(chats) > request and chats[request].disconnected
            return any(r.disconnected for r in chats)

        return check

    def _requests_reached(self, n: int) -> Callable[[], bool]:
        return lambda: sum(r.is_chat for r in self._requests) >= n

    async def wait_for_chunks(
        self,
        n: int,
        *,
        request: int | None = None,
        timeout: float = DEFAULT_TIMEOUT,  # noqa: ASYNC109
    ) -> None:
        """Wait until a chat request (the `request`-th one, or any) was sent `n` chunks."""
        await self.wait_until(
            self._chunks_reached(n, request), timeout=timeout, what=f"{n} chunks sent"
        )

    def wait_for_chunks_blocking(
        self, n: int, *, request: int | None = None, timeout: float = DEFAULT_TIMEOUT
    ) -> None:
        """`wait_for_chunks` from another thread."""
        self.wait_until_blocking(
            self._chunks_reached(n, request), timeout=timeout, what=f"{n} chunks sent"
        )

    async def wait_for_disconnect(
        self,
        *,
        request: int | None = None,
        timeout: float = DEFAULT_TIMEOUT,  # noqa: ASYNC109
    ) -> None:
        """Wait until a client left a chat reply before its end."""
        await self.wait_until(
            self._disconnected(request), timeout=timeout, what="client disconnect"
        )

    def wait_for_disconnect_blocking(
        self, *, request: int | None = None, timeout: float = DEFAULT_TIMEOUT
    ) -> None:
        """`wait_for_disconnect` from another thread."""
        self.wait_until_blocking(
            self._disconnected(request), timeout=timeout, what="client disconnect"
        )

    async def wait_for_requests(
        self,
        n: int,
        *,
        timeout: float = DEFAULT_TIMEOUT,  # noqa: ASYNC109
    ) -> None:
        """Wait until `n` chat requests arrived."""
        await self.wait_until(
            self._requests_reached(n), timeout=timeout, what=f"{n} chat requests"
        )

    def wait_for_requests_blocking(
        self, n: int, *, timeout: float = DEFAULT_TIMEOUT
    ) -> None:
        """`wait_for_requests` from another thread."""
        self.wait_until_blocking(
            self._requests_reached(n), timeout=timeout, what=f"{n} chat requests"
        )

    # ---- HTTP
    async def _serve(self, conn: Connection) -> None:
        try:
            while True:
                head = await conn.read_head()
                if head is None:
                    return
                lines = head.decode("latin-1").split("\r\n")
                method, target, _ = [*lines[0].split(" ", 2), "", ""][:3]
                headers: dict[str, str] = {}
                for line in lines[1:]:
                    name, _, value = line.partition(":")
                    headers[name.strip().lower()] = value.strip()
                size = int(headers.get("content-length") or 0)
                if size > _MAX_BODY:
                    return
                raw = await conn.read_exactly(size) if size else b""
                try:
                    body = json.loads(raw) if raw else None
                except ValueError:
                    body = None
                path = target.split("?", 1)[0]
                with self._lock:
                    record = RecordedRequest(
                        len(self._requests), method, path, headers, body
                    )
                    self._requests.append(record)
                self._changed()
                if not await self._respond(conn, record):
                    return
        except (Closed, ConnectionError):
            return
        finally:
            self._connections.discard(conn)
            if conn.transport is not None and not conn.transport.is_closing():
                conn.transport.close()

    async def _respond(self, conn: Connection, record: RecordedRequest) -> bool:
        """Answer one request; return False when the connection must end."""
        if self.required_api_key is not None:
            given = (
                record.headers.get("authorization", "").removeprefix("Bearer ").strip()
            )
            if given != self.required_api_key:
                error = Script.http_error(
                    401,
                    f"Incorrect API key provided: {given}. Find your key at the dashboard.",
                    code="invalid_api_key",
                    type="invalid_request_error",
                    retry_after_ms=None,
                )
                return await self._send_error(conn, record, error)
        if record.method == "GET" and record.path == "/v1/models":
            if self.models_error is not None:
                return await self._send_error(conn, record, self.models_error)
            data = [
                {"id": m, "object": "model", "created": CREATED, "owned_by": "fake"}
                for m in self.models
            ]
            return await self._send_json(
                conn, record, 200, {"object": "list", "data": data}
            )
        if not record.is_chat:
            missing = Script.http_error(
                404, f"Unknown path {record.path}.", retry_after_ms=None
            )
            return await self._send_error(conn, record, missing)
        body = record.body if isinstance(record.body, Mapping) else {}
        if self.reject_stream_options and "stream_options" in body:
            bad = Script.http_error(
                400,
                "Unrecognized request argument supplied: stream_options",
                type="invalid_request_error",
                retry_after_ms=None,
            )
            return await self._send_error(conn, record, bad)
        with self._lock:
            script = self._queue.popleft() if self._queue else None
        if script is None:
            script = self.default_script(body)
        if script.hang_up is not None:
            conn.abort(script.hang_up)
            return False
        if script.status != 200:
            return await self._send_error(conn, record, script)
        reply_id = f"chatcmpl-fake-{record.index}"
        if not body.get("stream") or script.ignore_stream:
            return await self._send_json(
                conn, record, 200, completion_body(script, body, reply_id)
            )
        return await self._stream(
            conn, record, script, build_frames(script, body, reply_id)
        )

    async def _send_error(
        self, conn: Connection, record: RecordedRequest, script: Script
    ) -> bool:
        body = script.error_body or {
            "error": {"message": "error", "type": "server_error"}
        }
        return await self._send_json(conn, record, script.status, body, script.headers)

    async def _send_json(
        self,
        conn: Connection,
        record: RecordedRequest,
        status: int,
        payload: Any,
        headers: Mapping[str, str] | None = None,
    ) -> bool:
        data = dumps(payload).encode()
        extra = "".join(f"{k}: {v}\r\n" for k, v in (headers or {}).items())
        head = (
            f"HTTP/1.1 {status} {http.HTTPStatus(status).phrase}\r\n"
            f"content-type: application/json\r\ncontent-length: {len(data)}\r\n{extra}\r\n"
        )
        record.status = status
        await conn.write(head.encode() + data)
        record.completed = True
        self._changed()
        return True

    async def _stream(
        self,
        conn: Connection,
        record: RecordedRequest,
        script: Script,
        frames: list[bytes],
    ) -> bool:
        extra = "".join(f"{k}: {v}\r\n" for k, v in script.headers.items())
        head = (
            "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream; charset=utf-8\r\n"
            f"cache-control: no-cache\r\ntransfer-encoding: chunked\r\n{extra}\r\n"
        )
        record.status = 200
        await conn.write(head.encode())
        pending: list[bytes] = []

        async def flush() -> None:
            if not pending:
                return
            data = b"".join(pending)
            await conn.write(b"%x\r\n%s\r\n" % (len(data), data))
            record.chunks_sent += len(pending)
            pending.clear()
            self._changed()

        def gone() -> bool:
            record.disconnected = True
            self._changed()
            return False

        paced = script.chunk_delay > 0
        try:
            for i in range(len(frames) + 1):
                pause_here = paced and 0 < i < len(frames)
                if pause_here or i in (
                    script.drop_after,
                    script.error_after,
                    script.stall_after,
                ):
                    await flush()
                if script.drop_after == i:
                    conn.abort(script.drop_mode)
                    return False
                if script.error_after == i:
                    pending.append(_error_frame(script.error_message))
                    break
                if script.stall_after == i and await conn.stall(
                    self._take_release, self._release_signal
                ):
                    return gone()
                if pause_here and await conn.pause(script.chunk_delay):
                    return gone()
                if i == len(frames):
                    break
                pending.append(frames[i])
                if len(pending) >= script.batch:
                    await flush()
                if conn.peer_closed.is_set():
                    return gone()
            await flush()
            await conn.write(b"0\r\n\r\n")
        except (Closed, ConnectionError):
            return gone()
        record.completed = True
        self._changed()
        return True


def _error_frame(message: str) -> bytes:
    error = {"error": {"message": message, "type": "server_error", "code": None}}
    return f"data: {dumps(error)}\n\n".encode()


# --------------------------------------------------------------------------- fixtures


# Registered under the short names; the function names differ so that a test module
# importing them does not shadow its own `fake_llm` parameters (ruff F811).
@pytest.fixture(name="fake_llm")
async def fake_llm_fixture() -> AsyncIterator[FakeLLMServer]:
    """A fake LLM server running in the test's event loop."""
    async with FakeLLMServer() as server:
        yield server


@pytest.fixture(name="fake_llm_in_thread")
def fake_llm_in_thread_fixture() -> Iterator[FakeLLMServer]:
    """A fake LLM server running in its own thread (for sync and subprocess tests)."""
    with FakeLLMServer() as server:
        yield server


__all__ = [
    "CREATED",
    "Chunk",
    "FakeLLMServer",
    "RecordedRequest",
    "Script",
    "echo_script",
    "fake_llm_fixture",
    "fake_llm_in_thread_fixture",
    "function_call_fragment",
    "split_words",
    "tool_fragment",
]
