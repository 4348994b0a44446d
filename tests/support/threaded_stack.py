"""The project's server (`serve_stack`) running in its own thread and event loop.

CLI commands run their own `asyncio.run`, so a test that calls `main([...])` in-process
cannot share its event loop with the server. `threaded_stack(tmp_path)` starts the
stack in a background thread; `call(coro_fn)` runs a coroutine on the server's loop
(to seed or inspect data through the engine) and waits for it, bounded.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable, Iterator
from concurrent.futures import Future
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from tests.support.server_fixture import Stack, serve_stack

T = TypeVar("T")

START_TIMEOUT = 30.0
CALL_TIMEOUT = 30.0


class ThreadedStack:
    """A `Stack` served from a background thread."""

    def __init__(self, tmp_path: Path, **kwargs: Any) -> None:
        self._tmp_path = tmp_path
        self._kwargs = kwargs
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stack: Stack | None = None
        self._ready = threading.Event()
        self._stop: asyncio.Event | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._main, daemon=True)

    @property
    def stack(self) -> Stack:
        assert self._stack is not None
        return self._stack

    @property
    def base_url(self) -> str:
        return self.stack.base_url

    def key(self, name: str = "a1") -> str:
        """The clear `tnx_…` key of scope `name` (for a child's environment)."""
        return self.stack.keys[name].reveal()

    def _main(self) -> None:
        asyncio.run(self._serve())

    async def _serve(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        try:
            async with serve_stack(self._tmp_path, **self._kwargs) as stack:
                self._stack = stack
                self._ready.set()
                await self._stop.wait()
        except BaseException as exc:
            self._error = exc
            self._ready.set()

    def start(self) -> ThreadedStack:
        self._thread.start()
        if not self._ready.wait(START_TIMEOUT):
            raise TimeoutError("the server did not start")
        if self._error is not None:
            raise RuntimeError("the server failed to start") from self._error
        return self

    def call(self, fn: Callable[[Stack], Awaitable[T]]) -> T:
        """Run `fn(stack)` on the server's loop and return its result."""
        assert self._loop is not None

        async def run() -> T:
            return await fn(self.stack)

        future: Future[T] = asyncio.run_coroutine_threadsafe(run(), self._loop)
        return future.result(CALL_TIMEOUT)

    def stop(self) -> None:
        """Stop serving (idempotent)."""
        if not self._thread.is_alive():
            return
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(START_TIMEOUT)


@contextmanager
def threaded_stack(tmp_path: Path, **kwargs: Any) -> Iterator[ThreadedStack]:
    """Serve a stack from a background thread for the `with` block."""
    running = ThreadedStack(tmp_path, **kwargs).start()
    try:
        yield running
    finally:
        running.stop()
