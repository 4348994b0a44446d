"""T51: PDFs, PDF bombs and malformed PDFs, read in the limited child process."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tenex_tui.attachments import AttachmentLimits, load_attachment
from tenex_tui.attachments.documents import read_pdf
from tenex_tui.attachments.limits import MIB
from tenex_tui.core.errors import AttachmentError

from . import builders as b

Write = Callable[[str, bytes | str], Path]


def _refused(path: Path, limits: AttachmentLimits | None = None) -> str:
    with pytest.raises(AttachmentError) as caught:
        load_attachment(path, limits=limits)
    return str(caught.value)


def test_a_pdf_gives_its_text_page_by_page(write: Write) -> None:
    data = b.text_pdf([["Hello page one", "second line"], ["Page two (with parens)"]])

    loaded = load_attachment(write("report.pdf", data))

    assert loaded.media_type == "application/pdf"
    assert loaded.text == "Hello page one\nsecond line\n\nPage two (with parens)"
    assert not loaded.truncated


def test_a_compressed_pdf_renamed_txt_is_still_read_as_pdf(write: Write) -> None:
    loaded = load_attachment(
        write("notes.txt", b.text_pdf([["deflated"]], compress=True))
    )
    assert (loaded.media_type, loaded.text) == ("application/pdf", "deflated")


def test_a_long_pdf_stops_at_the_cap_and_says_which_pages_were_read(
    write: Write,
) -> None:
    pages = [[f"page {i} " + "x" * 50] for i in range(40)]

    loaded = load_attachment(
        write("long.pdf", b.text_pdf(pages)),
        limits=AttachmentLimits(max_file_chars=100),
    )

    assert loaded.truncated
    assert loaded.text.startswith("page 0 " + "x" * 50 + "\n\npage 1 ")
    assert loaded.text.endswith(
        "\n\n[truncated: showing the first 100 characters; pages 1–2 of 40 were read]"
    )


def test_a_pdf_read_to_its_last_page_reports_its_exact_length(write: Write) -> None:
    pages = [[f"page {i}"] for i in range(3)]

    loaded = load_attachment(
        write("short.pdf", b.text_pdf(pages)),
        limits=AttachmentLimits(max_file_chars=20),
    )

    assert loaded.text == (
        "page 0\n\npage 1\n\npage\n\n[truncated: showing the first 20 of 22 characters]"
    )


def test_a_chained_flate_bomb_maps_to_a_plain_sentence(write: Write) -> None:
    data = b.flate_bomb_pdf(80 * MIB)
    assert len(data) < 100_000

    assert _refused(write("bomb.pdf", data)) == (
        "bomb.pdf expands beyond the PDF reader's safety limits (a decompression "
        "bomb or a damaged file)"
    )


def test_a_huge_declared_length_is_refused(write: Write) -> None:
    assert "safety limits" in _refused(write("huge.pdf", b.huge_length_pdf()))


def test_a_cyclic_page_tree_is_refused(write: Write) -> None:
    message = _refused(write("cycle.pdf", b.cyclic_pages_pdf()))
    assert message.startswith("cycle.pdf ")
    assert "safety limits" in message or "damaged" in message


def test_a_circular_xref_chain_still_reads(write: Write) -> None:
    assert load_attachment(write("circ.pdf", b.circular_xref_pdf())).text == "loop"


def test_ten_thousand_empty_pages_have_no_text(write: Write) -> None:
    assert _refused(write("empty.pdf", b.empty_pages_pdf(10_000))) == (
        "empty.pdf has no text that can be extracted (it may be scanned images)"
    )


def test_an_encrypted_pdf_says_so(write: Write) -> None:
    assert _refused(write("report.pdf", b.encrypted_pdf(["classified"]))) == (
        "report.pdf is encrypted"
    )


def test_a_pdf_encrypted_with_an_empty_password_opens(write: Write) -> None:
    data = b.encrypted_pdf(["open to all"], password="")
    assert load_attachment(write("perm.pdf", data)).text == "open to all"


def test_garbage_after_the_header_is_damaged(write: Write) -> None:
    message = _refused(write("junk.pdf", b"%PDF-1.7\n" + b"garbage " * 100))
    assert message.startswith("junk.pdf ")
    assert "could not be read" in message or "no text" in message


def test_a_slow_pdf_is_killed_at_the_timeout(write: Write) -> None:
    """A 10 ms budget is shorter than starting the child and importing pypdf."""
    limits = AttachmentLimits(parser_timeout=0.01)
    assert _refused(write("report.pdf", b.text_pdf([["x"]])), limits) == (
        "report.pdf took too long to read (over 0.01 s)"
    )


def test_a_reader_past_its_soft_deadline_returns_what_it_read_marked_partial() -> None:
    parsed = read_pdf(
        b.text_pdf([["one"], ["two"]]), cap=1000, deadline=time.monotonic() - 1
    )

    assert parsed.total_chars is None
    assert parsed.note == "no page could be read in time"
    assert parsed.warnings == ["was only partly read: 0 of 2 pages in time"]


def test_a_partial_read_is_marked_in_the_text(
    write: Write, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tenex_tui.attachments import loader
    from tenex_tui.attachments.worker import ParserResult

    monkeypatch.setattr(
        loader,
        "run_parser",
        lambda *a, **k: ParserResult(
            "first pages",
            None,
            0,
            ("was only partly read: 3 of 9 pages in time",),
            "only pages 1–3 of 9 could be read in time",
        ),
    )

    loaded = load_attachment(write("p.pdf", b.text_pdf([["x"]])))

    assert loaded.truncated
    assert loaded.text == (
        "first pages\n\n[truncated: showing the first 11 characters; only pages 1–3 "
        "of 9 could be read in time]"
    )
    assert loaded.warnings == ("p.pdf was only partly read: 3 of 9 pages in time",)
