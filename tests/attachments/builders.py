"""Hostile and ordinary documents, built in memory by the tests (no binary fixtures).

PDFs are written object by object with a correct xref table; zips come from `zipfile`
at `compresslevel=9`, and the few archives `zipfile` cannot produce (ZIP64 records with
small sizes, a central directory that lies) are patched or packed by hand with `struct`.
"""

from __future__ import annotations

import io
import struct
import zipfile
import zlib
from collections.abc import Iterable, Sequence

# --- PDF ---------------------------------------------------------------------------


def _pdf_string(text: str) -> str:
    return text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")


def _content(lines: Sequence[str]) -> bytes:
    ops = ["BT", "/F1 12 Tf", "72 720 Td", "14 TL"]
    for line in lines:
        ops.append(f"({_pdf_string(line)}) Tj T*")
    ops.append("ET")
    return "\n".join(ops).encode("latin-1")


def assemble_pdf(
    objects: Sequence[bytes], *, root: int = 1, trailer_extra: str = ""
) -> bytes:
    """Number `objects` from 1, write them, an xref table and a trailer."""
    out = io.BytesIO()
    out.write(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(out.tell())
        out.write(f"{number} 0 obj\n".encode() + body + b"\nendobj\n")
    xref = out.tell()
    out.write(f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode())
    for offset in offsets:
        out.write(f"{offset:010d} 00000 n \n".encode())
    out.write(
        f"trailer\n<< /Size {len(objects) + 1} /Root {root} 0 R {trailer_extra}>>\n"
        f"startxref\n{xref}\n%%EOF\n".encode()
    )
    return out.getvalue()


def stream_object(data: bytes, extra: str = "", length: int | None = None) -> bytes:
    size = len(data) if length is None else length
    return f"<< /Length {size} {extra}>>\nstream\n".encode() + data + b"\nendstream"


def text_pdf(pages: Sequence[Sequence[str]], *, compress: bool = False) -> bytes:
    """A PDF with one page per item, each showing its lines in Helvetica."""
    count = len(pages)
    font = 3
    first_page = 4
    kids = " ".join(f"{first_page + 2 * i} 0 R" for i in range(count))
    objects: list[bytes] = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        f"<< /Type /Pages /Kids [{kids}] /Count {count} >>".encode(),
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    for index, lines in enumerate(pages):
        content_number = first_page + 2 * index + 1
        objects.append(
            (
                "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] "
                f"/Contents {content_number} 0 R "
                f"/Resources << /Font << /F1 {font} 0 R >> >> >>"
            ).encode()
        )
        data = _content(lines)
        if compress:
            objects.append(
                stream_object(zlib.compress(data, 9), "/Filter /FlateDecode ")
            )
        else:
            objects.append(stream_object(data))
    return assemble_pdf(objects)


def empty_pages_pdf(count: int) -> bytes:
    """`count` pages with no content at all."""
    kids = " ".join(f"{3 + i} 0 R" for i in range(count))
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        f"<< /Type /Pages /Kids [{kids}] /Count {count} >>".encode(),
    ]
    objects += [b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] >>"] * count
    return assemble_pdf(objects)


def _deflate_zeros(total: int, chunk: int = 1 << 20) -> bytes:
    packer = zlib.compressobj(9)
    parts = []
    zeros = bytes(chunk)
    left = total
    while left > 0:
        parts.append(packer.compress(zeros[: min(chunk, left)]))
        left -= chunk
    parts.append(packer.flush())
    return b"".join(parts)


def flate_bomb_pdf(inflated: int = 80 * 1024 * 1024) -> bytes:
    """pypdf#3429's shape: a page content stream behind two chained /FlateDecode
    filters that inflates to `inflated` bytes of zeros (about 1 KB on disk)."""
    inner = _deflate_zeros(inflated)
    outer = zlib.compress(inner, 9)
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R >>",
        stream_object(outer, "/Filter [/FlateDecode /FlateDecode] "),
    ]
    return assemble_pdf(objects)


def huge_length_pdf() -> bytes:
    """A content stream that declares a /Length of about 100 GB."""
    data = _content(["declared too long"])
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R >>",
        stream_object(data, length=99_999_999_999),
    ]
    return assemble_pdf(objects)


def cyclic_pages_pdf() -> bytes:
    """A page tree whose /Pages node lists itself as a kid."""
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [2 0 R] /Count 1 >>",
    ]
    return assemble_pdf(objects)


def circular_xref_pdf() -> bytes:
    """A PDF whose trailer's /Prev points back at its own xref table."""
    body = text_pdf([["loop"]])
    startxref = int(body.rsplit(b"startxref\n", 1)[1].split(b"\n", 1)[0])
    return body.replace(b"/Root 1 0 R ", f"/Root 1 0 R /Prev {startxref} ".encode(), 1)


def encrypted_pdf(lines: Sequence[str], password: str = "s3cret") -> bytes:
    """A text PDF encrypted with a user password (RC4, which pypdf writes unaided)."""
    from pypdf import PdfReader, PdfWriter

    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(text_pdf([lines]))))
    writer.encrypt(user_password=password, owner_password="owner", algorithm="RC4-128")
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


# --- zip / DOCX --------------------------------------------------------------------

CONTENT_TYPES = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
    '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
    '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
    '<Default Extension="xml" ContentType="application/xml"/>'
    '<Override PartName="/word/document.xml" ContentType="application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"/>'
    "</Types>"
)
ROOT_RELS = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
    '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
    '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="word/document.xml"/>'
    "</Relationships>"
)
W_NS = "http://schemas.openxmlformats.org/wordprocessingml/2006/main"


def document_xml(paragraphs: Iterable[str], *, prolog: str = "") -> str:
    body = "".join(f"<w:p><w:r><w:t>{text}</w:t></w:r></w:p>" for text in paragraphs)
    return (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
        f"{prolog}"
        f'<w:document xmlns:w="{W_NS}"><w:body>{body}</w:body></w:document>'
    )


def make_zip(members: Sequence[tuple[str, bytes | str]]) -> bytes:
    """A deflated archive (compresslevel 9) of the given members, in order."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        for name, data in members:
            archive.writestr(name, data)
    return out.getvalue()


def minimal_docx(
    paragraphs: Sequence[str],
    *,
    extra: Sequence[tuple[str, bytes | str]] = (),
    prolog: str = "",
) -> bytes:
    """The smallest package python-docx opens: content types, rels, document."""
    return make_zip(
        [
            ("[Content_Types].xml", CONTENT_TYPES),
            ("_rels/.rels", ROOT_RELS),
            ("word/document.xml", document_xml(paragraphs, prolog=prolog)),
            *extra,
        ]
    )


def python_docx_document(
    paragraphs: Sequence[str],
    *,
    heading: str | None = None,
    table: Sequence[Sequence[str]] = (),
) -> bytes:
    """A real Word document written by python-docx."""
    import docx

    document = docx.Document()
    if heading is not None:
        document.add_heading(heading, level=1)
    for text in paragraphs:
        document.add_paragraph(text)
    if table:
        grid = document.add_table(rows=len(table), cols=len(table[0]))
        for r, row in enumerate(table):
            for c, value in enumerate(row):
                grid.cell(r, c).text = value
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()


def docx_bomb(declared: int) -> bytes:
    """A DOCX whose document part is `declared` bytes of repeated XML (a ~1000:1 zip)."""
    unit = "<w:p><w:r><w:t>aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa</w:t></w:r></w:p>"
    head = f'<?xml version="1.0"?><w:document xmlns:w="{W_NS}"><w:body>'
    tail = "</w:body></w:document>"
    count = max(1, (declared - len(head) - len(tail)) // len(unit))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        archive.writestr("[Content_Types].xml", CONTENT_TYPES)
        archive.writestr("_rels/.rels", ROOT_RELS)
        with archive.open(
            "word/document.xml", "w", force_zip64=declared > 2**31
        ) as part:
            part.write(head.encode())
            block = (unit * 20_000).encode()
            left = count
            while left > 0:
                take = min(left, 20_000)
                part.write(block if take == 20_000 else (unit * take).encode())
                left -= take
            part.write(tail.encode())
    return out.getvalue()


def many_entries_zip(count: int) -> bytes:
    return make_zip(
        [
            ("[Content_Types].xml", CONTENT_TYPES),
            ("word/document.xml", document_xml(["x"])),
        ]
        + [(f"word/media/p{i}.xml", b"") for i in range(count)]
    )


def nested_zip_docx() -> bytes:
    inner = make_zip([("bomb.txt", b"0" * 1_000_000)])
    return minimal_docx(["outer"], extra=[("word/inner.zip", inner)])


def lying_directory_docx(
    real_size: int = 20 * 1024 * 1024, claimed: int = 1000
) -> bytes:
    """A DOCX whose central directory (and local header) claims the document part is
    `claimed` bytes while its deflate stream inflates to `real_size`."""
    text = "<w:p><w:r><w:t>" + "b" * (real_size // 2) + "</w:t></w:r></w:p>"
    archive = make_zip(
        [
            ("[Content_Types].xml", CONTENT_TYPES),
            ("_rels/.rels", ROOT_RELS),
            ("word/document.xml", document_xml([text])),
        ]
    )
    data = bytearray(archive)
    name = b"word/document.xml"
    # Central directory header: signature PK\x01\x02, uncompressed size at offset 24.
    cd = data.find(b"PK\x01\x02")
    while cd >= 0:
        name_len = struct.unpack_from("<H", data, cd + 28)[0]
        if bytes(data[cd + 46 : cd + 46 + name_len]) == name:
            struct.pack_into("<I", data, cd + 24, claimed)
            local = struct.unpack_from("<I", data, cd + 42)[0]
            struct.pack_into("<I", data, local + 22, claimed)
            break
        cd = data.find(b"PK\x01\x02", cd + 4)
    return bytes(data)


def zip64_small_docx(paragraphs: Sequence[str]) -> bytes:
    """A DOCX written as ZIP64 all the way: every size and offset in the central
    directory is the 0xFFFFFFFF sentinel with the real (small) values in a ZIP64 extra
    field, and the end record points at a ZIP64 end-of-directory record."""
    members = [
        ("[Content_Types].xml", CONTENT_TYPES.encode()),
        ("_rels/.rels", ROOT_RELS.encode()),
        ("word/document.xml", document_xml(paragraphs).encode()),
    ]
    out = io.BytesIO()
    central = io.BytesIO()
    for name, raw in members:
        packed = zlib.compress(raw, 9)[2:-4]  # raw deflate
        crc = zlib.crc32(raw)
        offset = out.tell()
        name_b = name.encode()
        local_extra = struct.pack("<HHQQ", 1, 16, len(raw), len(packed))
        out.write(
            struct.pack(
                "<4sHHHHHIIIHH", b"PK\x03\x04", 45, 0, 8, 0, 0, crc,
                0xFFFFFFFF, 0xFFFFFFFF, len(name_b), len(local_extra),
            )
            + name_b + local_extra + packed
        )  # fmt: skip
        cd_extra = struct.pack("<HHQQQ", 1, 24, len(raw), len(packed), offset)
        central.write(
            struct.pack(
                "<4sHHHHHHIIIHHHHHII", b"PK\x01\x02", 45, 45, 0, 8, 0, 0, crc,
                0xFFFFFFFF, 0xFFFFFFFF, len(name_b), len(cd_extra), 0, 0, 0, 0,
                0xFFFFFFFF,
            )
            + name_b + cd_extra
        )  # fmt: skip
    cd_offset = out.tell()
    cd_bytes = central.getvalue()
    out.write(cd_bytes)
    zip64_eocd = out.tell()
    out.write(
        struct.pack(
            "<4sQHHIIQQQQ", b"PK\x06\x06", 44, 45, 45, 0, 0, len(members),
            len(members), len(cd_bytes), cd_offset,
        )
    )  # fmt: skip
    out.write(struct.pack("<4sIQI", b"PK\x06\x07", 0, zip64_eocd, 1))
    out.write(
        struct.pack(
            "<4sHHHHIIH", b"PK\x05\x06", 0, 0, 0xFFFF, 0xFFFF, 0xFFFFFFFF,
            0xFFFFFFFF, 0,
        )
    )  # fmt: skip
    return out.getvalue()


def patch_directory(
    data: bytes,
    name: str,
    *,
    file_size: int | None = None,
    compress_size: int | None = None,
    flags: int | None = None,
) -> bytes:
    """Rewrite what the central directory declares about one member."""
    out = bytearray(data)
    pos = out.find(b"PK\x01\x02")
    while pos >= 0:
        name_len = struct.unpack_from("<H", out, pos + 28)[0]
        if bytes(out[pos + 46 : pos + 46 + name_len]) == name.encode():
            if flags is not None:
                struct.pack_into("<H", out, pos + 8, flags)
            if compress_size is not None:
                struct.pack_into("<I", out, pos + 20, compress_size)
            if file_size is not None:
                struct.pack_into("<I", out, pos + 24, file_size)
            return bytes(out)
        pos = out.find(b"PK\x01\x02", pos + 4)
    raise KeyError(name)


def patch_entry_count(data: bytes, entries: int) -> bytes:
    """Make the end-of-central-directory record lie about the number of entries."""
    out = bytearray(data)
    pos = out.rfind(b"PK\x05\x06")
    struct.pack_into("<HH", out, pos + 8, entries, entries)
    return bytes(out)


def tiny_png() -> bytes:
    """A valid 1×1 grey PNG."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return (
            struct.pack(">I", len(body))
            + kind
            + body
            + struct.pack(">I", zlib.crc32(kind + body))
        )

    header = struct.pack(">IIBBBBB", 1, 1, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\x00\x80"))
        + chunk(b"IEND", b"")
    )
