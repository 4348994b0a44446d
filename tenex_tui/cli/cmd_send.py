"""`tenex-tui send ID [TEXT|-]`: send a message and stream the reply to stdout.

Ctrl+C does not kill the reply half-written: the first SIGINT asks the backend to cancel
it (`cancel_message`), and the command keeps reading until `message.stopped` arrives, so
the partial text is stored as `stopped`; then it exits 130. A second Ctrl+C gives up
waiting (the engine still marks the reply `stopped` when it closes).
"""

from __future__ import annotations

import argparse
import asyncio
import signal
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from tenex_tui.cli import output
from tenex_tui.cli.context import (
    EXIT_FAILURE,
    EXIT_INTERRUPTED,
    EXIT_OK,
    CliContext,
    UsageError,
)
from tenex_tui.core.errors import ModelNotConfigured
from tenex_tui.core.payloads import AttachmentInput

if TYPE_CHECKING:
    from tenex_tui.core.backend import ChatBackend
    from tenex_tui.core.events import StreamEvent


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `send`."""
    p = subparsers.add_parser(
        "send",
        help="send a message to a thread and stream the reply",
        description=(
            "Send TEXT (or stdin, with '-' or when stdin is not a terminal) to thread "
            "ID and print the reply as it streams. Ctrl+C stops the reply (kept as "
            "'stopped') and exits 130."
        ),
    )
    p.add_argument("thread_id", metavar="ID")
    p.add_argument(
        "text", metavar="TEXT", nargs="?", help="the message, or '-' for stdin"
    )
    p.add_argument(
        "--json", action="store_true", help="print one stream event per line (JSON)"
    )
    p.add_argument(
        "--raw", action="store_true", help="keep control characters (unsafe on a tty)"
    )
    p.add_argument(
        "--attach",
        metavar="PATH",
        action="append",
        default=[],
        help="attach a file: text, Markdown, code, JSON, CSV, HTML, PDF, DOCX "
        "(repeatable)",
    )
    p.add_argument(
        "--knowledge",
        metavar="ID",
        action="append",
        default=[],
        help="attach a knowledge document (repeatable)",
    )
    p.add_argument("--lead", metavar="ID", help="attach a lead")
    p.set_defaults(handler=send)


def read_message(args: argparse.Namespace, ctx: CliContext) -> str:
    """The message text: TEXT, or stdin for `-` or when stdin is not a terminal.

    Raises:
        UsageError: When there is no text, or it is empty.
    """
    text: str | None = args.text
    if text == "-" or (text is None and not ctx.stdin.isatty()):
        # One trailing newline is the shell's (`echo hi |`), not the user's.
        text = ctx.stdin.read().removesuffix("\n")
    if text is None:
        raise UsageError("no message: give TEXT, or pipe it on stdin ('-')")
    if not text.strip():
        raise UsageError("the message is empty")
    return text


@dataclass
class _SendState:
    thread_id: str
    message_id: str | None = None
    interrupted: bool = False
    cancel_task: asyncio.Task[object] | None = None
    printed_any: bool = False
    ends_with_newline: bool = True
    held_cr: bool = False
    tool_status: dict[str, str] = field(default_factory=dict)
    attachments: list[AttachmentInput] = field(default_factory=list)


def send(args: argparse.Namespace, ctx: CliContext) -> int:
    """`send`: stream the reply; exit 0 when complete, 1 on failure, 130 on Ctrl+C."""
    text = read_message(args, ctx)
    if not ctx.remote:
        # A remote workspace has its own model; only the local engine needs one here.
        choice = ctx.choice
        if choice.provider is None:
            raise ModelNotConfigured(choice.problem or "no model configured")
    if args.raw and not args.json:
        ctx.error(output.RAW_WARNING)
    state = _SendState(thread_id=args.thread_id)
    if args.attach:
        loaded = _load_attachments(args.attach, ctx)
        if loaded is None:
            return EXIT_FAILURE
        state.attachments = loaded

    async def body(backend: ChatBackend) -> int:
        return await _stream(backend, args, ctx, text, state)

    try:
        return ctx.run(body, with_model=True)
    except asyncio.CancelledError:
        # The second Ctrl+C cancelled the command; the engine stopped the reply on close.
        _finish_line(ctx, state)
        ctx.error("tenex-tui: interrupted")
        return EXIT_INTERRUPTED


async def _stream(
    backend: ChatBackend,
    args: argparse.Namespace,
    ctx: CliContext,
    text: str,
    state: _SendState,
) -> int:
    loop = asyncio.get_running_loop()
    main_task = asyncio.current_task()

    def request_cancel() -> None:
        if state.message_id is not None and state.cancel_task is None:
            state.cancel_task = asyncio.ensure_future(
                backend.cancel_message(state.thread_id, state.message_id)
            )

    def on_sigint() -> None:
        if state.interrupted:
            if main_task is not None:
                main_task.cancel()
            return
        state.interrupted = True
        request_cancel()

    try:
        loop.add_signal_handler(signal.SIGINT, on_sigint)
        installed = True
    except (NotImplementedError, RuntimeError, ValueError):
        # Not the main thread (or no signals on this platform): Ctrl+C falls back to
        # KeyboardInterrupt, and the engine stops the reply when it closes.
        installed = False
    try:
        status = await _consume(backend, args, ctx, text, state, request_cancel)
        if state.cancel_task is not None:
            await state.cancel_task
        return status
    finally:
        if installed:
            loop.remove_signal_handler(signal.SIGINT)


async def _consume(
    backend: ChatBackend,
    args: argparse.Namespace,
    ctx: CliContext,
    text: str,
    state: _SendState,
    request_cancel: Callable[[], None],
) -> int:
    stream = backend.send_message(
        args.thread_id,
        text,
        attachments=state.attachments,
        knowledge=args.knowledge,
        lead=args.lead,
    )
    async for event in stream:
        if event.type == "message.started":
            state.message_id = event.message_id
            if state.interrupted:
                request_cancel()
        if args.json:
            ctx.stdout.write(output.terminal_safe_json(event.to_json()) + "\n")
            ctx.stdout.flush()
        else:
            _print_event(ctx, event, state, raw=args.raw)
        if event.terminal:
            return _outcome(ctx, event, state, quiet=args.json)
    _finish_line(ctx, state)
    ctx.error("tenex-tui: the reply ended without a final event")
    return EXIT_FAILURE


def _load_attachments(
    paths: list[str], ctx: CliContext
) -> list[AttachmentInput] | None:
    """Load `--attach` files under the per-file and per-message budgets.

    Returns:
        The attachments, or None when any file was refused (each reason is printed).
    """
    # Imported here: the loader matters only when something is attached.
    from tenex_tui.attachments import (
        AttachmentLimits,
        AttachmentsRefused,
        load_attachments,
    )

    limits = AttachmentLimits(protected_paths=ctx.paths.own_files)
    try:
        loaded = load_attachments(paths, limits=limits)
    except AttachmentsRefused as exc:
        problems = exc.problems or (("", exc.message),)
        for _name, sentence in problems:
            ctx.error(f"tenex-tui: cannot attach: {output.clean_line(sentence)}")
        ctx.error("tenex-tui: nothing was sent")
        return None
    for item in loaded:
        for warning in item.warnings:
            ctx.error(
                f"tenex-tui: {output.clean_line(item.name)}: "
                f"{output.clean_line(warning)}"
            )
    return list(loaded)


def _print_event(
    ctx: CliContext, event: StreamEvent, state: _SendState, *, raw: bool
) -> None:
    if event.type == "message.delta" and event.delta:
        chunk = event.delta
        if not raw:
            # Hold a trailing CR so a CRLF split across two deltas stays one newline.
            if state.held_cr:
                chunk = "\r" + chunk
                state.held_cr = False
            if chunk.endswith("\r"):
                chunk = chunk[:-1]
                state.held_cr = True
        _write(ctx, state, output.clean(chunk, raw=raw))
    elif event.type == "message.tool_call" and event.tool_call is not None:
        call = event.tool_call
        if state.tool_status.get(call.id) != call.status:
            state.tool_status[call.id] = call.status
            _finish_line(ctx, state)
            ctx.error(output.tool_call_line(call))


def _write(ctx: CliContext, state: _SendState, text: str) -> None:
    if not text:
        return
    ctx.stdout.write(text)
    ctx.stdout.flush()
    state.printed_any = True
    state.ends_with_newline = text.endswith("\n")


def _finish_line(ctx: CliContext, state: _SendState) -> None:
    if state.held_cr:
        state.held_cr = False
        _write(ctx, state, output.clean("\r"))
    if state.printed_any and not state.ends_with_newline:
        _write(ctx, state, "\n")


def _outcome(
    ctx: CliContext, event: StreamEvent, state: _SendState, *, quiet: bool
) -> int:
    _finish_line(ctx, state)
    if event.type == "message.completed":
        return EXIT_OK
    if event.type == "message.stopped":
        if state.interrupted:
            if not quiet:
                ctx.error("tenex-tui: stopped; the partial reply is kept")
            return EXIT_INTERRUPTED
        ctx.error("tenex-tui: the reply was stopped")
        return EXIT_FAILURE
    reason = event.error or (event.message.error if event.message else None)
    ctx.error(
        f"tenex-tui: the reply failed: {output.clean_line(reason or 'unknown error')}"
    )
    return EXIT_FAILURE
