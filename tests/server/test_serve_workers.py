"""`tenex-tui serve --workers N`: several processes share one port, and stop together.

Linux-only checks (they read `/proc` to see which process owns which connection).
"""

from __future__ import annotations

import os
import queue
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tenex_tui.cli import main

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="reads /proc; fork-based workers"
)
WAIT = 30.0


def _state(pid: int) -> str | None:
    """The process state letter (None: gone)."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text.rsplit(")", 1)[1].split()[0]


def _alive(pid: int) -> bool:
    return _state(pid) not in (None, "Z", "X")


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid and fields[0] not in ("Z", "X"):
                found.append(int(entry.name))
    return found


def _until(predicate: object, timeout: float = WAIT) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return True
        time.sleep(0.02)  # polling /proc, bounded by the deadline
    return False


def _established(pid: int, port: int) -> int:
    """How many ESTABLISHED TCP sockets on local `port` the process `pid` owns."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    count = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            local_port = int(fields[1].rsplit(":", 1)[1], 16)
            if local_port == port and fields[3] == "01" and fields[9] in inodes:
                count += 1
    return count


@contextmanager
def serving(home: Path, workers: int) -> Iterator[tuple[subprocess.Popen[str], int]]:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in {"OPENAI_API_KEY", "OPENAI_BASE_URL"}
    }
    env["TENEX_HOME"] = str(home)
    child = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tenex_tui",
            "serve",
            "--port",
            "0",
            "--workers",
            str(workers),
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines: queue.Queue[str] = queue.Queue()

    def pump() -> None:
        assert child.stderr is not None
        for line in child.stderr:
            lines.put(line)

    threading.Thread(target=pump, daemon=True).start()
    try:
        port = None
        deadline = time.monotonic() + WAIT
        while port is None and time.monotonic() < deadline:
            line = lines.get(timeout=WAIT)
            found = re.search(r"serving http://127\.0\.0\.1:(\d+)/api/v1/chat", line)
            if found:
                assert f"in {workers} processes" in line
                port = int(found.group(1))
        assert port is not None
        yield child, port
    finally:
        if child.poll() is None:
            child.kill()
            child.wait(timeout=10)


def _get(port: int, token: str) -> socket.socket:
    """A kept-alive connection that has had one answered request."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=WAIT)
    sock.sendall(
        f"GET /api/v1/chat/threads HTTP/1.1\r\nHost: x\r\n"
        f"Authorization: Bearer {token}\r\n\r\n".encode()
    )
    data = b""
    while b"\r\n\r\n" not in data:
        part = sock.recv(65536)
        assert part, "the server closed the connection"
        data += part
    assert data.startswith(b"HTTP/1.1 200"), data[:100]
    return sock


def test_two_workers_share_the_port_and_stop_together_on_ctrl_c(
    capsys: pytest.CaptureFixture[str], tenex_home: Path
) -> None:
    assert main(["keys", "create"]) == 0
    token = capsys.readouterr().out.strip()
    with serving(tenex_home, 2) as (parent, port):
        assert _until(lambda: len(_children(parent.pid)) == 1)
        [worker] = _children(parent.pid)
        # 32 connections: the kernel spreads them over both processes' sockets.
        socks = [_get(port, token) for _ in range(32)]
        try:
            here, there = _established(parent.pid, port), _established(worker, port)
            assert here + there == 32
            assert here > 0 and there > 0
        finally:
            for sock in socks:
                sock.close()
        parent.send_signal(signal.SIGINT)
        assert parent.wait(timeout=WAIT) in (0, 130)
        assert _until(lambda: not _alive(worker))


def test_a_worker_whose_parent_dies_stops_too(tenex_home: Path) -> None:
    with serving(tenex_home, 2) as (parent, _port):
        assert _until(lambda: len(_children(parent.pid)) == 1)
        [worker] = _children(parent.pid)
        parent.kill()
        parent.wait(timeout=WAIT)
        assert _until(lambda: not _alive(worker))


def test_workers_is_a_small_positive_number(
    capsys: pytest.CaptureFixture[str], tenex_home: Path
) -> None:
    assert main(["serve", "--workers", "0"]) == 2
    assert "--workers is 1 to" in capsys.readouterr().err
