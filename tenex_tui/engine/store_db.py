"""The SQLite connection: opening it safely, its pragmas, errors, and the DB thread.

Everything that touches `sqlite3` directly, apart from the SQL itself, lives here:

- `open_connection` refuses paths SQLite cannot protect (symlinks, hard links, network
  filesystems: sqlite.org/howtocorrupt.html), sets the pragmas every connection needs,
  applies pending migrations, and falls back to a read-only connection when the file or
  its folder cannot be written.
- `StoreConnection.write()` is the only way to start a write transaction, and it always
  says `BEGIN IMMEDIATE`: a deferred transaction that reads and then writes fails at once
  with `SQLITE_BUSY_SNAPSHOT` when another connection committed in between, whatever the
  busy timeout (FACTS.md, test-plan V6). It first checks that the path still names the
  file opened (T10): SQLite would go on writing to an unlinked file.
- `storage_error` maps SQLite's result codes onto the core storage errors.
- `DbThread` owns the single connection: sqlite-utils' `Database` must stay on the thread
  that opened it, and the event loop must never run SQL, so one worker thread runs every
  store call and async code awaits it.

Durability: `synchronous=NORMAL` in WAL mode, which survives any application crash
(`kill -9`), and `FULL` for the commit that ends a message (`write(durable=True)`), so a
finished reply also survives a power cut. Checkpoints of a streaming reply are cheap
NORMAL commits; losing the last few hundred milliseconds of a reply to a power cut is the
accepted trade.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import sqlite3
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import ParamSpec, TypeVar
from urllib.parse import quote

import sqlite_utils

from tenex_tui.core.errors import (
    DiskFull,
    StorageBusy,
    StorageCorrupt,
    StorageError,
    StorageGone,
    StorageReadOnly,
)

logger = logging.getLogger("tenex_tui.engine")
# A library logs; the application decides where logs go (the CLI configures handlers).
logger.addHandler(logging.NullHandler())

P = ParamSpec("P")
T = TypeVar("T")

SAFE_SQLITE_VERSION = (3, 51, 3)
"""Below this, the WAL-reset bug can corrupt a database under concurrent writers and
checkpoints (sqlite.org/wal.html#walresetbug); we warn, because Debian's Python links 3.40."""

NETWORK_FILESYSTEMS = frozenset(
    {
        "nfs",
        "nfs4",
        "cifs",
        "smb3",
        "smbfs",
        "afs",
        "9p",
        "ceph",
        "glusterfs",
        "lustre",
        "davfs",
        "fuse.sshfs",
        "fuse.rclone",
        "fuse.s3fs",
        "fuse.gcsfuse",
    }
)
"""Filesystems whose locking SQLite cannot trust (WAL needs shared memory on one host)."""

# Primary and extended result codes (sqlite3.h); Python 3.11 exposes them on the error.
_BUSY, _LOCKED, _READONLY, _IOERR, _CORRUPT, _FULL, _CANTOPEN, _NOTADB = (
    5,
    6,
    8,
    10,
    11,
    13,
    14,
    26,
)
_IOERR_WRITE = _IOERR | (3 << 8)
_IOERR_FSYNC = _IOERR | (4 << 8)
_IOERR_TRUNCATE = _IOERR | (6 << 8)
_DISK_FULL_CODES = frozenset({_FULL, _IOERR_WRITE, _IOERR_FSYNC, _IOERR_TRUNCATE})

_OCTAL = re.compile(r"\\([0-7]{3})")

BUSY_MESSAGE = "storage busy — another tenex-tui process may be running"
DISK_FULL_MESSAGE = "could not save — disk full or write failed"


def corrupt_message(path: Path, detail: str) -> str:
    """The sentence a user sees for a damaged database: the path and the next step."""
    return (
        f"The database {path} is damaged ({detail}). It was left untouched. "
        f"Move it aside (for example to {path.name}.corrupt-<date>, together with its "
        "-wal and -shm files) and start again, or try `sqlite3 "
        f"{path} .recover` to rescue what it holds."
    )


def removed_message(path: Path) -> str:
    """What a user sees when the database file vanished under a running engine."""
    return (
        f"The database file was removed — new messages would be lost ({path} was "
        "deleted or moved while tenex-tui was running; nothing more is written to "
        "it). Export what you need, then restart tenex-tui to create a new database, "
        "or put the file back first."
    )


def replaced_message(path: Path) -> str:
    """What a user sees when another file took the database's name."""
    return (
        f"The database file was replaced — new messages would be lost ({path} is no "
        "longer the file this session opened; nothing more is written). Restart "
        "tenex-tui to open the file now at that path."
    )


def storage_error(exc: sqlite3.Error, path: Path) -> StorageError:
    """Map a sqlite3 error onto the core storage error a user can act on.

    Args:
        exc: The error SQLite raised.
        path: The database file, named in corruption messages.

    Returns:
        `StorageBusy`, `StorageReadOnly`, `StorageCorrupt`, `DiskFull`, or a plain
        `StorageError` for anything else.
    """
    code = getattr(exc, "sqlite_errorcode", None)
    text = str(exc)
    if code is None:
        # Errors raised by the sqlite3 module itself (a closed connection, a misuse).
        return StorageError(f"storage error: {text}")
    primary = code & 0xFF
    if primary in (_BUSY, _LOCKED):
        return StorageBusy(BUSY_MESSAGE)
    if primary == _READONLY:
        return StorageReadOnly(f"The database {path} is read-only: {text}.")
    if primary in (_CORRUPT, _NOTADB):
        return StorageCorrupt(corrupt_message(path, text))
    if code in _DISK_FULL_CODES:
        return DiskFull(DISK_FULL_MESSAGE)
    if primary == _CANTOPEN:
        return StorageReadOnly(
            f"The database {path} cannot be opened for writing: {text}."
        )
    return StorageError(f"storage error: {text}")


def filesystem_type(
    path: Path, mounts_file: Path = Path("/proc/self/mounts")
) -> str | None:
    """The type of the filesystem holding `path`, from the mount table (Linux only).

    Args:
        path: Any path; its nearest existing ancestor is resolved.
        mounts_file: The mount table to read (tests pass a fake one).

    Returns:
        The type such as `ext4` or `nfs4`, or None when the table cannot be read.
    """
    try:
        table = mounts_file.read_text()
    except OSError:
        return None
    probe = path
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    target = str(probe.resolve())
    best, best_type = "", None
    for line in table.splitlines():
        parts = line.split()
        if len(parts) < 3:
            continue
        # Mount points escape spaces and tabs as octal (\040, \011).
        mount = _OCTAL.sub(lambda m: chr(int(m.group(1), 8)), parts[1])
        inside = target == mount or target.startswith(mount.rstrip("/") + "/")
        if inside and len(mount) >= len(best):
            best, best_type = mount, parts[2]
    return best_type


def check_path(path: Path) -> None:
    """Refuse database paths SQLite cannot keep safe (sqlite.org/howtocorrupt.html).

    Raises:
        StorageError: When the path is a symlink, has several hard links, or sits on
            a network filesystem.
    """
    if path.is_symlink():
        raise StorageError(
            f"The database {path} is a symbolic link; open the real file instead "
            "(two names for one database can corrupt it)."
        )
    if path.exists() and path.stat().st_nlink > 1:
        raise StorageError(
            f"The database {path} has more than one hard link; keep a single name for "
            "it (SQLite cannot lock a file reached by two names)."
        )
    fs_type = filesystem_type(path.parent)
    if fs_type in NETWORK_FILESYSTEMS:
        raise StorageError(
            f"The database {path} is on a network filesystem ({fs_type}); SQLite's "
            "locking does not work there. Keep the data folder on a local disk."
        )


@dataclass
class StoreConnection:
    """The one SQLite connection of an engine, and how writes go through it."""

    db: sqlite_utils.Database
    """The sqlite-utils wrapper (migrations use it)."""
    path: Path
    read_only: bool
    """True when the file or its folder cannot be written (or was opened read-only)."""
    identity: tuple[int, int] | None = None
    """`(st_dev, st_ino)` of the file when it was opened; None: not checked."""

    @property
    def conn(self) -> sqlite3.Connection:
        """The raw connection (isolation_level None: we issue BEGIN ourselves)."""
        return self.db.conn

    @contextmanager
    def write(self, *, durable: bool = False) -> Iterator[sqlite3.Connection]:
        """A write transaction: `BEGIN IMMEDIATE` … `COMMIT`, rolled back on error.

        Args:
            durable: Commit with `synchronous=FULL` (the final commit of a message).

        Raises:
            StorageReadOnly: On a read-only connection, before touching the file.
            StorageGone: When the file was removed, moved or replaced (`check_file`).
        """
        if self.read_only:
            raise StorageReadOnly(
                f"The database {self.path} is read-only; nothing can be changed."
            )
        self.check_file()
        conn = self.conn
        if durable:
            conn.execute("PRAGMA synchronous=FULL")
        try:
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
            try:
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
        finally:
            if durable:
                conn.execute("PRAGMA synchronous=NORMAL")

    def check_file(self) -> None:
        """Refuse to go on writing when the path no longer names the file we opened.

        SQLite keeps writing to an unlinked file without complaint, and everything
        written then vanishes when the process exits (test-plan T10). One `stat` of
        the path (~2 µs) before each write transaction is enough to notice.

        Raises:
            StorageGone: When the file was removed or moved away, or another file
                now has its name.
        """
        if self.identity is None:
            return
        try:
            found = os.stat(self.path)
        except FileNotFoundError:
            raise StorageGone(removed_message(self.path)) from None
        except OSError:
            return  # unreadable for another reason: SQLite reports its own error
        if (found.st_dev, found.st_ino) != self.identity:
            raise StorageGone(replaced_message(self.path))

    def close(self) -> None:
        """Close the connection (a clean close also checkpoints the WAL)."""
        self.conn.close()


def _connect(path: Path, busy_timeout_ms: int, mode: str | None) -> sqlite3.Connection:
    if mode is None:
        target, uri = str(path), False
    else:
        target, uri = f"file:{quote(str(path))}?{mode}", True
    conn = sqlite3.connect(
        target,
        isolation_level=None,
        timeout=busy_timeout_ms / 1000,
        uri=uri,
    )
    conn.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
    conn.execute("PRAGMA foreign_keys=ON")
    return conn


def _enable_wal(conn: sqlite3.Connection, busy_timeout_ms: int) -> None:
    # Outside any transaction (a journal_mode change inside one is silently ignored,
    # ricktaylor/hardy#599). Switching to WAL needs a moment of exclusive access, and
    # SQLite may answer BUSY without calling the busy handler when several processes
    # open a fresh file at once, so retry for up to the busy timeout.
    pause = threading.Event()  # never set: a plain wait on the DB thread
    attempts = max(1, busy_timeout_ms // 20)
    for attempt in range(attempts):
        try:
            mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
        except sqlite3.OperationalError as exc:
            if getattr(exc, "sqlite_errorcode", 0) & 0xFF not in (_BUSY, _LOCKED):
                raise
            if attempt == attempts - 1:
                raise
            pause.wait(0.02)
            continue
        if str(mode).lower() != "wal":
            raise StorageError(f"could not switch the database to WAL (got {mode!r})")
        return


def _check_not_truncated(conn: sqlite3.Connection, path: Path) -> None:
    # A file cut short still opens, and fails only when a missing page is read. When
    # there is no WAL to hold newer pages, page_count × page_size must fit in the file.
    wal = Path(f"{path}-wal")
    if wal.exists() and wal.stat().st_size > 0:
        return
    page_size = conn.execute("PRAGMA page_size").fetchone()[0]
    page_count = conn.execute("PRAGMA page_count").fetchone()[0]
    size = path.stat().st_size if path.exists() else 0
    if page_count and size and page_count * page_size > size:
        raise StorageCorrupt(
            corrupt_message(
                path,
                f"the file holds {size} bytes but its header says "
                f"{page_count * page_size}",
            )
        )


def open_connection(
    path: Path,
    *,
    busy_timeout_ms: int = 5000,
    read_only: bool = False,
) -> StoreConnection:
    """Open (creating if needed) and migrate the database; call it on the DB thread.

    Args:
        path: The database file.
        busy_timeout_ms: How long a write waits for another process's lock.
        read_only: Open with `mode=ro` (no writes, no migrations).

    Returns:
        The connection, read-only when the file or its folder cannot be written.

    Raises:
        StorageCorrupt: When the file is not a database or is damaged (never touched).
        StorageReadOnly: When it cannot be created, or needs migrating but cannot be
            written.
        StorageBusy: When another process holds the lock past the busy timeout.
        StorageError: When the path is unsafe (see `check_path`).
    """
    from tenex_tui.engine.migrations import apply_migrations

    path = Path(path)
    check_path(path)
    _log_version()
    if not read_only and _cannot_write(path):
        logger.warning("opening %s read-only: it or its folder is not writable", path)
        read_only = True
    if not read_only:
        try:
            path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            conn = _connect(path, busy_timeout_ms, None)
            try:
                _enable_wal(conn, busy_timeout_ms)
                conn.execute("PRAGMA synchronous=NORMAL")
                _check_not_truncated(conn, path)
                db = sqlite_utils.Database(conn)
                apply_migrations(db)
                # The file just opened, for `check_file` before every write.
                found = os.stat(path)
            except BaseException:
                conn.close()
                raise
            return StoreConnection(
                db=db,
                path=path,
                read_only=False,
                identity=(found.st_dev, found.st_ino),
            )
        except sqlite3.Error as exc:
            error = storage_error(exc, path)
            if not isinstance(error, StorageReadOnly) or not path.exists():
                raise error from None
            logger.warning("opening %s read-only: %s", path, error)
        except PermissionError as exc:
            if not path.exists():
                raise StorageReadOnly(
                    f"The database {path} cannot be created: {exc.strerror}."
                ) from None
    return _open_read_only(path, busy_timeout_ms)


def _cannot_write(path: Path) -> bool:
    # Root ignores file modes, so this only answers for ordinary users; SQLITE_READONLY
    # at open is the second line of defence.
    if not path.exists():
        return False
    if not os.access(path, os.W_OK):
        return True
    folder_writable = os.access(path.parent, os.W_OK)
    wal_files = (Path(f"{path}-wal"), Path(f"{path}-shm"))
    return not folder_writable and not all(
        f.exists() and os.access(f, os.W_OK) for f in wal_files
    )


def _open_read_only(path: Path, busy_timeout_ms: int) -> StoreConnection:
    from tenex_tui.engine.migrations import pending_migrations

    if not path.exists():
        raise StorageReadOnly(
            f"The database {path} does not exist and cannot be created."
        )
    last: sqlite3.Error | None = None
    # `mode=ro` needs the -shm file (or a writable folder) for a WAL database;
    # `immutable=1` reads the file as it stands when even that is impossible.
    for mode in ("mode=ro", "mode=ro&immutable=1"):
        conn = _connect(path, busy_timeout_ms, mode)
        try:
            conn.execute("PRAGMA query_only=ON")
            conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
            _check_not_truncated(conn, path)
            db = sqlite_utils.Database(conn)
            if pending_migrations(db):
                raise StorageReadOnly(
                    f"The database {path} needs upgrading but is read-only; make it "
                    "writable and start again."
                )
        except sqlite3.Error as exc:
            conn.close()
            error = storage_error(exc, path)
            if isinstance(error, StorageCorrupt):
                raise error from None
            last = exc
            continue
        except BaseException:
            conn.close()
            raise
        return StoreConnection(db=db, path=path, read_only=True)
    assert last is not None
    raise storage_error(last, path) from None


def backup_database(path: Path, dest: Path, busy_timeout_ms: int = 5000) -> None:
    """Copy a live database with SQLite's backup API (never a file copy, T9).

    Runs on its own read connection, so the engine's DB thread keeps checkpointing
    replies meanwhile. The copy is one consistent snapshot, including committed WAL
    content; it is written beside `dest` and renamed into place, and it is left in
    rollback-journal mode so it is one self-contained file.

    Raises:
        StorageError: The mapped SQLite error (`DiskFull`, `StorageBusy`, …).
    """
    partial = dest.with_name(dest.name + ".partial")
    try:
        source = _connect(path, busy_timeout_ms, "mode=ro")
        try:
            target = sqlite3.connect(str(partial), isolation_level=None)
            try:
                source.backup(target)
                target.execute("PRAGMA journal_mode=DELETE")
            finally:
                target.close()
        finally:
            source.close()
        os.replace(partial, dest)
    except sqlite3.Error as exc:
        partial.unlink(missing_ok=True)
        raise storage_error(exc, path) from None
    except OSError as exc:
        partial.unlink(missing_ok=True)
        raise StorageError(
            f"could not write the backup {dest}: {exc.strerror}"
        ) from None


def _log_version() -> None:
    version = sqlite3.sqlite_version_info
    logger.info("SQLite %s", sqlite3.sqlite_version)
    if version < SAFE_SQLITE_VERSION:
        logger.warning(
            "SQLite %s predates the WAL-reset fix (3.51.3); avoid running several "
            "writers on one database",
            sqlite3.sqlite_version,
        )


class DbThread:
    """One worker thread that owns the connection and runs every store call in turn."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._executor = ThreadPoolExecutor(
            max_workers=1, thread_name_prefix="tenex-db"
        )
        self.connection: StoreConnection | None = None

    def _call(self, fn: Callable[[], T]) -> T:
        try:
            result = fn()
        except sqlite3.Error as exc:
            raise storage_error(exc, self._path) from None
        finally:
            # No store call may leave a transaction open across the hop back to the
            # event loop: an open read transaction pins the WAL (test-plan T11).
            connection = self.connection
            if connection is not None:
                try:
                    leaked = connection.conn.in_transaction
                except sqlite3.ProgrammingError:
                    leaked = False
                if leaked:
                    connection.conn.execute("ROLLBACK")
                    raise StorageError(
                        f"internal error: {fn!r} left a transaction open"
                    )
        return result

    async def run(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """Run `fn(*args)` on the DB thread and return its result.

        Sqlite errors come back as core storage errors. If the awaiting task is
        cancelled, the call still runs to its end (a transaction is never cut short).

        Raises:
            StorageError: The mapped SQLite error.
        """
        future = self._executor.submit(self._call, partial(fn, *args, **kwargs))
        return await asyncio.wrap_future(future)

    def shutdown(self) -> None:
        """Close the connection on its own thread, then stop the thread."""

        def close() -> None:
            if self.connection is not None:
                self.connection.close()
                self.connection = None

        try:
            self._executor.submit(close).result()
        finally:
            self._executor.shutdown(wait=True)


__all__ = [
    "BUSY_MESSAGE",
    "DISK_FULL_MESSAGE",
    "DbThread",
    "StoreConnection",
    "backup_database",
    "check_path",
    "corrupt_message",
    "filesystem_type",
    "open_connection",
    "removed_message",
    "replaced_message",
    "storage_error",
]
