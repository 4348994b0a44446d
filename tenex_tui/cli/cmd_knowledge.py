"""`tenex-tui knowledge …`: add, list, show, remove and search brand-knowledge documents.

`knowledge add` takes files and folders. A file is read by the attachment loader (the
same checks as `send --attach`: symlinks, special files, binary content and archive
bombs are refused with one sentence each) with a larger text budget; a folder is walked
for the document types the loader reads, skipping hidden entries. A file that cannot
be added is reported and the others still are (exit status 1 when any failed).
"""

from __future__ import annotations

import argparse
import asyncio
import os
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from tenex_tui.cli import output
from tenex_tui.cli.context import (
    EXIT_FAILURE,
    EXIT_OK,
    CliContext,
    UsageError,
    positive_int,
)
from tenex_tui.core.errors import AttachmentError
from tenex_tui.core.models import KnowledgeDoc, KnowledgeHit, Page
from tenex_tui.core.payloads import MAX_KNOWLEDGE_CHARS

if TYPE_CHECKING:
    from tenex_tui.attachments import LoadedAttachment
    from tenex_tui.core.backend import ChatBackend

DOCUMENT_SUFFIXES: frozenset[str] = frozenset(
    {
        ".md",
        ".markdown",
        ".txt",
        ".text",
        ".rst",
        ".html",
        ".htm",
        ".pdf",
        ".docx",
        ".json",
        ".csv",
        ".tsv",
        ".yaml",
        ".yml",
    }
)
"""What `knowledge add FOLDER` picks up (a file named explicitly is always tried)."""
MAX_FOLDER_FILES = 10_000
"""Files taken from the folders of one `knowledge add` at most."""
MAX_FOLDER_DEPTH = 8


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `knowledge` and its subcommands."""
    knowledge = subparsers.add_parser(
        "knowledge", help="add, list, show, remove and search brand knowledge"
    )
    commands = knowledge.add_subparsers(
        dest="knowledge_command", metavar="ACTION", required=True
    )

    p = commands.add_parser(
        "add",
        help="add documents (files, or folders of them) to the brand knowledge",
        description=(
            "Add each PATH as a knowledge document: Markdown, text, HTML, PDF, DOCX, "
            "JSON, CSV… A folder adds the documents inside it (hidden entries are "
            "skipped). Adding a document whose text is already stored does nothing."
        ),
    )
    p.add_argument("paths", metavar="PATH", nargs="+")
    p.add_argument("--title", metavar="T", help="the title (one file only)")
    p.add_argument("--json", action="store_true", help="print the documents as JSON")
    p.set_defaults(handler=add_documents)

    p = commands.add_parser("list", help="list the documents, newest first")
    p.add_argument("--query", metavar="Q", help="only titles containing Q")
    p.add_argument(
        "--limit", metavar="N", type=positive_int, help="page size (default 50)"
    )
    p.add_argument("--cursor", metavar="C", help="the next_cursor of a previous page")
    p.add_argument("--json", action="store_true", help="print the page as JSON")
    p.set_defaults(handler=list_documents)

    p = commands.add_parser("show", help="print a document and its text")
    p.add_argument("doc_id", metavar="ID")
    p.add_argument("--json", action="store_true", help="print the document as JSON")
    p.add_argument(
        "--raw", action="store_true", help="keep control characters (unsafe on a tty)"
    )
    p.set_defaults(handler=show_document)

    p = commands.add_parser("remove", help="delete a document")
    p.add_argument("doc_id", metavar="ID")
    p.add_argument(
        "-y", "--yes", action="store_true", help="do not ask for confirmation"
    )
    p.set_defaults(handler=remove_document)

    p = commands.add_parser(
        "search",
        help="search the documents",
        description="QUERY is taken as words to find (any of them), never as syntax.",
    )
    p.add_argument("query", metavar="QUERY")
    p.add_argument(
        "--limit", metavar="N", type=positive_int, help="hits (default 8, max 50)"
    )
    p.add_argument("--json", action="store_true", help="print the hits as JSON")
    p.set_defaults(handler=search_documents)


# -- add -------------------------------------------------------------------------------


def _walk(folder: Path, depth: int = 0) -> Iterator[Path]:
    try:
        entries = sorted(os.scandir(folder), key=lambda e: e.name)
    except OSError:
        return
    for entry in entries:
        if entry.name.startswith("."):
            continue
        path = Path(entry.path)
        # Symlinks are neither followed nor added: the loader refuses them anyway.
        if entry.is_dir(follow_symlinks=False):
            if depth < MAX_FOLDER_DEPTH:
                yield from _walk(path, depth + 1)
        elif (
            entry.is_file(follow_symlinks=False)
            and path.suffix.lower() in DOCUMENT_SUFFIXES
        ):
            yield path


def document_paths(paths: Sequence[str]) -> list[Path]:
    """The files `knowledge add` reads: named files as given, folders walked.

    Raises:
        UsageError: When folders hold more than `MAX_FOLDER_FILES` documents.
    """
    found: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir() and not path.is_symlink():
            for item in _walk(path):
                found.append(item)
                if len(found) > MAX_FOLDER_FILES:
                    raise UsageError(
                        f"more than {MAX_FOLDER_FILES:,} documents in {raw}; add "
                        "smaller folders"
                    )
        else:
            found.append(path)
    return list(dict.fromkeys(found))


def _load(path: Path, protected: tuple[Path, ...]) -> LoadedAttachment:
    # Imported here: the loader (and its parsers) matter only to this command.
    from tenex_tui.attachments import AttachmentLimits, load_attachment

    limits = AttachmentLimits(
        max_file_bytes=20 * 1024 * 1024,
        max_file_chars=MAX_KNOWLEDGE_CHARS,
        protected_paths=protected,
    )
    return load_attachment(path, limits=limits)


def _title(path: Path, explicit: str | None) -> str:
    if explicit is not None:
        return explicit
    return path.stem.strip() or path.name


def add_documents(args: argparse.Namespace, ctx: CliContext) -> int:
    """`knowledge add`: one line per document added (or already there)."""
    paths = document_paths(args.paths)
    if args.title is not None and len(paths) != 1:
        raise UsageError("--title needs exactly one file")
    if not paths:
        ctx.error("tenex-tui: no documents found")
        return EXIT_FAILURE
    failures = 0
    added: list[KnowledgeDoc] = []

    async def body(backend: ChatBackend) -> None:
        nonlocal failures
        # One file at a time, loaded off the event loop: a folder of thousands of
        # documents never sits in memory at once.
        for path in paths:
            try:
                item = await asyncio.to_thread(_load, path, ctx.paths.own_files)
            except AttachmentError as exc:
                failures += 1
                ctx.error(f"tenex-tui: skipped: {output.clean_line(exc.message)}")
                continue
            for warning in item.warnings:
                ctx.error(
                    f"tenex-tui: {output.clean_line(item.name)}: "
                    f"{output.clean_line(warning)}"
                )
            before = datetime.now(UTC)
            doc = await backend.add_knowledge(
                _title(path, args.title),
                item.text,
                media_type=item.media_type,
                source=str(path),
            )
            added.append(doc)
            verb = "added" if doc.created_at >= before else "already present"
            line = (
                f"{verb} {doc.id}: {output.clean_line(doc.title)} "
                f"({doc.chunk_count} chunk{'s' if doc.chunk_count != 1 else ''})"
            )
            if args.json:
                ctx.error(f"tenex-tui: {line}")
            else:
                ctx.out(line)

    ctx.run(body)
    if args.json:
        ctx.out(output.dumps([doc.model_dump(mode="json") for doc in added]))
    return EXIT_FAILURE if failures else EXIT_OK


# -- list, show, remove, search ----------------------------------------------------------


def columns(rows: Sequence[Sequence[str]]) -> list[str]:
    """Left-aligned columns; the last column is not padded."""
    if not rows:
        return []
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    return [
        "  ".join(
            [*(cell.ljust(widths[i]) for i, cell in enumerate(row[:-1])), row[-1]]
        ).rstrip()
        for row in rows
    ]


def _size(size: int) -> str:
    from tenex_tui.attachments import format_size

    return format_size(size)


def list_documents(args: argparse.Namespace, ctx: CliContext) -> int:
    """`knowledge list`: id, chunks, size, added, title."""

    async def body(backend: ChatBackend) -> Page[KnowledgeDoc]:
        return await backend.list_knowledge(
            limit=args.limit, cursor=args.cursor, q=args.query
        )

    page = ctx.run(body)
    if args.json:
        ctx.out(output.dumps(page.model_dump(mode="json")))
        return EXIT_OK
    if not page.items:
        ctx.error("tenex-tui: no knowledge documents")
        return EXIT_OK
    now = datetime.now(UTC)
    rows = [("ID", "CHUNKS", "SIZE", "ADDED", "TITLE")]
    rows += [
        (
            doc.id,
            str(doc.chunk_count),
            _size(doc.size),
            output.relative_time(doc.created_at, now),
            output.clean_line(doc.title),
        )
        for doc in page.items
    ]
    for line in columns(rows):
        ctx.out(line)
    if page.next_cursor:
        ctx.error(f"tenex-tui: more documents: --cursor {page.next_cursor}")
    return EXIT_OK


def show_document(args: argparse.Namespace, ctx: CliContext) -> int:
    """`knowledge show ID`: the facts, then the text (sanitised unless `--raw`)."""

    async def body(backend: ChatBackend) -> KnowledgeDoc:
        return await backend.get_knowledge(args.doc_id, with_text=True)

    doc = ctx.run(body)
    if args.json:
        ctx.out(output.dumps(doc.model_dump(mode="json")))
        return EXIT_OK
    if args.raw:
        ctx.error(output.RAW_WARNING)
    ctx.out(output.clean_line(doc.title))
    facts = [
        doc.id,
        output.clean_line(doc.media_type),
        _size(doc.size),
        f"{doc.chunk_count} chunks",
        f"added {output.format_time(doc.created_at)}",
    ]
    ctx.out(" · ".join(facts))
    if doc.source:
        ctx.out(f"source: {output.clean_line(doc.source)}")
    ctx.out("")
    ctx.out(output.clean(doc.text or "", raw=args.raw).rstrip("\n"))
    return EXIT_OK


def remove_document(args: argparse.Namespace, ctx: CliContext) -> int:
    """`knowledge remove ID`: asks first on a terminal, unless `--yes`."""
    if not args.yes and ctx.stdin.isatty():

        async def look(backend: ChatBackend) -> KnowledgeDoc:
            return await backend.get_knowledge(args.doc_id)

        doc = ctx.run(look)
        ctx.stderr.write(f"Remove {output.clean_line(doc.title)!r}? [y/N] ")
        ctx.stderr.flush()
        if ctx.stdin.readline().strip().lower() not in {"y", "yes"}:
            ctx.error("tenex-tui: not removed")
            return EXIT_FAILURE

    async def body(backend: ChatBackend) -> KnowledgeDoc:
        doc = await backend.get_knowledge(args.doc_id)
        await backend.remove_knowledge(args.doc_id)
        return doc

    removed = ctx.run(body)
    ctx.out(f"removed {removed.id}: {output.clean_line(removed.title)}")
    return EXIT_OK


def search_documents(args: argparse.Namespace, ctx: CliContext) -> int:
    """`knowledge search Q`: per hit, the document and chunk, then the passage."""

    async def body(backend: ChatBackend) -> list[KnowledgeHit]:
        return await backend.search_knowledge(args.query, args.limit)

    hits = ctx.run(body)
    if args.json:
        page = Page[KnowledgeHit](items=hits, next_cursor=None, total=len(hits))
        ctx.out(output.dumps(page.model_dump(mode="json")))
        return EXIT_OK
    if not hits:
        ctx.error("tenex-tui: no matches")
        return EXIT_OK
    for hit in hits:
        ctx.out(f"{hit.doc_id}  #{hit.chunk}  {output.clean_line(hit.title)}")
        ctx.out(f"    {output.clean_line(hit.text, max_chars=240)}")
    return EXIT_OK
