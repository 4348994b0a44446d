"""Run the real app in a pseudo-terminal and capture every byte it writes (test-plan H4).

`capture(db_path, ...)` forks a pty, runs this module as a script in the child (the app on
the prepared database, no model), lets it paint, then has it exit by itself, and returns
the raw bytes the terminal would have received. Tests assert that no escape sequence from
*content* reaches the terminal (T26–T28) and that a crash prints no secret (T40).

Run as a script (the child side)::

    python -m tests.support.pty_capture DB_PATH [--exit-after SECONDS] [--crash]
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import os
import pty
import select
import signal
import struct
import sys
import termios
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def capture(
    db_path: Path,
    *,
    home: Path,
    exit_after: float = 1.5,
    crash: bool = False,
    size: tuple[int, int] = (100, 30),
    timeout: float = 20.0,
) -> bytes:
    """Run the app on `db_path` in a pty and return what it wrote.

    Args:
        db_path: A database prepared by the test (opened without a model).
        home: `TENEX_HOME` for the child.
        exit_after: Seconds after the first thread is shown before the app exits.
        crash: Make the app raise with an API key in a local variable instead.
        size: Columns and rows of the pseudo-terminal.
        timeout: Hard limit; the child is killed after it.
    """
    argv = [sys.executable, "-m", "tests.support.pty_capture", str(db_path)]
    argv += ["--exit-after", str(exit_after)]
    if crash:
        argv.append("--crash")
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home),
        "TENEX_HOME": str(home),
        "TERM": "xterm-256color",
        "COLORTERM": "truecolor",
        "PYTHONPATH": str(REPO),
        "LANG": "C.UTF-8",
    }
    pid, fd = pty.fork()
    if pid == 0:  # the child: become the app
        os.chdir(REPO)
        os.execve(argv[0], argv, env)
    columns, rows = size
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, columns, 0, 0))
    output = bytearray()
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([fd], [], [], 0.2)
            if not ready:
                finished, _status = os.waitpid(pid, os.WNOHANG)
                if finished:
                    break
                continue
            try:
                chunk = os.read(fd, 65536)
            except OSError:  # EIO: the child closed the terminal
                break
            if not chunk:
                break
            output += chunk
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, 0)
        os.close(fd)
    return bytes(output)


def _child(db_path: Path, exit_after: float, crash: bool) -> None:
    from tenex_tui.engine.engine import LocalEngine
    from tenex_tui.ui.app import TenexApp

    async def factory() -> LocalEngine:
        return await LocalEngine.open(db_path)

    class CaptureApp(TenexApp):
        def on_mount(self) -> None:
            super().on_mount()
            self.set_timer(exit_after, self._finish)

        async def _finish(self) -> None:
            if crash:
                api_key = "tnx_test_CANARYSECRET0123456789abcdef"
                raise RuntimeError("the sync failed for key " + api_key)
            await self.action_quit()

    CaptureApp(factory).run()


def main() -> None:
    """The child side: run the app on a database and exit after a while."""
    parser = argparse.ArgumentParser()
    parser.add_argument("db_path", type=Path)
    parser.add_argument("--exit-after", type=float, default=1.5)
    parser.add_argument("--crash", action="store_true")
    args = parser.parse_args()
    _child(args.db_path, args.exit_after, args.crash)


if __name__ == "__main__":
    main()
