"""Decompression-bomb checks for zip archives (DOCX), before anything is inflated.

Two layers, after pinchy#486 and ogx-ai#6100 (test-plan T49):

1. `inspect_zip` reads only the end-of-central-directory records and the central
   directory (no member is decompressed) and refuses an archive whose *declared* sizes,
   entry count or compression ratios are over the limits, or that nests archives. It
   reads the ZIP64 records itself, so a ZIP64 archive whose 32-bit fields hold the
   0xFFFFFFFF sentinel is judged by its real sizes (LightRAG#3614), and it refuses an
   oversized directory before `zipfile` builds one object per entry.
2. `read_member` streams a member in bounded chunks and stops at its declared size: a
   central directory that lies about a size cannot make us inflate more than it declared
   (`zipfile.ZipExtFile.read()` without a size would inflate up to 1 GiB in one call).

Errors are `ZipRefused` with a reason phrase; the loader turns it into a sentence that
names the file.
"""

from __future__ import annotations

import io
import struct
import zipfile
from dataclasses import dataclass

from tenex_tui.attachments.limits import (
    MIB,
    AttachmentLimits,
    format_limit,
    format_size,
)

_EOCD = b"PK\x05\x06"
_EOCD_SIZE = 22
_ZIP64_LOCATOR = b"PK\x06\x07"
_ZIP64_LOCATOR_SIZE = 20
_ZIP64_EOCD = b"PK\x06\x06"
_MAX_COMMENT = 0xFFFF
_CHUNK = 64 * 1024

# Members whose name says they are archives: nesting multiplies the ratio a bomb gets
# past a one-level check. Office files embedded in `embeddings/` are tolerated because
# they are never decompressed (the DOCX reader blanks every non-XML part).
_ARCHIVE_SUFFIXES = (
    ".zip",
    ".jar",
    ".gz",
    ".tgz",
    ".bz2",
    ".xz",
    ".zst",
    ".7z",
    ".rar",
    ".tar",
    ".docx",
    ".xlsx",
    ".pptx",
    ".odt",
    ".ods",
    ".epub",
)
_EMBEDDED_OFFICE = (".docx", ".xlsx", ".pptx", ".docm", ".xlsm", ".pptm")


class ZipRefused(Exception):
    """The archive is refused; `reason` completes "x.docx …" as a sentence."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class ZipSummary:
    """What the central directory declares."""

    names: tuple[str, ...]
    unpacked_bytes: int
    packed_bytes: int


def _directory_bounds(data: bytes) -> tuple[int, int, int]:
    """Return (entries, directory size, directory offset) from the EOCD records."""
    start = max(0, len(data) - _EOCD_SIZE - _MAX_COMMENT)
    pos = data.rfind(_EOCD, start)
    if pos < 0 or pos + _EOCD_SIZE > len(data):
        raise ZipRefused("is damaged (its zip directory is missing)")
    (_, disk, cd_disk, _on_disk, entries, cd_size, cd_offset, _) = struct.unpack(
        "<4sHHHHIIH", data[pos : pos + _EOCD_SIZE]
    )
    if disk != 0 or cd_disk != 0:
        raise ZipRefused("is a multi-part zip archive, which cannot be read")
    if entries == 0xFFFF or cd_size == 0xFFFFFFFF or cd_offset == 0xFFFFFFFF:
        loc = pos - _ZIP64_LOCATOR_SIZE
        if loc < 0 or data[loc : loc + 4] != _ZIP64_LOCATOR:
            raise ZipRefused("is damaged (its ZIP64 directory locator is missing)")
        (_, _, rec_offset, _) = struct.unpack("<4sIQI", data[loc:pos])
        record = data[rec_offset : rec_offset + 56]
        if len(record) < 56 or record[:4] != _ZIP64_EOCD:
            raise ZipRefused("is damaged (its ZIP64 directory is missing)")
        (entries, cd_size, cd_offset) = struct.unpack("<QQQ", record[32:56])
    return entries, cd_size, cd_offset


def _is_nested_archive(name: str) -> bool:
    lowered = name.lower()
    if "/embeddings/" in f"/{lowered}" and lowered.endswith(_EMBEDDED_OFFICE):
        return False
    return lowered.endswith(_ARCHIVE_SUFFIXES)


def inspect_zip(data: bytes, limits: AttachmentLimits) -> ZipSummary:
    """Check an archive's declarations against the limits without inflating anything.

    Args:
        data: The whole archive.
        limits: `zip_max_entries`, `zip_max_unpacked_bytes`, `zip_max_ratio` and
            `zip_max_directory_bytes` apply.

    Returns:
        The member names and declared totals.

    Raises:
        ZipRefused: The archive is damaged, too big when unpacked, has too many entries,
            a suspicious compression ratio, a nested archive, encryption, or a
            compression method other than stored/deflated.
    """
    entries, cd_size, _ = _directory_bounds(data)
    if entries > limits.zip_max_entries:
        raise ZipRefused(
            f"has {entries:,} parts; the limit is {limits.zip_max_entries:,}"
        )
    if cd_size > limits.zip_max_directory_bytes:
        raise ZipRefused(
            f"has a {format_size(cd_size)} zip directory; the limit is "
            f"{format_limit(limits.zip_max_directory_bytes)}"
        )
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            infos = archive.infolist()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, EOFError) as exc:
        raise ZipRefused("is damaged (its zip directory cannot be read)") from exc
    # The EOCD count can lie; the directory itself is what zipfile walked.
    if len(infos) > limits.zip_max_entries:
        raise ZipRefused(
            f"has {len(infos):,} parts; the limit is {limits.zip_max_entries:,}"
        )
    unpacked = 0
    packed = 0
    for info in infos:
        if info.flag_bits & 0x1:
            raise ZipRefused("is encrypted")
        if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
            raise ZipRefused("uses a compression method that cannot be read safely")
        if _is_nested_archive(info.filename):
            raise ZipRefused("contains another archive; nested archives are refused")
        if info.file_size > MIB and info.file_size > limits.zip_max_ratio * max(
            info.compress_size, 1
        ):
            raise ZipRefused(
                f"has a part that expands more than {limits.zip_max_ratio} times "
                "(a decompression bomb)"
            )
        unpacked += info.file_size
        packed += info.compress_size
    if unpacked > limits.zip_max_unpacked_bytes:
        raise ZipRefused(
            f"would expand to {format_size(unpacked)}; the limit is "
            f"{format_limit(limits.zip_max_unpacked_bytes)}"
        )
    if unpacked > MIB and unpacked > limits.zip_max_ratio * max(packed, 1):
        raise ZipRefused(
            f"expands more than {limits.zip_max_ratio} times (a decompression bomb)"
        )
    return ZipSummary(
        names=tuple(info.filename for info in infos),
        unpacked_bytes=unpacked,
        packed_bytes=packed,
    )


def read_member(archive: zipfile.ZipFile, info: zipfile.ZipInfo, budget: int) -> bytes:
    """Inflate one member in bounded chunks.

    Args:
        archive: The open archive.
        info: The member, as the central directory describes it.
        budget: Bytes still allowed for the whole archive.

    Returns:
        The member's bytes (at most its declared size).

    Raises:
        ZipRefused: The member is bigger than declared or than the budget, its checksum
            fails (a lying directory), or it is itself an archive.
    """
    limit = min(info.file_size, budget)
    out = bytearray()
    try:
        with archive.open(info) as member:
            while len(out) <= limit:
                chunk = member.read(min(_CHUNK, limit + 1 - len(out)))
                if not chunk:
                    break
                out += chunk
    except zipfile.BadZipFile as exc:
        # zipfile stops at the declared size and then fails the CRC: a member whose
        # stream is longer than its directory entry says ends here, not in memory.
        raise ZipRefused(
            f"is damaged (the part {info.filename} fails its checksum)"
        ) from exc
    except EOFError as exc:
        raise ZipRefused(f"is damaged (the part {info.filename} is cut short)") from exc
    except Exception as exc:  # zlib.error, NotImplementedError, OSError…
        raise ZipRefused(
            f"is damaged (the part {info.filename} cannot be read)"
        ) from exc
    if len(out) > limit:
        raise ZipRefused(
            "expands beyond its size limit while it is read (a decompression bomb)"
        )
    if bytes(out[:4]) in (b"PK\x03\x04", b"PK\x05\x06"):
        raise ZipRefused("contains another archive; nested archives are refused")
    return bytes(out)
