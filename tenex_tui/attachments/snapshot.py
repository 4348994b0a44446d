"""Path safety and the attach-time snapshot (test-plan T45–T47, T54).

`take_snapshot` reads a file the way an attachment must be read:

1. The path text: no NUL, at most 4 KiB. The display name is the base name only.
2. Where it leads: the resolved path must not be one of tenex-tui's own files and must
   sit inside `allowed_roots` when those are given; `lstat` refuses symlinks and
   special files (FIFOs, devices, sockets, folders) without opening them.
3. The open: `O_NOFOLLOW | O_NONBLOCK`, then `fstat` on the descriptor, which must be the
   same regular file `lstat` saw (a path swapped in between is refused, not followed),
   and, with allowed roots, the kernel's path of the descriptor is checked again.
4. The size from `fstat` against the cap, before reading; then at most the cap is read
   and one more byte is probed, so a file that grows while it is read is cut at the cap
   and marked as grown.

The bytes returned are the snapshot: nothing touches the path again, so what is sent is
exactly what was read at attach time.
"""

from __future__ import annotations

import errno
import os
import re
import stat
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from tenex_tui.attachments.limits import AttachmentLimits, format_limit, format_size
from tenex_tui.core.errors import AttachmentError
from tenex_tui.core.text import sanitize_line

PathArg = str | os.PathLike[str]
"""A path as callers hold it."""

_OPEN_FLAGS = (
    os.O_RDONLY
    | getattr(os, "O_NOFOLLOW", 0)
    | getattr(os, "O_NONBLOCK", 0)
    | getattr(os, "O_CLOEXEC", 0)
    | getattr(os, "O_NOCTTY", 0)
)
_READ_CHUNK = 1024 * 1024
_SEPARATORS = re.compile(r"[/\\]")


@dataclass(frozen=True, slots=True)
class Snapshot:
    """A file's bytes as read at attach time."""

    name: str
    """The display name (base name only)."""
    data: bytes
    """At most `max_file_bytes`."""
    grown: bool
    """The file held more than the cap when it was read (it grew after `fstat`)."""


def display_name(path: PathArg) -> str:
    """The name an attachment is shown and sent under: the base name only.

    Backslashes count as separators too, so a name that came from another system never
    carries a path component; control characters become visible symbols.

    Args:
        path: The path as given.

    Returns:
        At most 255 characters; `attachment` when the path has no usable base name.
    """
    raw = os.fspath(path)
    base = _SEPARATORS.split(raw.rstrip("/\\"))[-1]
    if base in ("", ".", ".."):
        base = "attachment"
    return sanitize_line(base, max_chars=255)


def short_name(name: str) -> str:
    """A display name cut for a sentence."""
    return sanitize_line(name, max_chars=80)


def _os_error(label: str, exc: OSError) -> AttachmentError:
    code = exc.errno
    if code == errno.ENOENT:
        return AttachmentError(f"{label} was not found")
    if code in (errno.EACCES, errno.EPERM):
        return AttachmentError(f"{label} could not be read (permission denied)")
    if code == errno.ELOOP:
        return AttachmentError(
            f"{label} is a symbolic link; attach the file it points to instead"
        )
    if code == errno.ENXIO:
        return AttachmentError(f"{label} is a socket or a device, not a regular file")
    if code == errno.ENAMETOOLONG:
        return AttachmentError(f"{label} cannot be attached: its name is too long")
    if code == errno.EISDIR:
        return AttachmentError(f"{label} is a folder, not a file")
    if code == errno.ENOTDIR:
        return AttachmentError(
            f"{label} was not found (a part of its path is not a folder)"
        )
    reason = exc.strerror or "unknown error"
    return AttachmentError(f"{label} could not be read ({reason.lower()})")


def _not_regular(label: str, mode: int) -> AttachmentError:
    if stat.S_ISDIR(mode):
        what = "a folder, not a file"
    elif stat.S_ISFIFO(mode):
        what = "a named pipe, not a regular file"
    elif stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        what = "a device, not a regular file"
    elif stat.S_ISSOCK(mode):
        what = "a socket, not a regular file"
    elif stat.S_ISLNK(mode):
        return AttachmentError(
            f"{label} is a symbolic link; attach the file it points to instead"
        )
    else:
        what = "not a regular file"
    return AttachmentError(f"{label} is {what}")


def _check_path_text(raw: str, label: str, limits: AttachmentLimits) -> None:
    if "\x00" in raw:
        raise AttachmentError(f"{label} cannot be attached: its path contains a NUL")
    try:
        encoded = os.fsencode(raw)
    except UnicodeError as exc:
        raise AttachmentError(
            f"{label} cannot be attached: its path is not valid text"
        ) from exc
    if len(encoded) > limits.max_path_bytes:
        raise AttachmentError(
            f"{label} cannot be attached: its path is longer than "
            f"{format_limit(limits.max_path_bytes)}"
        )


def _inodes(paths: Iterable[Path]) -> set[tuple[int, int]]:
    found: set[tuple[int, int]] = set()
    for path in paths:
        try:
            info = os.stat(path)
        except OSError:
            continue
        found.add((info.st_dev, info.st_ino))
    return found


def _check_place(
    raw: str, label: str, limits: AttachmentLimits
) -> set[tuple[int, int]]:
    """Refuse protected files and files outside the allowed roots, by resolved path."""
    real = os.path.realpath(raw)
    protected = {os.path.realpath(p) for p in limits.protected_paths}
    if real in protected:
        raise AttachmentError(
            f"{label} is one of tenex-tui's own files; it cannot be attached"
        )
    if limits.allowed_roots and not _inside_roots(real, limits):
        raise AttachmentError(
            f"{label} is outside the folders attachments may come from"
        )
    return _inodes(Path(p) for p in protected)


def _fd_path(fd: int) -> str | None:
    """Where the kernel says an open descriptor's file is (None when it cannot say)."""
    try:
        target = os.readlink(f"/proc/self/fd/{fd}")
    except OSError:
        target = None
    if target is not None:
        return None if target.endswith(" (deleted)") else target
    try:
        import fcntl

        getpath = getattr(fcntl, "F_GETPATH", None)  # macOS
        if getpath is None:
            return None
        raw = fcntl.fcntl(fd, getpath, bytes(1024))
    except OSError:
        return None
    return os.fsdecode(raw.split(b"\0", 1)[0])


def _inside_roots(real: str, limits: AttachmentLimits) -> bool:
    roots = [Path(os.path.realpath(root)) for root in limits.allowed_roots]
    return any(Path(real).is_relative_to(root) for root in roots)


def _fd_inside(
    fd: int, raw: str, identity: tuple[int, int], limits: AttachmentLimits
) -> bool:
    """Re-check the allowed roots on the open descriptor (T46).

    The resolved path was checked before the open, but a folder on the way can be
    swapped for a symlink in between; the kernel's own path of the descriptor is what
    was really opened. Where the platform cannot tell, the path is resolved again and
    must still name the same file.
    """
    where = _fd_path(fd)
    if where is not None:
        return _inside_roots(where, limits)
    real = os.path.realpath(raw)
    try:
        now = os.stat(real)
    except OSError:
        return False
    return _inside_roots(real, limits) and (now.st_dev, now.st_ino) == identity


def _read_capped(fd: int, size_hint: int, cap: int) -> tuple[bytes, bool]:
    """Read at most `cap` bytes; report whether there was more (the file grew).

    The first read asks for the whole expected file, so a file that does not change is
    read in one chunk and joined without a copy; the probe for growth reads one byte
    and keeps it out of the snapshot, so no cut copy is ever made.
    """
    chunks: list[bytes] = []
    got = 0
    want = max(1, min(size_hint, cap))
    while got < cap:
        chunk = os.read(fd, min(want, cap - got))
        if not chunk:
            return b"".join(chunks), False
        chunks.append(chunk)
        got += len(chunk)
        want = _READ_CHUNK
    return b"".join(chunks), bool(os.read(fd, 1))


def take_snapshot(path: PathArg, limits: AttachmentLimits) -> Snapshot:
    """Read a file for attaching, after every check in the module docstring.

    Args:
        path: The file as the user gave it.
        limits: `max_path_bytes`, `allowed_roots`, `protected_paths` and
            `max_file_bytes` apply.

    Returns:
        The snapshot.

    Raises:
        AttachmentError: One sentence naming the file.
    """
    raw = os.fspath(path)
    name = display_name(raw)
    label = short_name(name)
    _check_path_text(raw, label, limits)
    try:
        protected = _check_place(raw, label, limits)
        before = os.lstat(raw)
    except OSError as exc:
        raise _os_error(label, exc) from exc
    if not stat.S_ISREG(before.st_mode):
        raise _not_regular(label, before.st_mode)
    if (before.st_dev, before.st_ino) in protected:
        raise AttachmentError(
            f"{label} is one of tenex-tui's own files; it cannot be attached"
        )
    try:
        fd = os.open(raw, _OPEN_FLAGS)
    except OSError as exc:
        raise _os_error(label, exc) from exc
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise _not_regular(label, info.st_mode)
        identity = (info.st_dev, info.st_ino)
        if identity != (before.st_dev, before.st_ino) or identity in protected:
            raise AttachmentError(
                f"{label} changed while it was being attached; try again"
            )
        if limits.allowed_roots and not _fd_inside(fd, raw, identity, limits):
            raise AttachmentError(
                f"{label} changed while it was being attached, or leads outside the "
                "folders attachments may come from"
            )
        cap = limits.max_file_bytes
        if info.st_size > cap:
            raise AttachmentError(
                f"{label} is {format_size(info.st_size)}; the limit is "
                f"{format_limit(cap)}"
            )
        data, grown = _read_capped(fd, info.st_size, cap)
    except OSError as exc:
        raise _os_error(label, exc) from exc
    finally:
        os.close(fd)
    return Snapshot(name, data, grown)
