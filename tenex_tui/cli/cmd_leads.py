"""`tenex-tui leads …`: import leads from a CSV or JSON export, list and show them.

The file is read through the attachment loader's safe snapshot (no symlinks, no
special files, a size cap) and parsed here (`engine.leads`: a header row names the
fields; a JSON array of objects, or JSON Lines); the backend stores each record
verbatim. Importing the same records again does not duplicate them.
"""

from __future__ import annotations

import argparse
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from tenex_tui.cli import output
from tenex_tui.cli.cmd_knowledge import columns
from tenex_tui.cli.context import EXIT_OK, CliContext, positive_int
from tenex_tui.core.models import Lead, Page

if TYPE_CHECKING:
    from tenex_tui.core.backend import ChatBackend
    from tenex_tui.engine.leads import ParsedLeads


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `leads` and its subcommands."""
    leads = subparsers.add_parser("leads", help="import, list and show leads")
    commands = leads.add_subparsers(
        dest="leads_command", metavar="ACTION", required=True
    )

    p = commands.add_parser(
        "import",
        help="import leads from a CSV or JSON file",
        description=(
            "FILE is a CSV export with a header row (the header names the fields), a "
            "JSON array of objects, or JSON Lines. Each lead's name is taken from a "
            "name, company or email column. Records already imported are not "
            "duplicated."
        ),
    )
    p.add_argument("file", metavar="FILE")
    p.add_argument("--json", action="store_true", help="print the leads as JSON")
    p.set_defaults(handler=import_leads)

    p = commands.add_parser("list", help="list leads, newest first")
    p.add_argument("--query", metavar="Q", help="only names containing Q")
    p.add_argument(
        "--limit", metavar="N", type=positive_int, help="page size (default 50)"
    )
    p.add_argument("--cursor", metavar="C", help="the next_cursor of a previous page")
    p.add_argument("--json", action="store_true", help="print the page as JSON")
    p.set_defaults(handler=list_leads)

    p = commands.add_parser("show", help="print a lead's fields")
    p.add_argument("lead_id", metavar="ID")
    p.add_argument("--json", action="store_true", help="print the lead as JSON")
    p.set_defaults(handler=show_lead)


def read_leads_file(path: Path, protected: tuple[Path, ...] = ()) -> ParsedLeads:
    """Read and parse a lead file (never one of `protected`, tenex-tui's own files).

    Raises:
        AttachmentError: When the file cannot be read safely (one sentence).
        InvalidRequest: When it is not a lead file or a record breaks a rule.
    """
    # Imported here: only this command needs the loader and the parser.
    from tenex_tui.attachments import AttachmentLimits
    from tenex_tui.attachments.snapshot import take_snapshot
    from tenex_tui.engine.leads import MAX_LEADS_FILE_BYTES, parse_leads

    snapshot = take_snapshot(
        path,
        AttachmentLimits(
            max_file_bytes=MAX_LEADS_FILE_BYTES, protected_paths=protected
        ),
    )
    return parse_leads(snapshot.data, filename=snapshot.name)


def import_leads(args: argparse.Namespace, ctx: CliContext) -> int:
    """`leads import FILE`: one line per lead, then a count."""
    parsed = read_leads_file(Path(args.file), ctx.paths.own_files)
    for warning in parsed.warnings:
        ctx.error(f"tenex-tui: {output.clean_line(warning)}")

    async def body(backend: ChatBackend) -> tuple[list[Lead], datetime]:
        before = datetime.now(UTC)
        return await backend.import_leads(parsed.records), before

    leads, before = ctx.run(body)
    if args.json:
        page = Page[Lead](items=leads, next_cursor=None, total=len(leads))
        ctx.out(output.dumps(page.model_dump(mode="json")))
        return EXIT_OK
    unique = list({lead.id: lead for lead in leads}.values())
    new = sum(1 for lead in unique if lead.created_at >= before)
    for line in columns([(lead.id, output.clean_line(lead.name)) for lead in unique]):
        ctx.out(line)
    known = len(unique) - new
    note = f" ({known} already present)" if known else ""
    ctx.error(f"tenex-tui: imported {new} lead{'s' if new != 1 else ''}{note}")
    return EXIT_OK


def list_leads(args: argparse.Namespace, ctx: CliContext) -> int:
    """`leads list`: id, added, name."""

    async def body(backend: ChatBackend) -> Page[Lead]:
        return await backend.list_leads(
            limit=args.limit, cursor=args.cursor, q=args.query
        )

    page = ctx.run(body)
    if args.json:
        ctx.out(output.dumps(page.model_dump(mode="json")))
        return EXIT_OK
    if not page.items:
        ctx.error("tenex-tui: no leads")
        return EXIT_OK
    now = datetime.now(UTC)
    rows = [("ID", "ADDED", "NAME")]
    rows += [
        (
            lead.id,
            output.relative_time(lead.created_at, now),
            output.clean_line(lead.name),
        )
        for lead in page.items
    ]
    for line in columns(rows):
        ctx.out(line)
    if page.next_cursor:
        ctx.error(f"tenex-tui: more leads: --cursor {page.next_cursor}")
    return EXIT_OK


def show_lead(args: argparse.Namespace, ctx: CliContext) -> int:
    """`leads show ID`: the name, then one `field: value` line per field."""

    async def body(backend: ChatBackend) -> Lead:
        return await backend.get_lead(args.lead_id)

    lead = ctx.run(body)
    if args.json:
        ctx.out(output.dumps(lead.model_dump(mode="json")))
        return EXIT_OK
    ctx.out(output.clean_line(lead.name))
    ctx.out(f"{lead.id} · imported {output.format_time(lead.created_at)}")
    for key, value in lead.fields.items():
        text = value if isinstance(value, str) else output.dumps(value, indent=None)
        ctx.out(f"  {output.clean_line(key)}: {output.clean_line(text)}")
    return EXIT_OK
