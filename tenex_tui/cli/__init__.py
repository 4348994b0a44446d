"""The `tenex-tui` entry point: the terminal app, and a non-interactive CLI.

`tenex-tui` alone opens the terminal app; `tenex-tui <command>` runs one command over
the same `ChatBackend` and exits. Each command group lives in `cmd_<group>.py` and exposes
`register(subparsers)`; add a group by adding its name to `COMMAND_MODULES`.

Exit status: 0 on success, 1 when an operation failed (the reason is one line on
stderr), 2 for usage and configuration problems, 130 after Ctrl+C.
"""

from __future__ import annotations

import argparse
import importlib
import io
import os
import sys
from collections.abc import Sequence
from typing import NoReturn

from tenex_tui import __version__
from tenex_tui.cli.context import (
    EXIT_FAILURE,
    EXIT_INTERRUPTED,
    EXIT_USAGE,
    CliContext,
    Handler,
    UsageError,
)
from tenex_tui.core.errors import (
    ConfigError,
    ModelNotConfigured,
    StorageCorrupt,
    TenexError,
)
from tenex_tui.core.secrets import redact
from tenex_tui.core.text import sanitize_line

COMMAND_MODULES: tuple[str, ...] = (
    "threads",
    "send",
    "search",
    "knowledge",
    "leads",
    "agents",
    "models",
    "export",
    "backup",
    "serve",
    "keys",
    "sync",
    "mcp",
)
"""The `cmd_<name>` modules whose `register(subparsers)` adds their commands, in help order."""

LOCAL_ONLY_COMMANDS: frozenset[str] = frozenset({"backup", "keys", "serve"})
"""Commands that act on this machine's database, so `--remote` makes no sense for them."""


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser whose usage errors never print a key back.

    argparse repeats the offending argument (`invalid choice: 'sk-…'`), and a key typed
    on the command line, where it does not belong, would land in the terminal's
    scrollback and in logs that capture stderr.
    """

    commands_registered = True
    """False until the command modules have added their subcommands (see below)."""

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(EXIT_USAGE, f"{self.prog}: error: {redact(message)}\n")

    # The command modules (and what they import) are only loaded when a command line
    # names a command or asks for help: `tenex-tui` alone opens the app, and importing
    # thirteen command modules and building their parsers cost ~40 ms of its start.

    def register_commands(self) -> None:
        """Add every command module's subcommands (once)."""
        if self.commands_registered:
            return
        self.commands_registered = True
        subparsers = self.add_subparsers(dest="command", metavar="COMMAND")
        for name in COMMAND_MODULES:
            module = importlib.import_module(f"tenex_tui.cli.cmd_{name}")
            module.register(subparsers)

    def parse_known_args(  # type: ignore[override]
        self,
        args: Sequence[str] | None = None,
        namespace: argparse.Namespace | None = None,
    ) -> tuple[argparse.Namespace, list[str]]:
        argv = sys.argv[1:] if args is None else list(args)
        if _names_a_command(argv):
            self.register_commands()
        elif not self.commands_registered:
            self.set_defaults(command=None)
        return super().parse_known_args(argv, namespace)

    def format_usage(self) -> str:
        self.register_commands()
        return super().format_usage()

    def format_help(self) -> str:
        self.register_commands()
        return super().format_help()


_VALUE_OPTIONS = ("--home", "--model", "--provider")
"""The top-level options that take a value."""


def _names_a_command(argv: Sequence[str]) -> bool:
    """Whether a command line may need the commands: anything but the top-level
    options spelled out in full (a command, `--help`, an abbreviation, a typo)."""
    expect_value = False
    for arg in argv:
        if expect_value:
            expect_value = False
        elif arg in _VALUE_OPTIONS:
            expect_value = True
        elif arg != "--remote" and arg.split("=", 1)[0] not in _VALUE_OPTIONS:
            return True
    return False


_KEY_OPTIONS = ("--api-key", "--api_key", "--apikey")
"""Options people try for a key (T44): refused with a pointer to the environment."""


def _refuse_key_options(argv: Sequence[str]) -> str | None:
    for arg in argv:
        if arg == "--":
            break
        name = arg.split("=", 1)[0]
        if name in _KEY_OPTIONS:
            return (
                f"there is no {name} option: keys are read from environment variables "
                "only (OPENAI_API_KEY, TENEX_API_KEY, or a provider's api_key_env), so "
                "they never appear in the process list or shell history"
            )
    return None


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of `tenex-tui`, with every registered command.

    The commands are registered when a command line first needs them (see `_Parser`).
    """
    parser = _Parser(
        prog="tenex-tui",
        description=(
            "A keyboard-driven terminal client for 10ex chat threads. "
            "Without a command, opens the terminal app."
        ),
        epilog=(
            "Model providers: OPENAI_API_KEY / OPENAI_BASE_URL, or [providers.*] in "
            "config.toml (keys are read from environment variables only). "
            "TENEX_HOME puts config and data in one folder."
        ),
    )
    parser.add_argument(
        "--home",
        metavar="PATH",
        help="keep config.toml and the database in PATH (default: $TENEX_HOME, "
        "else the platform's config and data folders)",
    )
    parser.add_argument(
        "--model",
        metavar="M",
        help="the default model (overrides $TENEX_MODEL and config.toml)",
    )
    parser.add_argument(
        "--provider",
        metavar="NAME",
        help="use the [providers.NAME] table of config.toml ('env' for OPENAI_* variables)",
    )
    parser.add_argument(
        "--remote",
        action="store_true",
        help="work on the remote workspace ($TENEX_API_BASE, else [remote] api_base; "
        "key in $TENEX_API_KEY) instead of the local engine",
    )
    parser.add_argument(
        "--version", action="version", version=f"tenex-tui {__version__}"
    )
    # Added on first use (a command line that names a command, help, usage).
    parser.commands_registered = False
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run `tenex-tui` and return its exit status.

    Args:
        argv: The arguments after the program name (default: `sys.argv[1:]`).

    Returns:
        The exit status (see the module docstring).
    """
    arguments = sys.argv[1:] if argv is None else list(argv)
    refusal = _refuse_key_options(arguments)
    if refusal is not None:
        sys.stderr.write(f"tenex-tui: {refusal}\n")
        return EXIT_USAGE
    parser = build_parser()
    try:
        args = parser.parse_args(arguments)
    except SystemExit as exc:  # --help, --version, and usage errors
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    _tolerate_unencodable_output()
    ctx = CliContext(args)
    handler: Handler | None = getattr(args, "handler", None)
    try:
        if handler is None:
            return _launch_app(ctx)
        if args.command in LOCAL_ONLY_COMMANDS:
            ctx.refuse_remote(args.command)
        return handler(args, ctx)
    except UsageError as exc:
        ctx.error(f"tenex-tui: {_one_line(str(exc))}")
        return EXIT_USAGE
    except TenexError as exc:
        ctx.error(f"tenex-tui: {_describe(exc, ctx)}")
        if isinstance(exc, ConfigError | ModelNotConfigured):
            return EXIT_USAGE
        return EXIT_FAILURE
    except KeyboardInterrupt:
        ctx.error("tenex-tui: interrupted")
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # The reader went away (`tenex-tui threads list | head`): not an error worth a
        # traceback. Point stdout at /dev/null so the interpreter's final flush is quiet.
        _silence_stdout()
        return EXIT_FAILURE


def _one_line(text: str) -> str:
    return sanitize_line(redact(text), max_chars=2000)


def _describe(exc: TenexError, ctx: CliContext) -> str:
    message = _one_line(exc.message)
    if isinstance(exc, StorageCorrupt):
        database = ctx.paths.database
        if str(database) not in message:
            message += f" (database: {database})"
        if ".recover" not in message:
            # The engine's message usually says this already; never leave it out.
            message += (
                f"; next step: move {database} and its -wal/-shm files aside "
                f"(keep them) and run tenex-tui again to start fresh, or try "
                f"`sqlite3 {database} .recover` to salvage it"
            )
    return message


def _tolerate_unencodable_output() -> None:
    # `--raw` can carry lone surrogates, and a C-locale terminal cannot encode "…": print
    # a replacement character rather than die with UnicodeEncodeError mid-reply.
    for stream in (sys.stdout, sys.stderr):
        if isinstance(stream, io.TextIOWrapper):
            stream.reconfigure(errors="replace")


def _silence_stdout() -> None:
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass


def _launch_app(ctx: CliContext) -> int:
    """Open the terminal app on the local engine (or the remote workspace)."""
    # Imported here: Textual costs most of the start-up time, and no command needs it.
    from tenex_tui.cli.wiring import backend_factory, mirrored_backend_factory
    from tenex_tui.ui.app import TenexApp

    if ctx.remote:
        # The remote workspace while it answers, its local mirror when it does not.
        factory = mirrored_backend_factory(ctx.paths, ctx.choice, ctx.remote_target)
    else:
        factory = backend_factory(ctx.paths, ctx.choice)
        ctx.model_warnings()
    app = TenexApp(factory, ui=ctx.settings.ui, protected_paths=ctx.paths.own_files)
    app.run()
    code = app.return_code
    return code if isinstance(code, int) else 0
