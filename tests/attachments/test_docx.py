"""T49 and T50: DOCX zip bombs and XML attacks, and ordinary Word documents."""

from __future__ import annotations

import io
import socket
import time
import tracemalloc
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest

from tenex_tui.attachments import AttachmentLimits, load_attachment
from tenex_tui.attachments.documents import Refused, check_xml, read_docx
from tenex_tui.attachments.limits import MIB
from tenex_tui.attachments.zipcheck import ZipRefused, inspect_zip, read_member
from tenex_tui.core.errors import AttachmentError

from . import builders as b

Write = Callable[[str, bytes | str], Path]

LOL = (
    '<!DOCTYPE lolz [<!ENTITY lol "lol">'
    + "".join(
        f'<!ENTITY lol{i} "{("&lol" + (str(i - 1) if i > 1 else "") + ";") * 10}">'
        for i in range(1, 10)
    )
    + "]>"
)


def _refused(path: Path, limits: AttachmentLimits | None = None) -> str:
    with pytest.raises(AttachmentError) as caught:
        load_attachment(path, limits=limits)
    return str(caught.value)


# --- ordinary documents -------------------------------------------------------------


def test_a_word_document_gives_headings_paragraphs_and_tables(write: Write) -> None:
    data = b.python_docx_document(
        ["First paragraph.", "Second paragraph."],
        heading="Quarterly plan",
        table=[["name", "stage"], ["Acme", "won"]],
    )

    loaded = load_attachment(write("plan.docx", data))

    assert loaded.media_type == (
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
    )
    assert loaded.text == (
        "# Quarterly plan\nFirst paragraph.\nSecond paragraph.\nname\tstage\nAcme\twon"
    )
    assert not loaded.truncated and loaded.warnings == ()


def test_list_paragraphs_are_marked_as_items(write: Write) -> None:
    import docx

    document = docx.Document()
    document.add_paragraph("first", style="List Bullet")
    document.add_paragraph("second", style="List Number")
    out = io.BytesIO()
    document.save(out)

    assert load_attachment(write("l.docx", out.getvalue())).text == "- first\n- second"


def test_images_are_never_inflated_and_the_text_still_loads(write: Write) -> None:
    import docx

    document = docx.Document()
    document.add_paragraph("before the picture")
    document.add_picture(io.BytesIO(b.tiny_png()))
    document.add_paragraph("after the picture")
    out = io.BytesIO()
    document.save(out)

    loaded = load_attachment(write("pic.docx", out.getvalue()))

    assert loaded.text == "before the picture\n\nafter the picture"


def test_a_word_document_renamed_zip_is_read_as_one(write: Write) -> None:
    loaded = load_attachment(write("plan.zip", b.minimal_docx(["hello"])))
    assert loaded.text == "hello"
    assert loaded.media_type.endswith("wordprocessingml.document")


def test_long_documents_are_cut_with_the_marker(write: Write) -> None:
    data = b.minimal_docx([f"paragraph {i}" for i in range(100)])

    loaded = load_attachment(
        write("long.docx", data), limits=AttachmentLimits(max_file_chars=50)
    )

    assert loaded.truncated
    assert loaded.text.endswith("[truncated: showing the first 50 of 1,289 characters]")
    assert loaded.text.startswith("paragraph 0\nparagraph 1\n")


def test_a_damaged_document_gives_a_plain_sentence(write: Write) -> None:
    data = b.make_zip([("word/document.xml", "<w:document><unclosed>")])
    assert _refused(write("broken.docx", data)) == (
        "broken.docx is damaged (word/document.xml is not well-formed XML)"
    )


# --- T49: zip bombs -----------------------------------------------------------------


def test_a_the_v8_bomb_is_refused_before_parsing(write: Write) -> None:
    data = b.docx_bomb(151 * MIB)
    assert len(data) < 1 * MIB

    message = _refused(write("v8.docx", data))

    assert message == (
        "v8.docx has a part that expands more than 100 times (a decompression bomb)"
    )


def test_b_a_1_gb_declaration_is_refused_by_the_declared_total(write: Write) -> None:
    data = b.patch_directory(
        b.minimal_docx(["x"]),
        "word/document.xml",
        file_size=1 << 30,
        compress_size=20 * MIB,
    )
    assert _refused(write("gig.docx", data)) == (
        "gig.docx would expand to 1.1 GB; the limit is 50 MB"
    )


def test_b_the_declared_total_counts_every_member() -> None:
    data = b.minimal_docx(["x"], extra=[(f"word/p{i}.xml", "<a/>") for i in range(6)])
    for i in range(6):
        data = b.patch_directory(
            data, f"word/p{i}.xml", file_size=9 * MIB, compress_size=MIB
        )

    with pytest.raises(
        ZipRefused, match=r"would expand to 54\.1 MB; the limit is 50 MB"
    ):
        inspect_zip(data, AttachmentLimits())


def test_b_a_high_ratio_is_refused_per_member() -> None:
    data = b.patch_directory(
        b.minimal_docx(["x"]),
        "word/document.xml",
        file_size=30 * MIB,
        compress_size=100_000,
    )
    with pytest.raises(ZipRefused, match="expands more than 100 times"):
        inspect_zip(data, AttachmentLimits())


def test_c_ten_thousand_entries_are_refused(write: Write) -> None:
    assert _refused(write("many.docx", b.many_entries_zip(10_000))) == (
        "many.docx has 10,002 parts; the limit is 1,000"
    )


def test_c_an_end_record_that_lies_about_the_count_is_caught() -> None:
    data = b.patch_entry_count(b.many_entries_zip(1500), 3)
    with pytest.raises(ZipRefused, match=r"has 1,502 parts; the limit is 1,000"):
        inspect_zip(data, AttachmentLimits())


def test_c_an_oversized_directory_is_refused_before_it_is_listed() -> None:
    data = b.many_entries_zip(900)
    with pytest.raises(ZipRefused, match="zip directory; the limit is 16 KB"):
        inspect_zip(data, AttachmentLimits(zip_max_directory_bytes=16 * 1024))


def test_d_a_nested_archive_is_refused(write: Write) -> None:
    assert _refused(write("nested.docx", b.nested_zip_docx())) == (
        "nested.docx contains another archive; nested archives are refused"
    )


def test_d_an_archive_hidden_under_an_xml_name_is_refused_when_read() -> None:
    inner = b.make_zip([("x.txt", "0" * 1000)])
    data = b.minimal_docx(["x"], extra=[("word/settings.xml", inner)])
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        info = archive.getinfo("word/settings.xml")
        with pytest.raises(ZipRefused, match="nested archives are refused"):
            read_member(archive, info, 50 * MIB)


def test_d_embedded_office_files_are_tolerated_because_never_inflated(
    write: Write,
) -> None:
    embedded = b.make_zip([("xl/workbook.xml", "<workbook/>")])
    data = b.minimal_docx(["host"], extra=[("word/embeddings/sheet1.xlsx", embedded)])
    assert load_attachment(write("host.docx", data)).text == "host"


def test_e_zip64_with_small_real_sizes_is_accepted(write: Write) -> None:
    data = b.zip64_small_docx(["sixty-four"])
    summary = inspect_zip(data, AttachmentLimits())
    assert summary.unpacked_bytes < 2000

    assert load_attachment(write("z64.docx", data)).text == "sixty-four"


def test_f_a_lying_directory_is_stopped_by_the_streaming_cap(write: Write) -> None:
    data = b.lying_directory_docx(real_size=20 * MIB, claimed=1000)
    limits = AttachmentLimits(parser_memory_bytes=200 * MIB)

    assert _refused(write("liar.docx", data), limits) == (
        "liar.docx is damaged (the part word/document.xml fails its checksum)"
    )


def test_f_the_streaming_read_never_inflates_past_the_declaration() -> None:
    data = b.lying_directory_docx(real_size=20 * MIB, claimed=1000)
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        info = archive.getinfo("word/document.xml")
        tracemalloc.start()
        try:
            with pytest.raises(ZipRefused):
                read_member(archive, info, 50 * MIB)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    assert peak < 2 * MIB


def test_f_a_member_over_the_remaining_budget_is_cut_at_the_budget() -> None:
    data = b.minimal_docx(["y" * 5000])
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        info = archive.getinfo("word/document.xml")
        with pytest.raises(ZipRefused, match="expands beyond its size limit"):
            read_member(archive, info, 100)


def test_encrypted_members_and_exotic_compression_are_refused() -> None:
    data = b.patch_directory(b.minimal_docx(["x"]), "word/document.xml", flags=0x1)
    with pytest.raises(ZipRefused, match="is encrypted"):
        inspect_zip(data, AttachmentLimits())
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_BZIP2) as archive:
        archive.writestr("word/document.xml", "<a/>")
    with pytest.raises(ZipRefused, match="compression method"):
        inspect_zip(out.getvalue(), AttachmentLimits())


def test_a_truncated_archive_is_damaged() -> None:
    data = b.minimal_docx(["x"])
    with pytest.raises(ZipRefused, match="zip directory is missing"):
        inspect_zip(data[: len(data) // 2], AttachmentLimits())


# --- T50: XML attacks ---------------------------------------------------------------


def test_billion_laughs_in_the_document_is_refused(write: Write) -> None:
    data = b.minimal_docx(["&lol9;"], prolog=LOL)
    assert _refused(write("laughs.docx", data)) == (
        "laughs.docx contains XML declarations that Word never writes (a DTD or "
        "entities, in word/document.xml); it was refused"
    )


def test_billion_laughs_in_the_core_properties_is_refused(write: Write) -> None:
    core = f'<?xml version="1.0"?>{LOL}<cp:coreProperties xmlns:cp="x">&lol9;</cp:coreProperties>'
    data = b.minimal_docx(["fine"], extra=[("docProps/core.xml", core)])
    assert "in docProps/core.xml" in _refused(write("core.docx", data))


@pytest.fixture
def no_sockets(monkeypatch: pytest.MonkeyPatch) -> list[object]:
    """Any socket at all is a failure: XML parsing must never reach the network."""
    attempts: list[object] = []

    def refuse(*args: object, **kwargs: object) -> socket.socket:
        attempts.append(args)
        raise AssertionError("XML parsing tried to open a socket")

    monkeypatch.setattr(socket, "socket", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    return attempts


def test_an_external_entity_reads_no_file(
    tmp_path: Path, no_sockets: list[object]
) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP SECRET")
    prolog = f'<!DOCTYPE d [<!ENTITY xxe SYSTEM "file://{secret}">]>'
    data = b.minimal_docx(["&xxe;"], prolog=prolog)

    with pytest.raises(Refused) as caught:
        read_docx(
            data, cap=10_000, deadline=time.monotonic() + 10, limits=AttachmentLimits()
        )

    assert caught.value.code == "xml"
    assert "TOP SECRET" not in caught.value.reason
    assert no_sockets == []


def test_an_external_dtd_is_never_fetched(no_sockets: list[object]) -> None:
    xml = (
        '<?xml version="1.0"?><!DOCTYPE w:document SYSTEM "http://203.0.113.7/evil.dtd">'
        f'<w:document xmlns:w="{b.W_NS}"/>'
    ).encode()

    with pytest.raises(Refused, match="DTD or entities"):
        check_xml(xml, "word/document.xml")

    assert no_sockets == []


def test_the_whole_reader_runs_without_the_network(no_sockets: list[object]) -> None:
    parsed = read_docx(
        b.python_docx_document(["offline"]),
        cap=10_000,
        deadline=time.monotonic() + 10,
        limits=AttachmentLimits(),
    )
    assert parsed.text == "offline"
    assert no_sockets == []


def test_utf16_xml_parts_are_checked_too() -> None:
    xml = ('<?xml version="1.0" encoding="UTF-16"?>' + LOL + "<a>&lol9;</a>").encode(
        "utf-16"
    )
    with pytest.raises(Refused, match="DTD or entities"):
        check_xml(xml, "word/document.xml")


def test_a_docx_without_a_document_part_is_not_a_word_document(write: Write) -> None:
    data = b.make_zip([("[Content_Types].xml", b.CONTENT_TYPES)])
    assert _refused(write("empty.docx", data)) == (
        "empty.docx is not a Word document (it has no word/document.xml)"
    )


def test_a_bomb_named_zip_is_refused_as_binary_before_inflating(write: Write) -> None:
    assert _refused(write("b.zip", b.docx_bomb(151 * MIB))) == (
        "b.zip looks like a binary file (application/zip); only text, PDF and DOCX "
        "can be attached"
    )
