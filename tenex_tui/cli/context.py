"""What every command handler receives: the parsed options, the streams, and lazily
built paths, settings and model choice.

Handlers are plain functions `handler(args, ctx) -> int`; the ones that need the engine
call `ctx.run(coro_fn, with_model=...)`, which opens the engine, runs the coroutine and
closes the engine, all in one `asyncio.run`. Nothing is read before a handler asks for it,
so `tenex-tui --version` touches no file.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, TextIO, TypeVar

from tenex_tui.config import ModelChoice, Settings, load_settings, resolve_model
from tenex_tui.core.errors import ConfigError
from tenex_tui.core.secrets import Secret
from tenex_tui.paths import Paths, resolve_paths

if TYPE_CHECKING:
    from tenex_tui.core.backend import ChatBackend
    from tenex_tui.engine.engine import LocalEngine

T = TypeVar("T")

Handler = Callable[[argparse.Namespace, "CliContext"], int]
"""The signature every command's `set_defaults(handler=...)` gives."""

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2
"""Configuration and usage problems (argparse uses 2 as well)."""
EXIT_INTERRUPTED = 130
"""128 + SIGINT, what shells report for Ctrl+C."""


class UsageError(Exception):
    """A command was called wrongly in a way argparse cannot see; exit status 2."""


@dataclass(frozen=True)
class RemoteTarget:
    """Where `--remote` points: the API base and the workspace key."""

    api_base: str
    """`TENEX_API_BASE`, else `[remote] api_base` of config.toml."""
    api_key: Secret
    """The `tnx_…` key, read from the variable named by `[remote] api_key_env`."""
    key_env: str
    """The name of that variable (for messages)."""


def positive_int(text: str) -> int:
    """An argparse `type=` for `--limit`: a whole number of at least 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


class CliContext:
    """The options, streams and environment of one `tenex-tui` run."""

    def __init__(
        self,
        args: argparse.Namespace,
        *,
        stdout: TextIO | None = None,
        stderr: TextIO | None = None,
        stdin: TextIO | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        self.args = args
        # Read at call time, not import time, so pytest's capsys sees the output.
        self.stdout = stdout if stdout is not None else sys.stdout
        self.stderr = stderr if stderr is not None else sys.stderr
        self.stdin = stdin if stdin is not None else sys.stdin
        self.environ = os.environ if environ is None else environ

    @cached_property
    def paths(self) -> Paths:
        """Folders and files, from `--home`, `TENEX_HOME` or platformdirs."""
        home: str | None = getattr(self.args, "home", None)
        return resolve_paths(home, self.environ)

    @cached_property
    def settings(self) -> Settings:
        """`config.toml`, validated (raises `ConfigError`)."""
        return load_settings(self.paths.config_file)

    @cached_property
    def choice(self) -> ModelChoice:
        """The provider and default model for this run (raises `ConfigError`)."""
        choice = resolve_model(
            self.settings,
            config_file=self.paths.config_file,
            environ=self.environ,
            model=getattr(self.args, "model", None),
            provider=getattr(self.args, "provider", None),
        )
        return choice

    @property
    def remote(self) -> bool:
        """True when `--remote` asked for the remote workspace instead of the engine."""
        return bool(getattr(self.args, "remote", False))

    @cached_property
    def remote_target(self) -> RemoteTarget:
        """The remote workspace's API base and key (raises `ConfigError`).

        The base is `TENEX_API_BASE`, else `[remote] api_base`; the key is read from
        the environment variable `[remote] api_key_env` names (`TENEX_API_KEY`).
        """
        remote = self.settings.remote
        api_base = self.environ.get("TENEX_API_BASE", "").strip() or remote.api_base
        value = self.environ.get(remote.api_key_env, "").strip()
        if not value:
            raise ConfigError(
                f"--remote needs a workspace key in {remote.api_key_env}: create one "
                "with `tenex-tui keys create --workspace W --user U` on the serving "
                "machine (or use your 10ex workspace key), then export "
                f"{remote.api_key_env}=tnx_…"
            )
        return RemoteTarget(
            api_base=api_base, api_key=Secret(value), key_env=remote.api_key_env
        )

    def refuse_remote(self, command: str) -> None:
        """Stop a command that only works on the local engine when `--remote` is set.

        Raises:
            UsageError: When `--remote` was given.
        """
        if self.remote:
            raise UsageError(
                f"`{command}` works on the local engine only; run it without --remote"
            )

    def model_warnings(self) -> None:
        """Print the choice's warnings (plain HTTP…) when a model is about to be used.

        Not on every command: `threads list` never talks to the provider, so a warning
        there would only be noise.
        """
        for warning in self.choice.warnings:
            self.error(f"tenex-tui: {warning}")

    def out(self, line: str = "") -> None:
        """Print one line on stdout."""
        self.stdout.write(line + "\n")

    def error(self, line: str) -> None:
        """Print one line on stderr."""
        self.stderr.write(line + "\n")
        self.stderr.flush()

    def run(
        self,
        body: Callable[[ChatBackend], Awaitable[T]],
        *,
        with_model: bool = False,
    ) -> T:
        """Open the backend, await `body(backend)`, close the backend.

        With `--remote` the backend is the remote workspace (`RemoteBackend`), built
        inside the event loop that uses it; otherwise the local engine.

        Args:
            body: The command's work.
            with_model: Build the model adapter (only `send` and `models` need it; the
                others skip the openai import entirely). Ignored with `--remote`.

        Returns:
            What `body` returned.
        """
        if not self.remote:
            return self.run_engine(body, with_model=with_model)
        from tenex_tui.cli.wiring import open_remote

        target = self.remote_target

        async def runner() -> T:
            backend = open_remote(target)
            try:
                return await body(backend)
            finally:
                await backend.aclose()

        return asyncio.run(runner())

    def run_engine(
        self,
        body: Callable[[LocalEngine], Awaitable[T]],
        *,
        with_model: bool = False,
    ) -> T:
        """Like `run`, for the few commands that need the local engine itself (backup).

        Raises:
            UsageError: With `--remote` (backup, keys and serve act on this machine).
        """
        from tenex_tui.cli.wiring import open_engine

        self.refuse_remote(str(getattr(self.args, "command", None) or "this command"))

        choice = self.choice
        paths = self.paths
        if with_model:
            self.model_warnings()

        async def runner() -> T:
            engine = await open_engine(paths, choice, with_model=with_model)
            try:
                return await body(engine)
            finally:
                await engine.aclose()

        return asyncio.run(runner())
