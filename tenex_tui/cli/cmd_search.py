"""`tenex-tui search QUERY`: full-text search over messages and thread titles."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from tenex_tui.cli import output
from tenex_tui.cli.context import EXIT_OK, CliContext, positive_int
from tenex_tui.core.models import Page, SearchHit

if TYPE_CHECKING:
    from tenex_tui.core.backend import ChatBackend


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `search`."""
    p = subparsers.add_parser(
        "search",
        help="search messages and thread titles",
        description="QUERY is taken as words to find, never as query syntax.",
    )
    p.add_argument("query", metavar="QUERY")
    p.add_argument(
        "--limit", metavar="N", type=positive_int, help="hits per page (default 50)"
    )
    p.add_argument("--cursor", metavar="C", help="the next_cursor of a previous page")
    p.add_argument("--json", action="store_true", help="print the page as JSON")
    p.set_defaults(handler=search)


def search(args: argparse.Namespace, ctx: CliContext) -> int:
    """`search`: hits as two lines each (ids, then title and snippet), or JSON."""

    async def body(backend: ChatBackend) -> Page[SearchHit]:
        return await backend.search(args.query, limit=args.limit, cursor=args.cursor)

    page = ctx.run(body)
    if args.json:
        ctx.out(output.dumps(page.model_dump(mode="json")))
        return EXIT_OK
    if not page.items:
        ctx.error("tenex-tui: no matches")
        return EXIT_OK
    for line in output.search_table(page.items):
        ctx.out(line)
    if page.next_cursor:
        ctx.error(f"tenex-tui: more matches: --cursor {page.next_cursor}")
    return EXIT_OK
