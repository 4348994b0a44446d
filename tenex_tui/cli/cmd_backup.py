"""`tenex-tui backup PATH`: a consistent copy of the database (SQLite backup API)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from tenex_tui.cli.context import EXIT_FAILURE, EXIT_OK, CliContext

if TYPE_CHECKING:
    from tenex_tui.engine.engine import LocalEngine


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `backup`."""
    p = subparsers.add_parser(
        "backup",
        help="copy the database to PATH, safely even while a reply streams",
    )
    p.add_argument("dest", metavar="PATH", type=Path)
    p.add_argument("--force", action="store_true", help="overwrite PATH if it exists")
    p.set_defaults(handler=backup)


def backup(args: argparse.Namespace, ctx: CliContext) -> int:
    """`backup`: refuses to overwrite an existing file unless `--force`."""
    dest: Path = args.dest.expanduser().absolute()
    if dest.exists() and not args.force:
        ctx.error(f"tenex-tui: {dest} exists; use --force to overwrite it")
        return EXIT_FAILURE
    if dest.is_dir():
        ctx.error(f"tenex-tui: {dest} is a folder; give a file name")
        return EXIT_FAILURE
    if dest == ctx.paths.database.absolute():
        ctx.error("tenex-tui: the backup cannot replace the database itself")
        return EXIT_FAILURE

    async def body(engine: LocalEngine) -> None:
        await engine.backup(dest)

    ctx.run_engine(body)
    ctx.out(str(dest))
    return EXIT_OK
