"""A minimal terminal for measuring the real app: a pty, a reader, frame boundaries.

`Terminal` runs a command on a pseudo-terminal of a fixed size and reads everything it
writes on a thread, stamping each read with CLOCK_MONOTONIC. It answers Textual's query
for synchronized output (`CSI ? 2026 $ p` → "supported"), so every frame the app draws
arrives wrapped in `CSI ? 2026 h` … `CSI ? 2026 l`: the end marker is the moment the
frame is complete on the terminal side. Keys are written as a legacy xterm sends them.

Text is found in the raw output: a word the app draws in one style run is written
contiguously (escape sequences only sit between runs), which holds for the markers the
benchmarks look for (`FIRSTTOKEN`, `LASTTOKEN`, thread titles).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import struct
import subprocess
import termios
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

_ESCAPES = re.compile(
    rb"\x1b\[[0-9;?<>=$]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(\x07|\x1b\\)|\x1b."
)
SYNC_QUERY = b"\x1b[?2026$p"
SYNC_REPLY = b"\x1b[?2026;2$y"
SYNC_END = b"\x1b[?2026l"

KEYS: dict[str, bytes] = {
    "enter": b"\r",
    "up": b"\x1b[A",
    "down": b"\x1b[B",
    "home": b"\x1b[H",
    "end": b"\x1b[F",
    "pageup": b"\x1b[5~",
    "pagedown": b"\x1b[6~",
    "tab": b"\t",
    "ctrl+q": b"\x11",
}


@dataclass
class Output:
    """Everything the app wrote, with read times and frame ends."""

    data: bytearray = field(default_factory=bytearray)
    reads: list[tuple[float, int]] = field(default_factory=list)
    """(time, end offset in `data`) of every read."""
    frame_ends: list[tuple[float, int]] = field(default_factory=list)
    """(time, offset just after `CSI ? 2026 l`) of every complete frame."""


class Terminal:
    """A command on a pty (see the module docstring)."""

    def __init__(
        self,
        argv: Sequence[str],
        *,
        env: Mapping[str, str],
        cwd: Path,
        size: tuple[int, int] = (120, 40),
    ) -> None:
        columns, rows = size
        master, slave = os.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, columns, 0, 0))
        self.master = master
        self.out = Output()
        self._cond = threading.Condition()
        self._closed = False
        env = {**env, "TERM": "xterm-256color", "COLORTERM": "truecolor"}
        self.t_spawn = time.monotonic()
        self.proc = subprocess.Popen(
            list(argv),
            stdin=slave,
            stdout=slave,
            stderr=slave,
            cwd=cwd,
            env=env,
            start_new_session=True,
            close_fds=True,
        )
        os.close(slave)
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    @property
    def pid(self) -> int:
        return self.proc.pid

    # ------------------------------------------------------------------ reading

    def _read(self) -> None:
        answered = False
        tail = b""
        while True:
            try:
                chunk = os.read(self.master, 1 << 16)
            except OSError:
                break
            if not chunk:
                break
            now = time.monotonic()
            with self._cond:
                out = self.out
                start = len(out.data)
                out.data += chunk
                out.reads.append((now, len(out.data)))
                window = tail + chunk
                base = start - len(tail)
                index = window.find(SYNC_END)
                while index != -1:
                    out.frame_ends.append((now, base + index + len(SYNC_END)))
                    index = window.find(SYNC_END, index + 1)
                tail = window[-(len(SYNC_END) - 1) :]
                self._cond.notify_all()
            if not answered and SYNC_QUERY in out.data:
                answered = True
                self.write(SYNC_REPLY)
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def tail(self, chars: int = 300) -> str:
        """The end of the output as plain text (escape sequences removed)."""
        text = _ESCAPES.sub(b" ", bytes(self.out.data[-20_000:]))
        return " ".join(text.decode("utf-8", "replace").split())[-chars:]

    def mark(self) -> int:
        """The current end of the output (search after it)."""
        with self._cond:
            return len(self.out.data)

    def wait_text(
        self, needle: bytes | str, *, after: int = 0, timeout: float = 30
    ) -> float:
        """The read time of the output that completed `needle` (after offset `after`).

        Raises:
            TimeoutError: When it did not appear in time.
        """
        if isinstance(needle, str):
            needle = needle.encode()
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                index = self.out.data.find(needle, after)
                if index != -1:
                    end = index + len(needle)
                    for when, offset in self.out.reads:
                        if offset >= end:
                            return when
                remaining = deadline - time.monotonic()
                if remaining <= 0 or self._closed:
                    raise TimeoutError(
                        f"{needle!r} never appeared on the terminal "
                        f"(exit status {self.proc.poll()}; last text: {self.tail()!r})"
                    )
                # Only new data can complete the needle: search the tail next time.
                after = max(after, len(self.out.data) - len(needle))
                self._cond.wait(remaining)

    def wait_frame(self, *, after: int, timeout: float = 10) -> float:
        """The time the first frame ending after output offset `after` completed."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for when, offset in self.out.frame_ends:
                    if offset > after:
                        return when
                remaining = deadline - time.monotonic()
                if remaining <= 0 or self._closed:
                    raise TimeoutError("no frame arrived")
                self._cond.wait(remaining)

    def quiet(self, period: float = 0.25, timeout: float = 30) -> None:
        """Wait until the app wrote nothing for `period` seconds (bounded)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._cond:
                last = self.out.reads[-1][0] if self.out.reads else self.t_spawn
            gap = time.monotonic() - last
            if gap >= period:
                return
            time.sleep(period - gap + 0.005)
        raise TimeoutError("the app never went quiet")

    def settle(self, mark: int, period: float = 0.3, timeout: float = 30) -> None:
        """Wait for the first frame after `mark`, then for `period` without output.

        `period` stays below the composer's cursor blink (0.5 s), whose frames would
        otherwise never let the terminal go quiet.
        """
        self.wait_frame(after=mark, timeout=timeout)
        self.quiet(period, timeout)

    @property
    def synchronized(self) -> bool:
        """True once the app wraps frames in synchronized-output markers."""
        with self._cond:
            return bool(self.out.frame_ends)

    # ------------------------------------------------------------------ writing

    def write(self, data: bytes) -> float:
        """Write bytes to the app's input; returns when they were written."""
        sent = time.monotonic()
        os.write(self.master, data)
        return sent

    def key(self, name: str) -> float:
        """Press a named key (see `KEYS`) or type one character."""
        return self.write(KEYS[name] if name in KEYS else name.encode())

    def type(self, text: str, pause: float = 0.005) -> None:
        """Type text one character at a time."""
        for char in text:
            self.write(char.encode())
            time.sleep(pause)

    # ------------------------------------------------------------------ ending

    def close(self, timeout: float = 10) -> int | None:
        """Quit the app with Ctrl+Q, then kill it if it lingers; its exit status."""
        if self.proc.poll() is None:
            with contextlib.suppress(OSError):
                self.key("ctrl+q")
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self._reader.join(5)
        with contextlib.suppress(OSError):
            os.close(self.master)
        return self.proc.returncode

    def __enter__(self) -> Terminal:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
