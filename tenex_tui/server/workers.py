"""`tenex-tui serve --workers N`: N processes accepting on one listening socket.

One process runs one event loop, and one event loop uses at most one core: past a few
hundred concurrent streams (DESIGN.md §8 asks for 500) the loop itself is the limit.
With `--workers N` the parent binds the socket, then forks N-1 children before any
engine, thread or event loop exists; every process (the parent too) opens its own
engine on the same database and listens on its own `SO_REUSEPORT` socket of the port,
and the kernel spreads new connections evenly over them.

What crosses processes works through the database, as it does for two `tenex-tui`
processes on one file: a reply is streamed by the process that received its send; a
resume or a cancel that lands on another worker is served from the stored events (its
live tail lags by the checkpoint and poll intervals, ~0.1–0.35 s) and reaches the writer
through the stop flag at its next checkpoint. Idempotency records live in the database,
but two retries of one request that arrive at the same instant on two workers are not
serialised by the in-process gate.

Ctrl+C reaches every process of the terminal's process group; a SIGTERM to the parent
is passed on to the children when the parent's server has stopped; a child whose parent
dies is sent SIGTERM by the kernel (Linux). Forking needs a POSIX system.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import sys
import threading
import time
import traceback
from collections.abc import Callable

log = logging.getLogger("tenex_tui.server")

MAX_WORKERS = 64
"""A sanity cap: a worker per core is the useful range."""
STOP_SECONDS = 15.0
"""How long the parent waits for its children to stop before killing them."""


class WorkersUnavailable(RuntimeError):
    """Several workers cannot be started here (no fork, or threads already running)."""


def check_can_fork() -> None:
    """Refuse early when forking workers would be unsafe or impossible.

    Raises:
        WorkersUnavailable: Without `os.fork`, or when other threads already run
            (a fork copies only the calling thread, and locks held by the others).
    """
    if not hasattr(os, "fork"):
        raise WorkersUnavailable("--workers needs a POSIX system (fork)")
    if threading.active_count() > 1:
        raise WorkersUnavailable(
            "--workers must fork before any thread starts; "
            f"{threading.active_count() - 1} other thread(s) are running"
        )


def run_workers(count: int, serve: Callable[[int], int]) -> int:
    """Run `serve(index)` in `count` processes: this one (0) and `count - 1` children.

    Args:
        count: How many processes serve.
        serve: Serves until told to stop; returns an exit status. Called once in
            every process, after the fork, with the worker's index.

    Returns:
        This process's exit status (the children's are reaped, not returned).

    Raises:
        WorkersUnavailable: See `check_can_fork`.
    """
    check_can_fork()
    parent = os.getpid()
    children: list[int] = []
    for index in range(1, count):
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:
            _child(parent, index, serve)  # never returns
        children.append(pid)
    try:
        return serve(0)
    finally:
        stop_children(children)


def _child(parent: int, index: int, serve: Callable[[int], int]) -> None:
    status = 1
    try:
        _exit_with(parent)
        status = serve(index)
    except KeyboardInterrupt:
        status = 130
    except BaseException:
        traceback.print_exc()
    finally:
        with contextlib.suppress(Exception):
            sys.stdout.flush()
            sys.stderr.flush()
        # Never run the parent's cleanup (atexit, finally blocks up the stack) twice.
        os._exit(status)


def _exit_with(parent: int) -> None:
    """Ask the kernel for SIGTERM when the parent dies (Linux), so no worker is orphaned."""
    if sys.platform.startswith("linux"):
        with contextlib.suppress(Exception):
            import ctypes

            libc = ctypes.CDLL(None, use_errno=True)
            pr_set_pdeathsig = 1
            libc.prctl(pr_set_pdeathsig, signal.SIGTERM)
    if os.getppid() != parent:
        os._exit(0)  # The parent died before the request took effect.


def stop_children(children: list[int], timeout: float = STOP_SECONDS) -> None:
    """SIGTERM every child still running, wait (bounded), then SIGKILL the rest."""
    for pid in children:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    waiting = list(children)
    while waiting and time.monotonic() < deadline:
        for pid in list(waiting):
            try:
                done, _ = os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                done = pid
            if done:
                waiting.remove(pid)
        if waiting:
            time.sleep(0.05)  # Shutdown path, bounded by the deadline.
    for pid in waiting:
        log.warning("worker %d did not stop in %g s; killing it", pid, timeout)
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, 0)


__all__ = [
    "MAX_WORKERS",
    "WorkersUnavailable",
    "check_can_fork",
    "run_workers",
    "stop_children",
]
