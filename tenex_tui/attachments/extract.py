"""Turn the bytes of a text file into the text a model reads.

Decoding follows T48: a byte-order mark decides (UTF-8, UTF-16, UTF-32); otherwise UTF-8
with `errors="replace"` and a count of the replacements; Latin-1 only when invalid
sequences outnumber valid non-ASCII characters (a Latin-1 file, not a UTF-8 file with a
bad byte). Line endings are normalised to `\\n`.

Then by media type: JSON is validated and pretty-printed, CSV/TSV becomes tab-separated
rows, HTML becomes its visible text (scripts and styles dropped). HTML goes through the
stdlib parser, which is quadratic on some malformed input in this Python (`"</" * 10**6`
took minutes here), so the loader runs `html_to_text` in the parser child process
under the same timeout as PDF and DOCX; everything else here is linear.

Everything here is pure and needs only the stdlib and `core.text`, so the parser child
process imports it cheaply.
"""

from __future__ import annotations

import csv
import io
import json
import re
from html.parser import HTMLParser

from tenex_tui.core.text import strip_hidden

_REPLACEMENT = "\ufffd"
# Lone surrogates (a PDF's broken ToUnicode map can produce them) cannot be encoded as
# UTF-8, so they would break the JSON reply of the child and SQLite later.
_SURROGATE = re.compile("[\ud800-\udfff]")


def decode_text(data: bytes, bom: str | None = None) -> tuple[str, list[str]]:
    """Decode a text file.

    Args:
        data: The raw bytes.
        bom: The codec named by a byte-order mark at the start of `data`, if any.

    Returns:
        The text with `\\n` line endings, and warnings (phrases that follow the file
        name: "has 3 invalid UTF-8 sequences, shown as �").
    """
    warnings: list[str] = []
    if bom is not None:
        text = data.decode(bom, errors="replace")
        # The utf-16/32 codecs keep the BOM as U+FEFF; utf-8 needs utf-8-sig to drop it.
        text = text.removeprefix("\ufeff")
        bad = text.count(_REPLACEMENT)
        if bad:
            warnings.append(f"has {bad:,} invalid {bom.upper()} sequences, shown as �")
    else:
        text = data.decode("utf-8", errors="replace")
        bad = text.count(_REPLACEMENT) - data.count(b"\xef\xbf\xbd")
        if bad > 0:
            valid_non_ascii = sum(1 for c in text if c > "\x7f") - text.count(
                _REPLACEMENT
            )
            if bad > valid_non_ascii:
                text = data.decode("latin-1")
                warnings.append("is not valid UTF-8; it was read as Latin-1")
            else:
                plural = "sequence" if bad == 1 else "sequences"
                warnings.append(f"has {bad:,} invalid UTF-8 {plural}, shown as �")
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    return text, warnings


def pretty_json(text: str) -> tuple[str, list[str]]:
    """Validate JSON and indent it; invalid JSON is kept as it is, with a warning.

    Returns:
        The text to attach and warnings.
    """
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        return text, [
            f"is not valid JSON (line {exc.lineno}, column {exc.colno}); "
            "it was attached as plain text"
        ]
    except (RecursionError, ValueError):
        return text, ["could not be checked as JSON; it was attached as plain text"]
    try:
        return json.dumps(value, indent=2, ensure_ascii=False), []
    except (RecursionError, ValueError):
        return text, []


def pretty_json_lines(text: str) -> tuple[str, list[str]]:
    """Check JSON Lines: report the first invalid line, keep the text as it is."""
    for number, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        try:
            json.loads(line)
        except (json.JSONDecodeError, RecursionError, ValueError):
            return text, [f"has invalid JSON on line {number}"]
    return text, []


def table_text(text: str, *, delimiter: str | None = None) -> tuple[str, list[str]]:
    """Render CSV/TSV as tab-separated rows, one per line.

    Tabs and line breaks inside a field become spaces, so each row stays on one line
    and columns stay aligned for the model. The dialect is sniffed from a sample when no
    delimiter is given.

    Returns:
        The table text, and warnings (unparseable CSV is attached as it is).
    """
    if delimiter is None:
        try:
            dialect: type[csv.Dialect] | csv.Dialect = csv.Sniffer().sniff(
                text[:16384], delimiters=",;\t|"
            )
        except csv.Error:
            dialect = csv.excel
    else:
        dialect = csv.excel_tab if delimiter == "\t" else csv.excel
    rows: list[str] = []
    try:
        for row in csv.reader(io.StringIO(text), dialect):
            rows.append(
                "\t".join(
                    cell.replace("\t", " ").replace("\n", " ").strip() for cell in row
                )
            )
    except csv.Error as exc:
        return text, [f"could not be read as a table ({exc}); it was attached as text"]
    return "\n".join(rows), []


_DROPPED = frozenset({"script", "style", "noscript", "template", "svg", "head"})
_PARAGRAPH = frozenset(
    {
        "p", "h1", "h2", "h3", "h4", "h5", "h6", "blockquote", "pre", "table",
        "ul", "ol", "dl", "section", "article", "header", "footer", "main", "nav",
        "aside", "figure", "form", "hr", "details", "fieldset",
    }
)  # fmt: skip
_LINE = frozenset(
    {"div", "li", "tr", "dt", "dd", "summary", "caption", "figcaption", "address"}
)


class _TextExtractor(HTMLParser):
    """Collects the visible text of a page: blocks on their own lines, `- ` for list
    items, tabs between table cells, links followed by their http(s) target.

    Breaks are pending until the next text and merge by their largest size, so nested
    blocks (`<div><p>…`) give one blank line, not a stack of them.
    """

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.emitted = 0
        """Characters emitted so far (before blank lines are collapsed)."""
        self.title: str | None = None
        self._pending = 0
        self._skip = 0
        self._in_title = False
        self._title_parts: list[str] = []
        self._pre = 0
        self._href: str | None = None
        self._link_text: list[str] = []
        self._first_cell = True

    def _break(self, lines: int) -> None:
        self._pending = max(self._pending, lines)

    def _emit(self, text: str) -> None:
        if self._pending:
            if self.parts:
                self.parts.append("\n" * self._pending)
                self.emitted += self._pending
            self._pending = 0
        self.parts.append(text)
        self.emitted += len(text)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "title":
            self._in_title = True
            return
        if tag in _DROPPED:
            self._skip += 1
            return
        if self._skip:
            return
        if tag in _PARAGRAPH:
            self._break(2)
        elif tag in _LINE:
            self._break(1)
        if tag == "br":
            self._emit("\n")
        elif tag == "li":
            self._emit("- ")
        elif tag in ("td", "th"):
            if not self._first_cell:
                self._emit("\t")
            self._first_cell = False
        elif tag == "tr":
            self._first_cell = True
        elif tag == "pre":
            self._pre += 1
        elif tag == "a":
            href = dict(attrs).get("href") or ""
            self._href = href if href.startswith(("http://", "https://")) else None
            self._link_text = []

    def handle_endtag(self, tag: str) -> None:
        if tag == "title":
            self._in_title = False
            if self.title is None:
                self.title = " ".join("".join(self._title_parts).split())
            return
        if tag in _DROPPED:
            self._skip = max(0, self._skip - 1)
            return
        if self._skip:
            return
        if tag == "pre":
            self._pre = max(0, self._pre - 1)
        elif tag == "a" and self._href is not None:
            label = " ".join("".join(self._link_text).split())
            if label != self._href:
                self._emit(f" ({self._href})")
            self._href = None
        if tag in _PARAGRAPH:
            self._break(2)
        elif tag in _LINE:
            self._break(1)

    def handle_data(self, data: str) -> None:
        if self._in_title:
            self._title_parts.append(data)
            return
        if self._skip:
            return
        if self._href is not None:
            self._link_text.append(data)
        if self._pre:
            self._emit(data)
            return
        # Outside <pre>, runs of whitespace are one space, as a browser shows them.
        collapsed = " ".join(data.split())
        if not collapsed:
            if data and self.parts and not self._pending:
                last = self.parts[-1]
                if not last.endswith((" ", "\n", "\t")):
                    self.parts.append(" ")
            return
        at_line_start = self._pending > 0 or (
            not self.parts or self.parts[-1].endswith(("\n", " ", "\t"))
        )
        lead = " " if data[:1].isspace() and not at_line_start else ""
        trail = " " if data[-1:].isspace() else ""
        self._emit(f"{lead}{collapsed}{trail}")


_HTML_CHUNK = 64 * 1024


def html_to_text(html: str) -> str:
    """The visible text of an HTML document, with the title as a first line.

    Args:
        html: The decoded document.

    Returns:
        Plain text: blocks separated by blank lines, trailing spaces removed.
    """
    return html_to_text_prefix(html, None)[0]


def html_to_text_prefix(html: str, limit: int | None) -> tuple[str, bool]:
    """Like `html_to_text`, but stop parsing once `limit` characters of text exist.

    Returns:
        The text, and whether the whole document was parsed.
    """
    parser = _TextExtractor()
    complete = True
    if limit is None:
        parser.feed(html)
    else:
        for start in range(0, len(html), _HTML_CHUNK):
            parser.feed(html[start : start + _HTML_CHUNK])
            if parser.emitted > limit:
                complete = start + _HTML_CHUNK >= len(html)
                break
    if complete:
        parser.close()
    body: list[str] = []
    blank = True
    for line in "".join(parser.parts).split("\n"):
        line = line.rstrip()
        if not line:
            if not blank:
                body.append("")
            blank = True
            continue
        body.append(line)
        blank = False
    text = "\n".join(body).strip("\n")
    if parser.title and not text.startswith(parser.title):
        text = f"{parser.title}\n\n{text}" if text else parser.title
    return text, complete


class TextSink:
    """Collects extracted text up to a cap while counting all of it.

    Pieces (pages, paragraphs, whole files) go through `core.text.strip_hidden` first,
    so Unicode tag characters never reach the model (T32) and `hidden` counts them over
    the whole document, not just the part kept.
    """

    def __init__(self, cap: int) -> None:
        self.cap = cap
        self.total = 0
        """Characters seen, after hidden ones were removed."""
        self.hidden = 0
        """Hidden characters removed."""
        self._parts: list[str] = []
        self._kept = 0

    def add(self, piece: str, separator: str = "") -> None:
        """Append a piece, preceded by `separator` unless it is the first text."""
        piece, removed = strip_hidden(piece)
        self.hidden += removed
        if _SURROGATE.search(piece):
            piece = _SURROGATE.sub(_REPLACEMENT, piece)
        if self.total and separator:
            piece = separator + piece
        self.total += len(piece)
        if self._kept < self.cap:
            kept = piece[: self.cap - self._kept]
            self._parts.append(kept)
            self._kept += len(kept)

    @property
    def text(self) -> str:
        """The first `cap` characters."""
        return "".join(self._parts)
