"""T48 and the text readers: binary refusal, decoding, and each text format."""

from __future__ import annotations

import json
import struct
import zlib
from collections.abc import Callable
from pathlib import Path

import pytest

from tenex_tui.attachments import AttachmentLimits, load_attachment
from tenex_tui.attachments.extract import decode_text, html_to_text, table_text
from tenex_tui.attachments.sniff import looks_binary, sniff
from tenex_tui.core.errors import AttachmentError

from .builders import make_zip

Write = Callable[[str, bytes | str], Path]


def _png() -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data))
            + kind
            + data
            + struct.pack(">I", zlib.crc32(kind + data))
        )

    header = struct.pack(">IIBBBBB", 1, 1, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\x00\x00"))
        + chunk(b"IEND", b"")
    )


def _refused(path: Path, limits: AttachmentLimits | None = None) -> str:
    with pytest.raises(AttachmentError) as caught:
        load_attachment(path, limits=limits)
    return str(caught.value)


# --- binary -------------------------------------------------------------------------


def test_a_png_renamed_txt_is_refused_by_its_magic_bytes(write: Write) -> None:
    path = write("x.txt", _png())
    assert _refused(path) == (
        "x.txt looks like a binary file (image/png); only text, PDF and DOCX can be attached"
    )


@pytest.mark.parametrize(
    ("name", "data", "media_type"),
    [
        ("photo.jpg", b"\xff\xd8\xff\xe0" + bytes(64), "image/jpeg"),
        ("anim.gif", b"GIF89a" + bytes(64), "image/gif"),
        ("tool", b"\x7fELF\x02\x01\x01" + bytes(64), "application/x-executable"),
        ("data.db", b"SQLite format 3\x00" + bytes(100), "application/vnd.sqlite3"),
        (
            "old.doc",
            b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(64),
            "application/x-ole-storage",
        ),
        ("a.gz", b"\x1f\x8b\x08\x00" + bytes(64), "application/gzip"),
        ("blob.bin", b"abc\x00def" * 100, "application/octet-stream"),
    ],
)
def test_binary_files_are_refused_with_their_type(
    write: Write, name: str, data: bytes, media_type: str
) -> None:
    assert f"looks like a binary file ({media_type})" in _refused(write(name, data))


def test_a_zip_that_is_not_a_word_document_is_refused_as_binary(write: Write) -> None:
    archive = make_zip([("a.txt", "hello")])
    assert "looks like a binary file (application/zip)" in _refused(
        write("a.zip", archive)
    )
    sheet = write("s.xlsx", make_zip([("xl/workbook.xml", "<workbook/>")]))
    assert "spreadsheetml" in _refused(sheet)


def test_files_named_pdf_or_docx_must_be_what_they_say(write: Write) -> None:
    assert (
        _refused(write("r.pdf", "just text"))
        == "r.pdf is not a valid PDF (it has no PDF header)"
    )
    assert (
        _refused(write("r.docx", "just text")) == "r.docx is not a valid Word document"
    )


def test_text_starting_with_a_weak_signature_is_still_text(write: Write) -> None:
    loaded = load_attachment(write("notes.txt", "MZ is how this memo starts.\n"))
    assert loaded.text == "MZ is how this memo starts.\n"


def test_the_nul_ratio_decides_for_unknown_content() -> None:
    assert looks_binary(b"text " * 20 + b"\x00" + b"text " * 2000)  # git's rule
    assert not looks_binary(b"text " * 2000 + b"\x00")  # one stray NUL, later on
    assert looks_binary(b"text " * 2000 + b"\x00" * 20)  # over 1 in 1000
    assert not looks_binary(b"plain text\n" * 1000)
    assert looks_binary(bytes(range(1, 9)) * 100)  # control bytes, no NUL
    assert not looks_binary(b"")


# --- decoding -----------------------------------------------------------------------


def test_invalid_utf8_is_replaced_and_counted(write: Write) -> None:
    path = write("notes.txt", "café ".encode() * 20 + b"\xff\xfe bad \xc3")

    loaded = load_attachment(path)

    assert loaded.text.count("\ufffd") == 3
    assert loaded.warnings == ("notes.txt has 3 invalid UTF-8 sequences, shown as �",)


def test_a_literal_replacement_character_is_not_counted_as_invalid(
    write: Write,
) -> None:
    loaded = load_attachment(write("ok.txt", "a � b"))
    assert loaded.warnings == ()


@pytest.mark.parametrize("codec", ["utf-16-le", "utf-16-be", "utf-32-le", "utf-32-be"])
def test_utf16_and_utf32_with_a_bom_are_decoded(write: Write, codec: str) -> None:
    bom = "\ufeff".encode(codec)
    path = write("wide.txt", bom + "Grüße, 世界\r\nzwei".encode(codec))

    loaded = load_attachment(path)

    assert loaded.text == "Grüße, 世界\nzwei"
    assert loaded.media_type == "text/plain"


def test_utf8_with_a_bom_loses_the_bom(write: Write) -> None:
    assert load_attachment(write("b.md", b"\xef\xbb\xbf# Title")).text == "# Title"


def test_latin1_is_detected_when_invalid_bytes_dominate(write: Write) -> None:
    path = write("legacy.txt", "Résumé du café à Zürich".encode("latin-1"))

    loaded = load_attachment(path)

    assert loaded.text == "Résumé du café à Zürich"
    assert loaded.warnings == ("legacy.txt is not valid UTF-8; it was read as Latin-1",)


def test_mixed_line_endings_are_normalised() -> None:
    text, _ = decode_text(b"one\r\ntwo\rthree\nfour")
    assert text == "one\ntwo\nthree\nfour"


def test_a_single_10_mb_line_is_cut_with_an_explicit_marker(write: Write) -> None:
    path = write("line.txt", b"z" * (10 * 1024 * 1024 - 1))

    loaded = load_attachment(path)

    assert loaded.truncated
    assert loaded.text == "z" * 200_000 + (
        "\n\n[truncated: showing the first 200,000 of 10,485,759 characters]"
    )
    assert loaded.size == 10 * 1024 * 1024 - 1


def test_an_empty_file_is_attached_with_a_warning(write: Write) -> None:
    loaded = load_attachment(write("empty.txt", b""))
    assert loaded.text == ""
    assert loaded.warnings == ("empty.txt is empty",)


def test_unknown_extensions_with_text_are_plain_text(write: Write) -> None:
    loaded = load_attachment(write("Makefile.weird", "all:\n\techo hi\n"))
    assert loaded.media_type == "text/plain"
    assert loaded.text == "all:\n\techo hi\n"


def test_terminal_escapes_are_kept_for_the_model_and_left_to_display_sanitising(
    write: Write,
) -> None:
    payload = "see \x1b]52;c;ZWNobyBoaQ==\x07 here"
    assert load_attachment(write("esc.txt", payload)).text == payload


# --- formats ------------------------------------------------------------------------


def test_code_and_markdown_keep_their_text_and_get_a_media_type(write: Write) -> None:
    source = "def f():\n    return 1\n"
    assert load_attachment(write("m.py", source)).media_type == "text/x-python"
    assert load_attachment(write("m.py", source)).text == source
    markdown = load_attachment(write("README.md", "# Title\n\n- item\n"))
    assert (markdown.media_type, markdown.text) == (
        "text/markdown",
        "# Title\n\n- item\n",
    )


def test_json_is_validated_and_pretty_printed(write: Write) -> None:
    loaded = load_attachment(write("d.json", '{"b":[1,2],"a":"é"}'))
    assert loaded.media_type == "application/json"
    assert loaded.text == json.dumps(
        {"b": [1, 2], "a": "é"}, indent=2, ensure_ascii=False
    )
    assert loaded.warnings == ()


def test_invalid_json_is_attached_as_text_with_the_position(write: Write) -> None:
    loaded = load_attachment(write("bad.json", '{"a": 1,\n "b": }'))
    assert loaded.text == '{"a": 1,\n "b": }'
    assert loaded.warnings == (
        "bad.json is not valid JSON (line 2, column 7); it was attached as plain text",
    )


def test_deeply_nested_json_does_not_escape_as_recursion_error(write: Write) -> None:
    loaded = load_attachment(write("deep.json", "[" * 100_000 + "]" * 100_000))
    assert loaded.warnings == (
        "deep.json could not be checked as JSON; it was attached as plain text",
    )


def test_json_lines_report_the_first_bad_line(write: Write) -> None:
    loaded = load_attachment(write("e.jsonl", '{"a":1}\n{"b":\n'))
    assert loaded.warnings == ("e.jsonl has invalid JSON on line 2",)


def test_csv_becomes_tab_separated_rows(write: Write) -> None:
    loaded = load_attachment(
        write("leads.csv", 'name,company,note\nAda,"Acme, Inc","line one\nline two"\n')
    )
    assert loaded.media_type == "text/csv"
    assert loaded.text == "name\tcompany\tnote\nAda\tAcme, Inc\tline one line two"


def test_semicolon_csv_is_sniffed_and_tsv_is_kept() -> None:
    assert table_text("a;b\n1;2\n")[0] == "a\tb\n1\t2"
    assert table_text("a\tb\n1\t2\n", delimiter="\t")[0] == "a\tb\n1\t2"


def test_html_becomes_its_visible_text(write: Write) -> None:
    page = (
        "<html><head><title>Pricing</title><style>p{color:red}</style>"
        "<script>steal()</script></head><body><h1>Plans</h1>"
        "<p>Pro is <b>$20</b>. See <a href='https://x.example/p'>details</a>.</p>"
        "<ul><li>one</li><li>two</li></ul>"
        "<table><tr><th>a</th><th>b</th></tr><tr><td>1</td><td>2</td></tr></table>"
        "<pre>  keep\n    indent</pre>&amp; more</body></html>"
    )
    loaded = load_attachment(write("pricing.html", page))

    assert loaded.media_type == "text/html"
    assert loaded.text == (
        "Pricing\n\nPlans\n\nPro is $20. See details (https://x.example/p).\n\n"
        "- one\n- two\n\na\tb\n1\t2\n\n  keep\n    indent\n\n& more"
    )
    assert "steal" not in loaded.text and "color" not in loaded.text


def test_a_long_page_is_parsed_only_until_the_cap(write: Write) -> None:
    row = "<div><p>" + "word " * 20 + "</p></div>\n"
    path = write("long.html", "<html><body>" + row * 20_000 + "</body></html>")

    loaded = load_attachment(path, limits=AttachmentLimits(max_file_chars=1000))

    assert loaded.truncated
    assert loaded.text.startswith("word word ")
    assert loaded.text.endswith(
        "\n\n[truncated: showing the first 1,000 characters; the rest of the page "
        "was not read]"
    )


def test_a_page_that_ends_within_the_cap_is_complete_even_in_chunks() -> None:
    from tenex_tui.attachments.extract import html_to_text_prefix

    page = "<p>" + "x" * 100_000 + "</p><p>end &amp; done</p>"
    text, complete = html_to_text_prefix(page, 1_000_000)
    assert complete
    assert text == "x" * 100_000 + "\n\nend & done"


def test_html_links_to_other_schemes_are_not_spelled_out() -> None:
    assert html_to_text("<a href='javascript:alert(1)'>click</a>") == "click"


def test_html_that_makes_the_stdlib_parser_quadratic_times_out_cleanly(
    write: Write,
) -> None:
    """`"</" * 10**6` takes minutes in html.parser on this Python; the child is killed."""
    path = write("evil.html", "</" * 1_000_000)
    limits = AttachmentLimits(parser_timeout=1.0)

    assert _refused(path, limits) == "evil.html took too long to read (over 1 s)"


def test_sniffing_prefers_content_over_the_name() -> None:
    assert sniff("notes.txt", b"%PDF-1.4\n...").kind == "pdf"
    assert sniff("notes.pdf", b"hello").kind == "text"
    assert sniff("a.docx", b"PK\x03\x04rest").kind == "zip"
