"""`tenex-tui sync`: mirror the remote workspace into the local store, replay the outbox.

The remote is the one `--remote` uses (`TENEX_API_BASE` or `[remote] api_base`, the key
in `TENEX_API_KEY`). One run pushes what was done offline, then pulls what changed
remotely since the last run (see `remote/sync.py`). It prints the counts and every
offline action still pending; `--status` prints the state without any network request.

Exit status: 0 when the sync finished (even with actions still waiting), 1 when the
remote could not be reached or refused the key (the actions stay queued).
"""

from __future__ import annotations

import argparse
import asyncio
from typing import TYPE_CHECKING, Any

from tenex_tui.cli import output
from tenex_tui.cli.context import EXIT_FAILURE, EXIT_OK, CliContext
from tenex_tui.core.errors import TenexError
from tenex_tui.core.models import format_timestamp

if TYPE_CHECKING:
    from tenex_tui.core.sync import OutboxEntry
    from tenex_tui.remote.sync import SyncReport, SyncService, SyncStatus


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `sync`."""
    p = subparsers.add_parser(
        "sync",
        help="mirror the remote workspace locally and send what was done offline",
        description="Replay offline actions (in order, exactly once), then pull the "
        "threads and messages that changed on the remote workspace since the last "
        "sync, so they stay readable and searchable offline.",
    )
    p.add_argument(
        "--status",
        action="store_true",
        help="print the last sync and the pending actions without contacting the remote",
    )
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.set_defaults(handler=sync)


def _entry_document(entry: OutboxEntry) -> dict[str, Any]:
    return {
        "id": entry.id,
        "kind": entry.kind,
        "thread_id": entry.thread_id,
        "status": entry.status,
        "attempts": entry.attempts,
        "next_attempt_at": format_timestamp(entry.next_attempt_at)
        if entry.next_attempt_at
        else None,
        "last_error": entry.last_error,
        "created_at": format_timestamp(entry.created_at),
    }


def _status_document(status: SyncStatus) -> dict[str, Any]:
    return {
        "workspace_id": status.workspace_id,
        "online": status.online,
        "pending": status.pending,
        "failed": status.failed,
        "last_sync_at": format_timestamp(status.last_sync_at)
        if status.last_sync_at
        else None,
        "last_error": status.last_error,
    }


def _entry_line(entry: OutboxEntry) -> str:
    line = f"{entry.status:<8} {entry.id}  {entry.kind:<6} {entry.thread_id}"
    if entry.attempts:
        line += f"  attempts {entry.attempts}"
    if entry.last_error:
        line += f": {output.clean_line(entry.last_error, max_chars=200)}"
    return line


def _status_line(status: SyncStatus) -> str:
    if status.workspace_id is None:
        return "never synced on this machine"
    when = output.format_time(status.last_sync_at) if status.last_sync_at else "never"
    line = f"{status.workspace_id}: last synced {when}"
    if status.last_error:
        line += f"; last error: {output.clean_line(status.last_error, max_chars=300)}"
    return line


def _report_line(report: SyncReport, workspace: str | None) -> str:
    parts = [
        f"{report.threads} threads and {report.messages} messages updated",
        f"{report.threads_deleted} threads and {report.messages_deleted} messages "
        "deleted",
        f"{report.push.done} offline actions sent",
    ]
    if report.push.superseded:
        parts.append(f"{report.push.superseded} overridden by remote changes")
    if report.dropped:
        parts.append(f"{report.dropped} foreign rows dropped")
    full = " (full)" if report.full else ""
    return f"synced {workspace or '?'}{full}: " + "; ".join(parts)


def sync(args: argparse.Namespace, ctx: CliContext) -> int:
    """`sync`: one push-and-pull run, or `--status`."""
    from tenex_tui.cli.wiring import open_sync
    from tenex_tui.remote.sync import describe

    target = ctx.remote_target
    paths, choice = ctx.paths, ctx.choice

    async def body(
        service: SyncService,
    ) -> tuple[SyncReport | None, TenexError | None, SyncStatus, list[OutboxEntry]]:
        report: SyncReport | None = None
        error: TenexError | None = None
        if not args.status:
            try:
                report = await service.sync()
            except TenexError as exc:
                error = exc
        status = await service.status()
        port = service.port
        entries = await port.entries(("pending", "failed")) if port else []
        return report, error, status, entries

    async def runner() -> tuple[
        SyncReport | None, TenexError | None, SyncStatus, list[OutboxEntry]
    ]:
        engine, service = await open_sync(paths, choice, target)
        try:
            return await body(service)
        finally:
            await service.remote.aclose()
            await engine.aclose()

    report, error, status, entries = asyncio.run(runner())
    if args.json:
        document: dict[str, Any] = {
            "status": _status_document(status),
            "report": describe(report) if report is not None else None,
            "error": error.message if error is not None else None,
            "outbox": [_entry_document(e) for e in entries],
        }
        ctx.out(output.dumps(document))
    else:
        if report is not None:
            ctx.out(_report_line(report, status.workspace_id))
            for warning in report.warnings:
                ctx.error(f"tenex-tui: warning: {output.clean_line(warning)}")
        elif args.status:
            ctx.out(_status_line(status))
        pending = [e for e in entries if e.status == "pending"]
        ctx.out(
            f"{len(pending)} offline action{'s' if len(pending) != 1 else ''} pending"
        )
        for entry in entries:
            ctx.out(_entry_line(entry))
        if error is not None:
            ctx.error(
                f"tenex-tui: sync failed: {output.clean_line(error.message)} "
                "(offline actions stay queued)"
            )
    return EXIT_FAILURE if error is not None else EXIT_OK
