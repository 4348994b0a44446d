"""`tenex-tui threads …`: list, create, show, rename, pin, archive and delete threads."""

from __future__ import annotations

import argparse
import shutil
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from tenex_tui.cli import output
from tenex_tui.cli.context import EXIT_FAILURE, EXIT_OK, CliContext, positive_int
from tenex_tui.core.models import (
    MAX_PAGE_LIMIT,
    Message,
    Page,
    Thread,
    ThreadContext,
)

if TYPE_CHECKING:
    from tenex_tui.core.backend import ChatBackend

_MAX_MESSAGE_PAGES = 100_000
"""A bound on paging through one thread (200 per page: 20 million messages)."""


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `threads` and its subcommands."""
    threads = subparsers.add_parser(
        "threads", help="list, create, show and manage threads"
    )
    commands = threads.add_subparsers(
        dest="threads_command", metavar="ACTION", required=True
    )

    p = commands.add_parser("list", help="list threads, pinned first, then by recency")
    which = p.add_mutually_exclusive_group()
    which.add_argument("--archived", action="store_true", help="only archived threads")
    which.add_argument("--all", action="store_true", help="live and archived threads")
    p.add_argument("--pinned", action="store_true", help="only pinned threads")
    p.add_argument("--agent", metavar="SLUG", help="only threads bound to this agent")
    p.add_argument("--query", metavar="Q", help="only titles containing Q")
    p.add_argument(
        "--limit",
        metavar="N",
        type=positive_int,
        help="page size (default 50, max 200)",
    )
    p.add_argument("--cursor", metavar="C", help="the next_cursor of a previous page")
    p.add_argument("--json", action="store_true", help="print the page as JSON")
    p.set_defaults(handler=list_threads)

    p = commands.add_parser("new", help="create a thread and print its id")
    p.add_argument("--title", metavar="T")
    p.add_argument("--system-prompt", metavar="S", dest="system_prompt")
    p.add_argument("--agent", metavar="SLUG", help="bind the thread to an agent")
    p.add_argument(
        "--model", metavar="M", dest="thread_model", help="the model for this thread"
    )
    p.add_argument(
        "--knowledge",
        metavar="ID",
        action="append",
        default=[],
        help="give the model this knowledge document in every reply (repeatable)",
    )
    p.add_argument(
        "--lead", metavar="ID", help="give the model this lead in every reply"
    )
    p.add_argument("--json", action="store_true", help="print the thread as JSON")
    p.set_defaults(handler=new_thread)

    p = commands.add_parser("show", help="print a thread and all its messages")
    p.add_argument("thread_id", metavar="ID")
    p.add_argument(
        "--json", action="store_true", help="print {thread, messages} as JSON"
    )
    p.add_argument(
        "--raw", action="store_true", help="keep control characters (unsafe on a tty)"
    )
    p.set_defaults(handler=show_thread)

    p = commands.add_parser("rename", help="change a thread's title")
    p.add_argument("thread_id", metavar="ID")
    p.add_argument("title", metavar="TITLE")
    p.add_argument("--json", action="store_true", help="print the thread as JSON")
    p.set_defaults(handler=rename_thread)

    for action, help_text in (
        ("pin", "pin a thread to the top"),
        ("unpin", "unpin a thread"),
        ("archive", "move a thread to the archive"),
        ("unarchive", "bring a thread back from the archive"),
    ):
        p = commands.add_parser(action, help=help_text)
        p.add_argument("thread_id", metavar="ID")
        p.add_argument("--json", action="store_true", help="print the thread as JSON")
        p.set_defaults(handler=flag_thread, flag_action=action)

    p = commands.add_parser("delete", help="delete a thread and its messages")
    p.add_argument("thread_id", metavar="ID")
    p.add_argument(
        "-y", "--yes", action="store_true", help="do not ask for confirmation"
    )
    p.set_defaults(handler=delete_thread)


def list_threads(args: argparse.Namespace, ctx: CliContext) -> int:
    """`threads list`: one page, as a table or the JSON page envelope."""
    archived: bool | None = None if args.all else bool(args.archived)

    async def body(backend: ChatBackend) -> Page[Thread]:
        return await backend.list_threads(
            limit=args.limit,
            cursor=args.cursor,
            archived=archived,
            pinned=True if args.pinned else None,
            agent=args.agent,
            q=args.query,
        )

    page = ctx.run(body)
    if args.json:
        ctx.out(output.dumps(page.model_dump(mode="json")))
        return EXIT_OK
    if not page.items:
        ctx.error("tenex-tui: no threads")
        return EXIT_OK
    width = shutil.get_terminal_size().columns if ctx.stdout.isatty() else None
    for line in output.threads_table(page.items, now=datetime.now(UTC), width=width):
        ctx.out(line)
    if page.next_cursor:
        ctx.error(f"tenex-tui: more threads: --cursor {page.next_cursor}")
    return EXIT_OK


def new_thread(args: argparse.Namespace, ctx: CliContext) -> int:
    """`threads new`: print the new thread's id (or the thread as JSON)."""

    async def body(backend: ChatBackend) -> Thread:
        context = None
        if args.knowledge or args.lead:
            context = ThreadContext(knowledge=args.knowledge, lead=args.lead)
        return await backend.create_thread(
            title=args.title,
            system_prompt=args.system_prompt,
            agent=args.agent,
            context=context,
            model=args.thread_model,
        )

    thread = ctx.run(body)
    ctx.out(output.dumps(thread.model_dump(mode="json")) if args.json else thread.id)
    return EXIT_OK


async def fetch_all_messages(backend: ChatBackend, thread_id: str) -> list[Message]:
    """Page through a whole thread, oldest first."""
    messages: list[Message] = []
    cursor: str | None = None
    for _ in range(_MAX_MESSAGE_PAGES):
        page = await backend.list_messages(
            thread_id, limit=MAX_PAGE_LIMIT, cursor=cursor, order="asc"
        )
        messages.extend(page.items)
        if not page.next_cursor or page.next_cursor == cursor:
            break
        cursor = page.next_cursor
    return messages


async def fetch_thread(
    backend: ChatBackend, thread_id: str
) -> tuple[Thread, list[Message]]:
    """A thread and all its messages."""
    thread = await backend.get_thread(thread_id)
    return thread, await fetch_all_messages(backend, thread_id)


def show_thread(args: argparse.Namespace, ctx: CliContext) -> int:
    """`threads show`: the thread and every message, sanitised unless `--raw`."""

    async def body(backend: ChatBackend) -> tuple[Thread, list[Message]]:
        return await fetch_thread(backend, args.thread_id)

    thread, messages = ctx.run(body)
    if args.json:
        ctx.out(output.dumps(output.thread_document(thread, messages)))
        return EXIT_OK
    if args.raw:
        ctx.error(output.RAW_WARNING)
    for line in output.transcript(thread, messages, raw=args.raw):
        ctx.out(line)
    return EXIT_OK


def _print_thread(ctx: CliContext, thread: Thread, verb: str, as_json: bool) -> None:
    if as_json:
        ctx.out(output.dumps(thread.model_dump(mode="json")))
    else:
        ctx.out(f"{verb} {thread.id}: {output.display_title(thread)}")


def rename_thread(args: argparse.Namespace, ctx: CliContext) -> int:
    """`threads rename ID TITLE`."""

    async def body(backend: ChatBackend) -> Thread:
        return await backend.update_thread(args.thread_id, title=args.title)

    _print_thread(ctx, ctx.run(body), "renamed", args.json)
    return EXIT_OK


_FLAG_CHANGES: dict[str, tuple[str, bool, str]] = {
    "pin": ("pinned", True, "pinned"),
    "unpin": ("pinned", False, "unpinned"),
    "archive": ("archived", True, "archived"),
    "unarchive": ("archived", False, "unarchived"),
}


def flag_thread(args: argparse.Namespace, ctx: CliContext) -> int:
    """`threads pin|unpin|archive|unarchive ID`."""
    field, value, verb = _FLAG_CHANGES[args.flag_action]

    async def body(backend: ChatBackend) -> Thread:
        if field == "pinned":
            return await backend.update_thread(args.thread_id, pinned=value)
        return await backend.update_thread(args.thread_id, archived=value)

    _print_thread(ctx, ctx.run(body), verb, args.json)
    return EXIT_OK


def delete_thread(args: argparse.Namespace, ctx: CliContext) -> int:
    """`threads delete ID`: asks first on a terminal, unless `--yes`."""
    if not args.yes and ctx.stdin.isatty():

        async def look(backend: ChatBackend) -> Thread:
            return await backend.get_thread(args.thread_id)

        # Asked between two engine sessions, so no event loop waits on the keyboard.
        if not _confirm(ctx, ctx.run(look)):
            ctx.error("tenex-tui: not deleted")
            return EXIT_FAILURE

    async def body(backend: ChatBackend) -> Thread:
        thread = await backend.get_thread(args.thread_id)
        await backend.delete_thread(args.thread_id)
        return thread

    deleted = ctx.run(body)
    ctx.out(f"deleted {deleted.id}: {output.display_title(deleted)}")
    return EXIT_OK


def _confirm(ctx: CliContext, thread: Thread) -> bool:
    count = thread.message_count
    ctx.stderr.write(
        f"Delete {output.display_title(thread)!r} and its {count} "
        f"message{'s' if count != 1 else ''}? [y/N] "
    )
    ctx.stderr.flush()
    answer = ctx.stdin.readline()
    return answer.strip().lower() in {"y", "yes"}
