"""The budgets every attachment is held to, and how sizes read in messages.

The figures follow the peers the test plan cites (LibreChat's per-file, per-message and
token limits; ogx-ai's 1000-entry zip cap; pinchy's central-directory check) and the
measured failure modes of python-docx and pypdf (test-plan V8). They live in one frozen
dataclass so the CLI, the app and the engine load files under the same rules, and tests
can shrink them to exercise the edges quickly.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

KIB = 1024
MIB = 1024 * KIB
GIB = 1024 * MIB


@dataclass(frozen=True, slots=True)
class AttachmentLimits:
    """Caps applied while loading attachments.

    Every cap is checked before the work it protects: sizes from `fstat` before reading,
    the zip central directory before decompressing, and a child process with a memory
    and time limit around the PDF, DOCX and HTML parsers.
    """

    max_file_bytes: int = 10 * MIB
    """Largest file that is read at all."""
    max_message_bytes: int = 20 * MIB
    """Total size of the files attached to one message."""
    max_file_chars: int = 200_000
    """Extracted text kept per file; the rest is cut with an explicit marker."""
    max_message_chars: int = 400_000
    """Extracted text kept per message, across its files."""
    max_files: int = 10
    """Files attached to one message."""
    zip_max_unpacked_bytes: int = 50 * MIB
    """Declared (and streamed) uncompressed total of a DOCX archive."""
    zip_max_entries: int = 1000
    """Members of a DOCX archive."""
    zip_max_ratio: int = 100
    """Largest compression ratio accepted for a member (or the archive) over 1 MiB."""
    zip_max_directory_bytes: int = 1 * MIB
    """Largest zip central directory read (bounds the memory of listing members)."""
    parser_timeout: float = 10.0
    """Wall-clock seconds a parser child process may run before it is killed."""
    parser_memory_bytes: int = 512 * MIB
    """Address-space limit (`RLIMIT_AS`) of the parser child process."""
    max_path_bytes: int = 4 * KIB
    """Longest path accepted (a longer one is refused before any system call)."""
    allowed_roots: tuple[Path, ...] = ()
    """When not empty, files must resolve inside one of these folders."""
    protected_paths: tuple[Path, ...] = ()
    """Files never opened, whatever the path says (tenex-tui's own database and keys:
    closing a second descriptor of an open SQLite file drops its POSIX locks)."""

    def __post_init__(self) -> None:
        for name in (
            "max_file_bytes",
            "max_message_bytes",
            "max_file_chars",
            "max_message_chars",
            "max_files",
            "zip_max_unpacked_bytes",
            "zip_max_entries",
            "zip_max_ratio",
            "zip_max_directory_bytes",
            "parser_memory_bytes",
            "max_path_bytes",
        ):
            if getattr(self, name) <= 0:
                raise ValueError(f"AttachmentLimits.{name} must be positive")
        if not self.parser_timeout > 0:
            raise ValueError("AttachmentLimits.parser_timeout must be positive")


def format_size(size: int) -> str:
    """Render a byte count for a sentence, rounded up so a size over a cap never reads
    as equal to it.

    Args:
        size: A number of bytes.

    Returns:
        `512 bytes`, `1.5 KB`, `10.1 MB`, `2.0 GB` (binary units, one decimal).
    """
    if size < KIB:
        return "1 byte" if size == 1 else f"{size} bytes"
    for unit, label in ((GIB, "GB"), (MIB, "MB"), (KIB, "KB")):
        if size >= unit:
            return f"{math.ceil(size * 10 / unit) / 10:.1f} {label}"
    raise AssertionError("unreachable")  # pragma: no cover


def format_limit(size: int) -> str:
    """Render a cap: like `format_size`, without a trailing `.0` (`10 MB`, `1.5 KB`)."""
    text = format_size(size)
    return text.replace(".0 ", " ")
