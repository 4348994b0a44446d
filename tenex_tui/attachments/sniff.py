"""What kind of file a snapshot is: text, PDF, DOCX, or something we refuse.

The content decides, not the name: a PNG renamed `notes.txt` is still refused, and a PDF
renamed `notes.txt` is read as a PDF. The name only picks the media type of text files
(`text/markdown`, `application/json`…) and the extractor that goes with it. Unknown
extensions with text content are accepted as `text/plain`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Kind = Literal["text", "pdf", "zip", "binary"]
"""How the loader continues: decode text, parse a PDF, check a zip (DOCX), or refuse."""

DOCX_MEDIA_TYPE = (
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
)
PDF_MEDIA_TYPE = "application/pdf"
DOCX_EXTENSIONS = frozenset({".docx", ".docm", ".dotx", ".dotm"})

BOMS: tuple[tuple[bytes, str], ...] = (
    # UTF-32 LE must be tried before UTF-16 LE: its BOM starts with the UTF-16 one.
    (b"\xff\xfe\x00\x00", "utf-32-le"),
    (b"\x00\x00\xfe\xff", "utf-32-be"),
    (b"\xef\xbb\xbf", "utf-8"),
    (b"\xff\xfe", "utf-16-le"),
    (b"\xfe\xff", "utf-16-be"),
)
"""Byte-order marks and the codec that reads what follows them."""

# Signatures at offset 0 (unless noted) and the media type we name in the refusal.
_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
    (b"BM", "image/bmp"),
    (b"II*\x00", "image/tiff"),
    (b"MM\x00*", "image/tiff"),
    (b"\x00\x00\x01\x00", "image/x-icon"),
    (b"8BPS", "image/vnd.adobe.photoshop"),
    (b"\x7fELF", "application/x-executable"),
    (b"MZ", "application/x-msdownload"),
    (b"\xca\xfe\xba\xbe", "application/java-vm"),
    (b"\xcf\xfa\xed\xfe", "application/x-mach-binary"),
    (b"\xfe\xed\xfa\xcf", "application/x-mach-binary"),
    (b"\x00asm", "application/wasm"),
    (b"\x1f\x8b", "application/gzip"),
    (b"BZh", "application/x-bzip2"),
    (b"\xfd7zXZ\x00", "application/x-xz"),
    (b"(\xb5/\xfd", "application/zstd"),
    (b"7z\xbc\xaf\x27\x1c", "application/x-7z-compressed"),
    (b"Rar!\x1a\x07", "application/vnd.rar"),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "application/x-ole-storage"),
    (b"SQLite format 3\x00", "application/vnd.sqlite3"),
    (b"OggS", "audio/ogg"),
    (b"fLaC", "audio/flac"),
    (b"ID3", "audio/mpeg"),
    (b"\x1aE\xdf\xa3", "video/webm"),
    (b"wOFF", "font/woff"),
    (b"wOF2", "font/woff2"),
)

# Signatures that are also plausible starts of a text file: they count only when the
# bytes after them are not text either (checked by the control-byte ratio).
_WEAK_MAGIC = frozenset({b"BM", b"MZ", b"BZh", b"ID3"})

_ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06", b"PK\x07\x08")

_ZIP_MEDIA_TYPES = {
    ".xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    ".pptx": "application/vnd.openxmlformats-officedocument.presentationml.presentation",
    ".odt": "application/vnd.oasis.opendocument.text",
    ".ods": "application/vnd.oasis.opendocument.spreadsheet",
    ".epub": "application/epub+zip",
    ".jar": "application/java-archive",
    ".apk": "application/vnd.android.package-archive",
}

TEXT_MEDIA_TYPES: dict[str, str] = {
    ".txt": "text/plain",
    ".text": "text/plain",
    ".log": "text/plain",
    ".md": "text/markdown",
    ".markdown": "text/markdown",
    ".mdx": "text/markdown",
    ".rst": "text/x-rst",
    ".json": "application/json",
    ".jsonl": "application/x-ndjson",
    ".ndjson": "application/x-ndjson",
    ".csv": "text/csv",
    ".tsv": "text/tab-separated-values",
    ".html": "text/html",
    ".htm": "text/html",
    ".xhtml": "text/html",
    ".xml": "application/xml",
    ".yaml": "application/yaml",
    ".yml": "application/yaml",
    ".toml": "application/toml",
    ".ini": "text/plain",
    ".cfg": "text/plain",
    ".py": "text/x-python",
    ".pyi": "text/x-python",
    ".js": "text/javascript",
    ".mjs": "text/javascript",
    ".ts": "text/x-typescript",
    ".tsx": "text/x-typescript",
    ".jsx": "text/javascript",
    ".css": "text/css",
    ".scss": "text/x-scss",
    ".sql": "application/sql",
    ".sh": "text/x-shellscript",
    ".bash": "text/x-shellscript",
    ".zsh": "text/x-shellscript",
    ".go": "text/x-go",
    ".rs": "text/x-rust",
    ".java": "text/x-java",
    ".kt": "text/x-kotlin",
    ".c": "text/x-c",
    ".h": "text/x-c",
    ".cpp": "text/x-c++",
    ".hpp": "text/x-c++",
    ".cc": "text/x-c++",
    ".cs": "text/x-csharp",
    ".rb": "text/x-ruby",
    ".php": "text/x-php",
    ".swift": "text/x-swift",
    ".lua": "text/x-lua",
    ".r": "text/x-r",
    ".tex": "text/x-tex",
    ".srt": "text/plain",
    ".vtt": "text/vtt",
    ".ics": "text/calendar",
    ".vcf": "text/vcard",
    ".eml": "message/rfc822",
    ".diff": "text/x-diff",
    ".patch": "text/x-diff",
}
"""Media types of text files by extension; anything else with text content is
`text/plain`."""

_SAMPLE = 64 * 1024
# Bytes that never appear in text (C0 controls other than \t \n \v \f \r and ESC).
_CONTROL_BYTES = bytes(b for b in range(32) if b not in (9, 10, 11, 12, 13, 27))


@dataclass(frozen=True, slots=True)
class Sniffed:
    """The verdict on a snapshot."""

    kind: Kind
    media_type: str
    bom: str | None = None
    """The codec named by a byte-order mark, for text with one."""


def extension(name: str) -> str:
    """The lower-cased extension of a display name, with its dot (`""` when none)."""
    base = name.rsplit("/", 1)[-1]
    stem, dot, ext = base.rpartition(".")
    return f".{ext.lower()}" if dot and stem else ""


def text_media_type(name: str) -> str:
    """The media type a text file of this name is sent as."""
    return TEXT_MEDIA_TYPES.get(extension(name), "text/plain")


def looks_binary(data: bytes) -> bool:
    """True when a sample of `data` holds bytes that text never contains.

    Git's rule (a NUL in the first 8000 bytes) plus a ratio: over 1 in 1000 NULs, or over
    10% other control bytes, in the first 64 KiB.
    """
    if b"\x00" in data[:8000]:
        return True
    sample = data[:_SAMPLE]
    if not sample:
        return False
    if sample.count(b"\x00") * 1000 > len(sample):
        return True
    controls = len(sample) - len(sample.translate(None, _CONTROL_BYTES))
    return controls * 10 > len(sample)


def sniff(name: str, data: bytes) -> Sniffed:
    """Decide how to read a snapshot.

    Args:
        name: The display name (its extension picks the media type of text).
        data: The bytes read from the file.

    Returns:
        The kind and media type; `binary` means the file is refused.
    """
    for bom, codec in BOMS:
        if data.startswith(bom):
            return Sniffed("text", text_media_type(name), bom=codec)
    if b"%PDF-" in data[:1024]:
        return Sniffed("pdf", PDF_MEDIA_TYPE)
    if data.startswith(_ZIP_MAGIC):
        ext = extension(name)
        if ext in DOCX_EXTENSIONS:
            return Sniffed("zip", DOCX_MEDIA_TYPE)
        return Sniffed("zip", _ZIP_MEDIA_TYPES.get(ext, "application/zip"))
    binary = looks_binary(data)
    for magic, media_type in _MAGIC:
        if data.startswith(magic) and (magic not in _WEAK_MAGIC or binary):
            return Sniffed("binary", media_type)
    if data[4:8] == b"ftyp":
        return Sniffed("binary", "video/mp4")
    if data.startswith(b"RIFF") and data[8:12] in (b"WEBP", b"WAVE", b"AVI "):
        kinds = {
            b"WEBP": "image/webp",
            b"WAVE": "audio/wav",
            b"AVI ": "video/x-msvideo",
        }
        return Sniffed("binary", kinds[data[8:12]])
    if len(data) > 262 and data[257:262] == b"ustar":
        return Sniffed("binary", "application/x-tar")
    if binary:
        return Sniffed("binary", "application/octet-stream")
    return Sniffed("text", text_media_type(name))
