"""PDF, DOCX and HTML readers. They run only inside the parser child process
(`worker.py`), under its memory and time limits; nothing here is imported by the loader.

Each reader returns a `Parsed` result or raises `Refused` with a phrase that completes
"report.pdf …"; any other exception is mapped by the worker to "could not be read".
Readers stop early (and say so) when the worker's soft deadline passes, so a long
document gives its first pages rather than nothing; the parent's hard timeout remains
the backstop for a parser stuck inside one page.

DOCX: the central directory is checked again (`zipcheck.inspect_zip`), then every XML
part is inflated with a streaming cap and checked with defusedxml (no DTD, no entity
declarations, no external references: Word never writes them, and T50's billion laughs
and `SYSTEM "file:///etc/passwd"` need them). The parts are repacked uncompressed for
python-docx, with every non-XML part (images, fonts, embedded objects) blanked: text
extraction does not need them, and they are never inflated.
"""

from __future__ import annotations

import io
import time
import zipfile
from dataclasses import dataclass, field

from tenex_tui.attachments.extract import TextSink, html_to_text_prefix
from tenex_tui.attachments.limits import AttachmentLimits
from tenex_tui.attachments.zipcheck import ZipRefused, inspect_zip, read_member


class Refused(Exception):
    """The document cannot be read; `reason` completes "x.pdf …" as a sentence."""

    def __init__(self, reason: str, code: str = "refused") -> None:
        super().__init__(reason)
        self.reason = reason
        self.code = code


@dataclass(slots=True)
class Parsed:
    """Text extracted by a reader, already cut to the text cap."""

    text: str
    total_chars: int | None
    """All characters extracted (None when reading stopped early)."""
    hidden: int = 0
    warnings: list[str] = field(default_factory=list)
    note: str | None = None
    """When reading stopped early: what was read, for the truncation marker."""


def _finish(
    sink: TextSink, *, note: str | None = None, warnings: list[str] | None = None
) -> Parsed:
    return Parsed(
        text=sink.text,
        total_chars=None if note is not None else sink.total,
        hidden=sink.hidden,
        warnings=warnings or [],
        note=note,
    )


def read_pdf(data: bytes, *, cap: int, deadline: float) -> Parsed:
    """Extract the text of a PDF, page by page.

    Args:
        data: The file.
        cap: Characters kept.
        deadline: A `time.monotonic()` value after which no new page is started.

    Raises:
        Refused: Encrypted, over a pypdf limit, damaged, or without any text.
    """
    from pypdf import PdfReader
    from pypdf.errors import (
        DependencyError,
        FileNotDecryptedError,
        LimitReachedError,
        PdfReadError,
        WrongPasswordError,
    )

    try:
        reader = PdfReader(io.BytesIO(data), strict=False)
        if reader.is_encrypted:
            # Many PDFs are "encrypted" with an empty user password only to set
            # permissions; those open. Anything else needs a password we do not have.
            try:
                if not reader.decrypt(""):
                    raise Refused("is encrypted", "encrypted")
            except (DependencyError, NotImplementedError, WrongPasswordError) as exc:
                raise Refused("is encrypted", "encrypted") from exc
        pages = reader.pages
        count = len(pages)
        sink = TextSink(cap)
        warnings: list[str] = []
        note: str | None = None
        for number in range(count):
            if time.monotonic() > deadline:
                note = (
                    f"only pages 1–{number:,} of {count:,} could be read in time"
                    if number
                    else "no page could be read in time"
                )
                warnings.append(
                    f"was only partly read: {number:,} of {count:,} pages in time"
                )
                break
            if sink.total > cap:
                # Past the cap the text is only counted; stop instead, and say which
                # pages were read (a long PDF costs its first pages, not all of them).
                note = f"pages 1–{number:,} of {count:,} were read"
                break
            page = pages[number]
            # extract_text() swallows decoding errors and returns "", which would
            # turn a bomb into "no text"; get_contents() decodes the same streams
            # and raises (pypdf caches the decoded stream for the text pass).
            page.get_contents()
            sink.add((page.extract_text() or "").strip("\n"), "\n\n")
    except Refused:
        raise
    except (FileNotDecryptedError, WrongPasswordError) as exc:
        raise Refused("is encrypted", "encrypted") from exc
    except LimitReachedError as exc:
        raise Refused(
            "expands beyond the PDF reader's safety limits (a decompression bomb "
            "or a damaged file)",
            "limit",
        ) from exc
    except (PdfReadError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise Refused("could not be read (it looks damaged)", "damaged") from exc
    except RecursionError as exc:
        raise Refused(
            "could not be read (its structure loops or nests too deeply)", "damaged"
        ) from exc
    if not sink.text.strip() and note is None:
        raise Refused(
            "has no text that can be extracted (it may be scanned images)", "no_text"
        )
    return _finish(sink, note=note, warnings=warnings)


class _NullTarget:
    """An XML parser target that builds nothing: expat only checks the document."""

    def close(self) -> None:
        return None


def check_xml(blob: bytes, part: str) -> None:
    """Refuse an XML part that declares a DTD or entities, or is not well-formed.

    Raises:
        Refused: With a phrase naming the part.
    """
    from xml.etree.ElementTree import ParseError

    from defusedxml import DefusedXmlException
    from defusedxml.ElementTree import DefusedXMLParser

    parser = DefusedXMLParser(
        target=_NullTarget(),
        forbid_dtd=True,
        forbid_entities=True,
        forbid_external=True,
    )
    try:
        parser.feed(blob)
        parser.close()
    except DefusedXmlException as exc:
        raise Refused(
            f"contains XML declarations that Word never writes (a DTD or entities, in "
            f"{part}); it was refused",
            "xml",
        ) from exc
    except ParseError as exc:
        raise Refused(f"is damaged ({part} is not well-formed XML)", "damaged") from exc


def _is_xml_part(name: str) -> bool:
    return name.lower().endswith((".xml", ".rels"))


def _repack(data: bytes, limits: AttachmentLimits) -> io.BytesIO:
    try:
        summary = inspect_zip(data, limits)
    except ZipRefused as exc:
        raise Refused(exc.reason, "zip") from exc
    if "word/document.xml" not in summary.names:
        raise Refused("is not a Word document (it has no word/document.xml)", "zip")
    budget = limits.zip_max_unpacked_bytes
    out = io.BytesIO()
    with (
        zipfile.ZipFile(io.BytesIO(data)) as archive,
        zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as clean,
    ):
        for info in archive.infolist():
            if info.is_dir():
                continue
            blob = b""
            if _is_xml_part(info.filename):
                try:
                    blob = read_member(archive, info, budget)
                except ZipRefused as exc:
                    raise Refused(exc.reason, "zip") from exc
                budget -= len(blob)
                check_xml(blob, info.filename)
            clean.writestr(info.filename, blob)
    out.seek(0)
    return out


def read_docx(
    data: bytes, *, cap: int, deadline: float, limits: AttachmentLimits
) -> Parsed:
    """Extract the text of a Word document: paragraphs (headings as `#`, list items as
    `- `) and tables (tab-separated rows), in document order.

    Raises:
        Refused: The archive fails a check, an XML part is hostile or damaged, or
            python-docx cannot read the document.
    """
    package = _repack(data, limits)
    import docx
    from docx.table import Table

    try:
        document = docx.Document(package)
    except Exception as exc:  # python-docx raises KeyError, ValueError, lxml errors…
        raise Refused("could not be read (it looks damaged)", "damaged") from exc
    sink = TextSink(cap)
    warnings: list[str] = []
    note: str | None = None
    blocks = 0
    # Unlike a PDF, the whole document is parsed by now; walking the rest only to
    # count its characters is cheap, so the marker can say "N of M characters".
    for block in document.iter_inner_content():
        if time.monotonic() > deadline:
            note = "the rest could not be read in time"
            warnings.append(f"was only partly read: {blocks:,} blocks in time")
            break
        blocks += 1
        if isinstance(block, Table):
            for row in block.rows:
                cells = (cell.text.replace("\n", " ").strip() for cell in row.cells)
                sink.add("\t".join(cells), "\n")
            continue
        text = block.text
        style = block.style.name if block.style is not None else ""
        style = style or ""
        if style.startswith("Heading ") and style[8:].isdigit() and text:
            text = "#" * min(int(style[8:]), 6) + " " + text
        elif style == "Title" and text:
            text = "# " + text
        elif style.startswith("List") and text:
            text = "- " + text
        sink.add(text, "\n")
    return _finish(sink, note=note, warnings=warnings)


def read_html(data: bytes, *, cap: int) -> Parsed:
    """The visible text of an HTML document (already decoded, sent as UTF-8).

    The page is parsed in chunks and parsing stops once the text passes the cap: a
    10 MB page costs the time of its first part (the stdlib parser manages about
    2 MB/s here), and the marker says the rest was not read.
    """
    text, complete = html_to_text_prefix(data.decode("utf-8", errors="replace"), cap)
    sink = TextSink(cap)
    sink.add(text)
    return _finish(sink, note=None if complete else "the rest of the page was not read")
