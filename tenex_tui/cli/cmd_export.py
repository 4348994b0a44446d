"""`tenex-tui export ID`: a thread as Markdown or JSON, to stdout or a file."""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from tenex_tui.cli import output
from tenex_tui.cli.cmd_threads import fetch_thread
from tenex_tui.cli.context import EXIT_OK, CliContext
from tenex_tui.core.errors import StorageError

if TYPE_CHECKING:
    from tenex_tui.core.backend import ChatBackend
    from tenex_tui.core.models import Message, Thread


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `export`."""
    p = subparsers.add_parser(
        "export",
        help="export a thread as Markdown or JSON",
        description=(
            "Markdown is sanitised (no terminal control characters) unless --raw; "
            "JSON keeps every character, escaping the unsafe ones as \\uXXXX."
        ),
    )
    p.add_argument("thread_id", metavar="ID")
    p.add_argument("--format", choices=("md", "json"), default="md", dest="fmt")
    p.add_argument(
        "-o",
        "--output",
        metavar="PATH",
        type=Path,
        help="write to PATH (default stdout)",
    )
    p.add_argument(
        "--raw", action="store_true", help="keep control characters in Markdown"
    )
    p.set_defaults(handler=export)


def render(thread: Thread, messages: list[Message], fmt: str, *, raw: bool) -> str:
    """The export document, ending with a newline."""
    if fmt == "json":
        return output.dumps(output.thread_document(thread, messages)) + "\n"
    return output.markdown_export(thread, messages, raw=raw)


def export(args: argparse.Namespace, ctx: CliContext) -> int:
    """`export`: print the document, or write it atomically to `--output`."""

    async def body(backend: ChatBackend) -> tuple[Thread, list[Message]]:
        return await fetch_thread(backend, args.thread_id)

    thread, messages = ctx.run(body)
    if args.raw and args.fmt == "md":
        ctx.error(output.RAW_WARNING)
    document = render(thread, messages, args.fmt, raw=args.raw)
    if args.output is None:
        ctx.stdout.write(document)
        return EXIT_OK
    write_atomically(args.output, document)
    ctx.error(f"tenex-tui: wrote {args.output}")
    return EXIT_OK


def write_atomically(path: Path, text: str) -> None:
    """Write a file through a temporary sibling and a rename, so a reader never sees
    half an export and a failure leaves any previous file intact.

    Raises:
        StorageError: When the file cannot be written.
    """
    target = path.expanduser()
    try:
        fd, temp = tempfile.mkstemp(
            prefix=f".{target.name}.", suffix=".tmp", dir=target.parent or Path(".")
        )
    except OSError as exc:
        raise StorageError(f"cannot write {target}: {exc.strerror or exc}") from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        # Exports hold private chats: owner-only, like the database.
        os.chmod(temp, 0o600)
        os.replace(temp, target)
    except OSError as exc:
        Path(temp).unlink(missing_ok=True)
        raise StorageError(f"cannot write {target}: {exc.strerror or exc}") from None
