"""T47: huge, sparse and growing files are judged by size before they are read."""

from __future__ import annotations

import os
import tracemalloc
from collections.abc import Callable
from pathlib import Path

import pytest

from tenex_tui.attachments import (
    AttachmentLimits,
    format_limit,
    format_size,
    load_attachment,
)
from tenex_tui.attachments.limits import GIB, MIB
from tenex_tui.core.errors import AttachmentError

Write = Callable[[str, bytes | str], Path]


def test_a_sparse_2_gb_file_is_refused_from_its_size_without_reading(
    files: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = files / "report.txt"
    with path.open("wb") as handle:
        handle.truncate(2 * GIB)
    reads: list[int] = []
    real_read = os.read
    monkeypatch.setattr(os, "read", lambda fd, n: reads.append(n) or real_read(fd, n))

    with pytest.raises(AttachmentError) as caught:
        load_attachment(path)

    assert str(caught.value) == "report.txt is 2.0 GB; the limit is 10 MB"
    assert reads == []


def test_a_50_mb_text_file_is_refused_with_both_sizes(files: Path) -> None:
    path = files / "big.log"
    path.write_bytes(b"line of log text\n" * (50 * MIB // 17 + 1))

    with pytest.raises(
        AttachmentError, match=r"^big\.log is 50\.1 MB; the limit is 10 MB$"
    ):
        load_attachment(path)


def test_a_file_just_over_the_cap_never_reads_as_equal_to_it(files: Path) -> None:
    path = files / "edge.txt"
    path.write_bytes(b"a" * (10 * MIB + 1))

    with pytest.raises(AttachmentError, match=r"is 10\.1 MB; the limit is 10 MB"):
        load_attachment(path)


def test_sizes_read_as_people_expect() -> None:
    assert format_size(0) == "0 bytes"
    assert format_size(1) == "1 byte"
    assert format_size(1536) == "1.5 KB"
    assert format_size(2 * GIB) == "2.0 GB"
    assert format_limit(10 * MIB) == "10 MB"
    assert format_limit(1536) == "1.5 KB"


def test_a_file_that_grows_while_it_is_read_is_cut_at_the_cap(
    write: Write, monkeypatch: pytest.MonkeyPatch
) -> None:
    cap = 64 * 1024
    path = write("growing.txt", "a" * (cap - 10))
    appended = False
    real_read = os.read

    def read_then_grow(fd: int, n: int) -> bytes:
        # After fstat said "cap - 10 bytes", another writer appends 3 caps' worth.
        nonlocal appended
        if not appended:
            appended = True
            with path.open("ab") as other:
                other.write(b"b" * (3 * cap))
        return real_read(fd, n)

    monkeypatch.setattr(os, "read", read_then_grow)

    loaded = load_attachment(path, limits=AttachmentLimits(max_file_bytes=cap))

    assert loaded.truncated
    assert loaded.size == cap
    assert loaded.text.startswith("a" * (cap - 10) + "b" * 10)
    assert (
        "[truncated: the file grew while it was read; only its first 64 KB were read]"
        in loaded.text
    )
    assert any("grew while it was read" in w for w in loaded.warnings)


def test_a_file_whose_size_lies_is_read_only_up_to_the_cap() -> None:
    """procfs files report a size of 0 and hold more: the cap still applies."""
    path = Path("/proc/self/maps")
    if not path.exists():
        pytest.skip("no procfs here")

    loaded = load_attachment(path, limits=AttachmentLimits(max_file_bytes=200))

    assert loaded.size == 200
    assert loaded.truncated


def test_memory_stays_within_the_cap_plus_20_mb_for_a_growing_file(
    write: Write, monkeypatch: pytest.MonkeyPatch
) -> None:
    cap = 10 * MIB
    path = write("grow.txt", b"x" * (cap - 1))
    with path.open("ab") as other:
        other.write(b"y" * (5 * MIB))  # now over the cap, but fstat will not see it:
    real_fstat = os.fstat

    def stale_fstat(fd: int) -> os.stat_result:
        info = real_fstat(fd)
        fields = list(info)
        fields[6] = cap - 1  # st_size as it was when the check ran
        return os.stat_result(fields)

    monkeypatch.setattr(os, "fstat", stale_fstat)
    tracemalloc.start()
    try:
        loaded = load_attachment(path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert loaded.truncated and loaded.size == cap
    assert peak < cap + 20 * MIB
