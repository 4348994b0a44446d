"""Per-process lock files that tell a live reply from one whose writer died.

Each engine instance holds `flock(LOCK_EX)` on `<locks_dir>/<instance_id>.lock` for its
whole life and stamps its instance id on the messages it streams. The kernel drops the
lock when the process dies, however it dies (`kill -9` included), so "can I take this
lock?" answers "is the writer dead?" without pid files that outlive their pid.

`flock` locks belong to an open file description, not to the process, so probing another
instance's file from this process never disturbs a lock held here (unlike POSIX `fcntl`
locks, which any close of any descriptor on the file drops, sqlite.org/howtocorrupt.html).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
from pathlib import Path

_INSTANCE_ID = re.compile(r"^[A-Za-z0-9_\-]{1,64}$")


class WriterLock:
    """The lock an engine instance holds while it lives."""

    def __init__(self, locks_dir: Path, instance_id: str) -> None:
        if not _INSTANCE_ID.match(instance_id):
            raise ValueError("instance ids are short letters, digits, - and _")
        self.locks_dir = locks_dir
        self.instance_id = instance_id
        self._fd: int | None = None

    @property
    def path(self) -> Path:
        """The lock file."""
        return self.locks_dir / f"{self.instance_id}.lock"

    @property
    def held(self) -> bool:
        """True between `acquire` and `release`."""
        return self._fd is not None

    def acquire(self) -> None:
        """Create the lock file and lock it (it must be free: the id is fresh).

        Raises:
            OSError: When the folder cannot be written or the lock is taken.
        """
        self.locks_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            os.ftruncate(fd, 0)
            os.write(fd, f"{os.getpid()}\n".encode())
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd

    def release(self) -> None:
        """Remove the lock file and drop the lock (idempotent)."""
        if self._fd is None:
            return
        # Unlink while still locked, so a prober never takes a lock on a file that is
        # about to disappear and mistakes us for dead while we still write.
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()
        os.close(self._fd)
        self._fd = None


def writer_alive(locks_dir: Path, instance_id: str | None) -> bool:
    """Whether the engine instance that stamped a message is still running.

    Args:
        locks_dir: The folder of lock files.
        instance_id: The `writer_id` of a streaming message (None: unknown writer).

    Returns:
        True when its lock is held by a live process; False when the file is missing
        or its lock can be taken (the owner died), in which case the stale file is
        removed.
    """
    if not instance_id or not _INSTANCE_ID.match(instance_id):
        return False
    path = locks_dir / f"{instance_id}.lock"
    try:
        fd = os.open(path, os.O_RDWR | os.O_CLOEXEC)
    except FileNotFoundError:
        return False
    except OSError:
        # Cannot even look (permissions): assume alive rather than steal a live reply.
        return True
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
        return False
    finally:
        os.close(fd)
