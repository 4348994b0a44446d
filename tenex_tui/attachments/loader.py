"""Load files as attachments: a safe snapshot, then text for the model, under budgets.

`load_attachment(path)` turns one file into a `LoadedAttachment` (an `AttachmentInput`,
so it goes straight into a send body) or raises `AttachmentError` with one sentence that
names the file. `load_attachments(paths)` does the same for a message and applies the
per-message budgets, refusing with a per-file summary (T52).

Each file goes through, in the order of cost:

1. `snapshot.take_snapshot`: path checks, symlink and special-file refusal, the size
   from `fstat`, and a bounded read; its SHA-256 is taken here, at attach time (T54).
2. `sniff`: the content decides the reader; binary files are refused (T48).
3. The reader: text is decoded here; PDF, DOCX and HTML are parsed in a child process
   under memory and time limits (`worker.py`, T49–T51).
4. Hidden characters are stripped (T32) and the text is cut to the budget with an
   explicit marker: "[truncated: showing the first N of M characters]".

Everything here blocks; callers on an event loop use `load_attachments_async`.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

from tenex_tui.attachments.extract import (
    TextSink,
    decode_text,
    pretty_json,
    pretty_json_lines,
    table_text,
)
from tenex_tui.attachments.limits import AttachmentLimits, format_limit, format_size
from tenex_tui.attachments.snapshot import (
    PathArg,
    display_name,
    short_name,
    take_snapshot,
)
from tenex_tui.attachments.sniff import (
    DOCX_EXTENSIONS,
    DOCX_MEDIA_TYPE,
    extension,
    sniff,
)
from tenex_tui.attachments.worker import ParserResult, run_parser
from tenex_tui.attachments.zipcheck import ZipRefused, inspect_zip
from tenex_tui.core.errors import AttachmentError
from tenex_tui.core.payloads import AttachmentInput


class LoadedAttachment(AttachmentInput):
    """An attachment ready to send, plus what the loader has to tell the user.

    It is an `AttachmentInput`, so it goes into `SendMessageBody.attachments` as it is;
    `warnings` is not part of the wire body (pydantic serialises a field by its declared
    type, so the send body drops it).
    """

    warnings: tuple[str, ...] = ()
    """Sentences about what was changed or left out (invalid bytes replaced, hidden
    characters removed, a document read only in part)."""


class AttachmentsRefused(AttachmentError):
    """Some files of a message cannot be attached; the message lists each of them."""

    def __init__(self, message: str, problems: Sequence[tuple[str, str]]) -> None:
        super().__init__(message)
        self.problems: tuple[tuple[str, str], ...] = tuple(problems)
        """(display name, sentence) for each refused file."""


@dataclass(slots=True)
class _Extracted:
    name: str
    media_type: str
    size: int
    sha256: str
    body: str
    """At most `max_file_chars` characters."""
    total_chars: int | None
    """All characters extracted; None when a parser stopped early."""
    grown: bool
    warnings: list[str] = field(default_factory=list)
    note: str | None = None
    """What a parser that stopped early did read (for the marker)."""


def _hidden_warning(label: str, count: int) -> str:
    what = "character" if count == 1 else "characters"
    return (
        f"{label} had {count:,} hidden {what} removed (Unicode tags, which can carry "
        "instructions no one can see)"
    )


def _binary(label: str, media_type: str) -> AttachmentError:
    return AttachmentError(
        f"{label} looks like a binary file ({media_type}); only text, PDF and DOCX "
        "can be attached"
    )


def _extract_text(
    data: bytes, bom: str | None, media_type: str, label: str, limits: AttachmentLimits
) -> ParserResult:
    """Decode a text file and read it by its media type; warnings are phrases."""
    text, phrases = decode_text(data, bom)
    more: list[str] = []
    if media_type == "application/json":
        text, more = pretty_json(text)
    elif media_type == "application/x-ndjson":
        text, more = pretty_json_lines(text)
    elif media_type in ("text/csv", "text/tab-separated-values"):
        delimiter = "\t" if media_type == "text/tab-separated-values" else None
        text, more = table_text(text, delimiter=delimiter)
    elif media_type == "text/html":
        result = run_parser("html", text.encode("utf-8"), name=label, limits=limits)
        return replace(result, warnings=(*phrases, *result.warnings))
    phrases += more
    sink = TextSink(limits.max_file_chars)
    sink.add(text)
    if not sink.total:
        phrases.append("is empty")
    return ParserResult(sink.text, sink.total, sink.hidden, tuple(phrases))


def _load_one(path: PathArg, limits: AttachmentLimits) -> _Extracted:
    snap = take_snapshot(path, limits)
    name, data, grown = snap.name, snap.data, snap.grown
    label = short_name(name)
    digest = hashlib.sha256(data).hexdigest()
    sniffed = sniff(name, data)
    ext = extension(name)
    kind: str = sniffed.kind
    media_type = sniffed.media_type
    if kind == "zip":
        # Only the central directory is read here: a bomb is refused before the
        # child process is even started. A zip without a Word document part is
        # refused as binary, whatever its name says.
        named_docx = media_type == DOCX_MEDIA_TYPE
        try:
            names = inspect_zip(data, limits).names
        except ZipRefused as exc:
            if named_docx:
                raise AttachmentError(f"{label} {exc.reason}") from exc
            raise _binary(label, media_type) from exc
        if "word/document.xml" not in names:
            if named_docx:
                raise AttachmentError(
                    f"{label} is not a Word document (it has no word/document.xml)"
                )
            raise _binary(label, media_type)
        kind, media_type = "docx", DOCX_MEDIA_TYPE
    if kind == "binary":
        raise _binary(label, media_type)
    if ext == ".pdf" and kind != "pdf":
        raise AttachmentError(f"{label} is not a valid PDF (it has no PDF header)")
    if ext in DOCX_EXTENSIONS and kind != "docx":
        raise AttachmentError(f"{label} is not a valid Word document")
    warnings: list[str] = []
    if grown:
        warnings.append(
            f"{label} grew while it was read; only its first "
            f"{format_limit(limits.max_file_bytes)} were attached"
        )
    if kind in ("pdf", "docx"):
        result = run_parser(
            "pdf" if kind == "pdf" else "docx", data, name=label, limits=limits
        )
    else:
        result = _extract_text(data, sniffed.bom, media_type, label, limits)
    warnings += [f"{label} {phrase}" for phrase in result.warnings]
    if result.hidden:
        warnings.append(_hidden_warning(label, result.hidden))
    return _Extracted(
        name=name,
        media_type=media_type,
        size=len(data),
        sha256=digest,
        body=result.text,
        total_chars=result.total_chars,
        grown=grown,
        warnings=warnings,
        note=result.note,
    )


def _finish(
    extracted: _Extracted, budget: int, limits: AttachmentLimits
) -> LoadedAttachment:
    shown = min(len(extracted.body), budget)
    text = extracted.body[:shown]
    total = extracted.total_chars
    truncated = extracted.grown
    if total is None:
        note = extracted.note or "the rest was not read"
        text += f"\n\n[truncated: showing the first {shown:,} characters; {note}]"
        truncated = True
    elif total > shown:
        text += f"\n\n[truncated: showing the first {shown:,} of {total:,} characters]"
        truncated = True
    if extracted.grown:
        text += (
            "\n\n[truncated: the file grew while it was read; only its first "
            f"{format_limit(limits.max_file_bytes)} were read]"
        )
    return LoadedAttachment(
        name=extracted.name,
        kind="file",
        media_type=extracted.media_type,
        size=extracted.size,
        sha256=extracted.sha256,
        text=text,
        truncated=truncated,
        warnings=tuple(extracted.warnings),
    )


def _guarded_load(path: PathArg, limits: AttachmentLimits) -> _Extracted:
    try:
        return _load_one(path, limits)
    except AttachmentError:
        raise
    except Exception as exc:
        # The contract is one clear sentence per file: nothing a library raises may
        # reach a caller (the cause stays chained for debugging).
        raise AttachmentError(
            f"{short_name(display_name(path))} could not be read "
            f"(unexpected {type(exc).__name__})"
        ) from exc


def load_attachment(
    path: PathArg, *, limits: AttachmentLimits | None = None
) -> LoadedAttachment:
    """Load one file as an attachment.

    Args:
        path: The file, as the user gave it (`~` is not expanded here).
        limits: The caps; the defaults when None.

    Returns:
        The snapshot's text (cut to `max_file_chars` with a marker), name, media type,
        size and SHA-256, and any warnings.

    Raises:
        AttachmentError: One sentence naming the file; no other exception escapes.
    """
    limits = limits or AttachmentLimits()
    return _finish(_guarded_load(path, limits), limits.max_file_chars, limits)


def _over_budget(sizes: Sequence[tuple[str, int]], limit: int) -> dict[int, str]:
    """Sentences for the files, by index, that do not fit the message's size budget."""
    over: dict[int, str] = {}
    running = 0
    for index, (name, size) in enumerate(sizes):
        running += size
        if running > limit:
            over[index] = (
                f"{short_name(name)} ({format_size(size)}) takes the message to "
                f"{format_size(running)}; the limit per message is {format_limit(limit)}"
            )
    return over


def _summary(problems: Sequence[tuple[str, str]], count: int) -> str:
    if count == 1 and len(problems) == 1:
        return problems[0][1]
    lines = "\n".join(f"- {sentence}" for _, sentence in problems)
    return f"{len(problems)} of {count} files could not be attached:\n{lines}"


def _declared_size(path: PathArg) -> int:
    try:
        return os.lstat(path).st_size
    except (OSError, ValueError):
        return 0  # the load reports the problem


def load_attachments(
    paths: Sequence[PathArg], *, limits: AttachmentLimits | None = None
) -> list[LoadedAttachment]:
    """Load the files of one message under the per-file and per-message budgets.

    Files over the message's size budget are refused before they are parsed (sizes from
    `lstat`, confirmed on the snapshots). The message's text budget is shared in order:
    a file past it is cut with the truncation marker, and a file that gets no room at
    all is refused.

    Args:
        paths: The files, in the order they are attached.
        limits: The caps; the defaults when None.

    Returns:
        One attachment per path, in order.

    Raises:
        AttachmentsRefused: Too many files, or any file refused; the message has one
            line per refused file, and `problems` lists them.
    """
    limits = limits or AttachmentLimits()
    paths = list(paths)
    if len(paths) > limits.max_files:
        raise AttachmentsRefused(
            f"{len(paths)} files were given; at most {limits.max_files} can be "
            "attached to one message",
            [],
        )
    names = [display_name(path) for path in paths]
    problems = _over_budget(
        [(name, _declared_size(path)) for name, path in zip(names, paths, strict=True)],
        limits.max_message_bytes,
    )
    loaded: dict[int, _Extracted] = {}
    for index, path in enumerate(paths):
        if index in problems:
            continue
        try:
            loaded[index] = _guarded_load(path, limits)
        except AttachmentError as exc:
            problems[index] = str(exc)
    # The snapshots are what counts: a file may have grown since `lstat`.
    accepted = sorted(loaded)
    for position, sentence in _over_budget(
        [(loaded[i].name, loaded[i].size) for i in accepted], limits.max_message_bytes
    ).items():
        problems.setdefault(accepted[position], sentence)
    results: list[LoadedAttachment] = []
    remaining = limits.max_message_chars
    for index in accepted:
        if index in problems:
            continue
        extracted = loaded[index]
        if remaining <= 0:
            problems[index] = (
                f"{short_name(extracted.name)} does not fit: the files before it use the "
                f"message's text budget of {limits.max_message_chars:,} characters"
            )
            continue
        budget = min(limits.max_file_chars, remaining)
        results.append(_finish(extracted, budget, limits))
        remaining -= min(len(extracted.body), budget)
    if problems:
        ordered = [(names[i], problems[i]) for i in sorted(problems)]
        raise AttachmentsRefused(_summary(ordered, len(paths)), ordered)
    return results


async def load_attachments_async(
    paths: Sequence[PathArg], *, limits: AttachmentLimits | None = None
) -> list[LoadedAttachment]:
    """`load_attachments` in a thread, for callers on an event loop (the app, the engine).

    Raises:
        AttachmentsRefused: As `load_attachments`.
    """
    return await asyncio.to_thread(load_attachments, list(paths), limits=limits)
