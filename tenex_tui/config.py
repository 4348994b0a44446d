"""Settings: `config.toml` plus environment variables, validated with pydantic.

Nothing is read at import: `load_settings()` reads the file, and `resolve_model()` combines
the settings with the environment and the command line into the one provider and model a
run uses. Both are called by the CLI, which passes the results down (no global settings
object, STYLE.md §1.5).

Errors are `ConfigError`s whose message names the file and the line, because a user who
mistypes a key needs to find it: `…/config.toml line 7: providers.openai.timeout: …`.
Values are never echoed in messages (a key pasted into the wrong place must not be
printed back).
"""

from __future__ import annotations

import ipaddress
import os
import re
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from tenex_tui.core.errors import ConfigError
from tenex_tui.core.secrets import Secret

DEFAULT_OPENAI_BASE_URL = "https://api.openai.com/v1"
"""Where the openai SDK sends requests when `OPENAI_BASE_URL` is not set."""

ENV_PROVIDER = "env"
"""The name of the provider built from `OPENAI_BASE_URL` / `OPENAI_API_KEY`."""

_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class UiSettings(BaseModel):
    """The `[ui]` table: what the terminal app needs from the configuration."""

    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)

    theme: str = "textual-dark"
    """A Textual theme name."""
    show_sidebar: bool = True
    """Whether the thread sidebar is shown at start (it can be toggled)."""
    keys: dict[str, str] = Field(default_factory=dict)
    """Binding id → key(s), such as `{"thread.new": "ctrl+t"}`, applied with set_keymap."""


class ProviderSettings(BaseModel):
    """One `[providers.<name>]` table: an OpenAI-compatible chat completions server."""

    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)

    base_url: str
    """The API root, such as `https://api.openai.com/v1` or `http://127.0.0.1:11434/v1`."""
    api_key_env: str | None = None
    """The NAME of the environment variable holding the key (keys never live here)."""
    models: list[str] = Field(default_factory=list)
    """Models to offer; the first is the default when no other default is set."""
    timeout: float = Field(default=60.0, gt=0)
    """Seconds to wait for a reply to start (and for any one read)."""
    connect_timeout: float = Field(default=5.0, gt=0)
    """Seconds to establish a connection."""
    idle_timeout: float = Field(default=60.0, gt=0)
    """Seconds without any data in the middle of a streamed reply."""
    max_retries: int = Field(default=1, ge=0, le=5)
    """Retries of a request that failed before any reply text arrived."""

    @field_validator("base_url")
    @classmethod
    def _check_base_url(cls, value: str) -> str:
        check_base_url(value)
        return value.rstrip("/")

    @field_validator("api_key_env")
    @classmethod
    def _check_env_name(cls, value: str | None) -> str | None:
        if value is not None and not _ENV_NAME.fullmatch(value):
            # Deliberately does not echo the value: it may be a pasted key.
            raise ValueError(
                "must be the NAME of an environment variable (such as OPENAI_API_KEY), "
                "not the key itself"
            )
        return value


class RemoteSettings(BaseModel):
    """The `[remote]` table: a hosted 10ex workspace."""

    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)

    api_base: str = "https://api.10ex.ai"
    """The workspace API root (`TENEX_API_BASE` overrides it)."""
    api_key_env: str = "TENEX_API_KEY"
    """The NAME of the environment variable holding the `tnx_…` key."""

    @field_validator("api_base")
    @classmethod
    def _check_api_base(cls, value: str) -> str:
        check_base_url(value)
        # A workspace key travels in every request: plain HTTP only on this machine.
        if urlsplit(value).scheme == "http" and not is_loopback_url(value):
            raise ValueError("must be https (plain http is allowed only for loopback)")
        return value.rstrip("/")

    @field_validator("api_key_env")
    @classmethod
    def _check_env_name(cls, value: str) -> str:
        if not _ENV_NAME.fullmatch(value):
            raise ValueError(
                "must be the NAME of an environment variable (such as TENEX_API_KEY), "
                "not the key itself"
            )
        return value


class Settings(BaseModel):
    """Everything `config.toml` can say. A missing file means these defaults."""

    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)

    model: str | None = None
    """The default model (`--model` and `TENEX_MODEL` override it)."""
    provider: str | None = None
    """The name of the `[providers.<name>]` table to use."""
    providers: dict[str, ProviderSettings] = Field(default_factory=dict)
    """Named OpenAI-compatible providers."""
    remote: RemoteSettings = Field(default_factory=RemoteSettings)
    """The hosted 10ex workspace."""
    ui: UiSettings = Field(default_factory=UiSettings)
    """The terminal app's settings."""


# -- loading ------------------------------------------------------------------------


def load_settings(path: Path) -> Settings:
    """Read and validate a `config.toml`.

    Args:
        path: The file (`Paths.config_file`). A missing file gives the defaults.

    Returns:
        The settings.

    Raises:
        ConfigError: When the file cannot be read, is not valid TOML, or holds an
            unknown key or a value of the wrong type; the message names the file, the
            key and the line.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return default_settings()
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
        raise ConfigError(f"{path}: cannot read the configuration: {reason}") from None
    return parse_settings(text, path)


def default_settings() -> Settings:
    """The settings of a missing `config.toml`, equal to `Settings()`.

    Built without validating: the defaults are valid by construction, and the models
    build their validators on first use (`defer_build`), ~40 ms that a start-up without
    a config file does not need to spend.
    """
    return Settings.model_construct(
        remote=RemoteSettings.model_construct(), ui=UiSettings.model_construct()
    )


def parse_settings(text: str, path: Path) -> Settings:
    """Validate the text of a `config.toml` (see `load_settings`).

    Raises:
        ConfigError: As `load_settings`.
    """
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(_toml_error_message(path, text, exc)) from None
    try:
        settings = Settings.model_validate(data, strict=True)
    except ValidationError as exc:
        raise ConfigError(_validation_message(path, text, exc)) from None
    if settings.provider is not None and settings.provider not in settings.providers:
        raise ConfigError(
            _located(
                path,
                text,
                ("provider",),
                f"no [providers.{settings.provider}] table {_defined(settings)}",
            )
        )
    return settings


def _defined(settings: Settings) -> str:
    names = ", ".join(settings.providers)
    return f"(defined: {names})" if names else "(no providers are defined)"


def _toml_error_message(path: Path, text: str, exc: tomllib.TOMLDecodeError) -> str:
    message = str(exc)
    # Python 3.11's TOMLDecodeError has no lineno attribute; the position is only in
    # the message, as "(at line 7, column 5)" or "(at end of document)".
    match = re.search(r"\s*\(at line (\d+), column \d+\)$", message)
    if match:
        reason = message[: match.start()]
        line = int(match.group(1))
    else:
        reason = re.sub(r"\s*\(at end of document\)$", "", message)
        line = max(1, text.count("\n") + (0 if text.endswith("\n") else 1))
    return f"{path} line {line}: invalid TOML: {reason}"


def _validation_message(path: Path, text: str, exc: ValidationError) -> str:
    errors = exc.errors(include_input=False, include_url=False)
    first = errors[0]
    loc = tuple(str(part) for part in first["loc"] if not isinstance(part, int))
    kind = first["type"]
    if kind == "extra_forbidden":
        reason = "unknown key"
        if loc and "key" in loc[-1].lower() and loc[-1] != "keys":
            reason += (
                " (API keys never live in config.toml: set api_key_env to the NAME "
                "of an environment variable that holds the key)"
            )
    elif kind == "missing":
        reason = "is required"
    else:
        reason = str(first["msg"])
        reason = reason[:1].lower() + reason[1:]
        reason = reason.removeprefix("value error, ")
    more = len(errors) - 1
    if more:
        reason += f" (and {more} more problem{'s' if more > 1 else ''})"
    return _located(path, text, loc, reason)


def _located(path: Path, text: str, loc: tuple[str, ...], reason: str) -> str:
    line = find_key_line(text, loc)
    where = f"{path} line {line}" if line is not None else str(path)
    key = ".".join(_quote_key(part) for part in loc)
    return f"{where}: {key}: {reason}" if key else f"{where}: {reason}"


def _quote_key(part: str) -> str:
    return part if re.fullmatch(r"[A-Za-z0-9_\-]+", part) else f'"{part}"'


# -- finding a key's line -----------------------------------------------------------

_HEADER = re.compile(r"^\s*\[\[?(?P<key>[^\[\]]+?)\]\]?\s*(?:#.*)?$")
_ASSIGN = re.compile(
    r"""^\s*(?P<key>(?:[A-Za-z0-9_\-]+|"[^"]*"|'[^']*'|[\s.])+?)\s*="""
)


def _split_dotted(key: str) -> tuple[str, ...]:
    parts: list[str] = []
    for match in re.finditer(
        r"""\s*("(?:[^"\\]|\\.)*"|'[^']*'|[^.\s]+)\s*(?:\.|$)""", key
    ):
        part = match.group(1)
        if part[:1] in "\"'":
            part = part[1:-1]
        parts.append(part)
    return tuple(parts)


def find_key_line(text: str, loc: Sequence[str]) -> int | None:
    """Find the line of a TOML file that defines the key at `loc`.

    This is a line-oriented scan (tables, dotted keys, quoted keys), good enough to
    point a user at a line; when the exact key is not written out (a missing key, an
    inline table), the nearest enclosing table or key that is, wins.

    Args:
        text: The file's text.
        loc: The key path, such as `("providers", "openai", "timeout")`.

    Returns:
        A 1-based line number, or None when nothing on the path appears in the file.
    """
    target = tuple(loc)
    table: tuple[str, ...] = ()
    best: tuple[int, int] | None = None  # (matched length, line)
    in_multiline = False
    for number, line in enumerate(text.splitlines(), start=1):
        # Skip the body of multi-line strings, where `x = 1` is text, not a key.
        if line.count('"""') % 2 == 1 or line.count("'''") % 2 == 1:
            was_inside = in_multiline
            in_multiline = not in_multiline
            if was_inside:
                continue
        elif in_multiline:
            continue
        header = _HEADER.match(line)
        if header:
            table = _split_dotted(header.group("key"))
            path = table
        else:
            assign = _ASSIGN.match(line)
            if not assign:
                continue
            path = table + _split_dotted(assign.group("key"))
        matches = bool(path) and path == target[: len(path)]
        if matches and (best is None or len(path) > best[0]):
            best = (len(path), number)
    return None if best is None else best[1]


# -- URLs -----------------------------------------------------------------------------


def is_loopback_url(url: str) -> bool:
    """True when the URL's host is this machine (`localhost`, `127.0.0.0/8`, `::1`)."""
    host = urlsplit(url).hostname or ""
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_base_url(url: str) -> None:
    """Refuse base URLs that are not http(s), or that would carry a credential.

    A key in a URL ends up in logs, proxies and error messages (test-plan T41), so a
    base URL may hold neither user info nor a key-like query parameter.

    Raises:
        ValueError: With a sentence that does not repeat the URL.
    """
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - parsing the port validates it
    except ValueError:
        raise ValueError("is not a valid URL") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("must be an http:// or https:// URL with a host")
    if parts.username is not None or parts.password is not None:
        raise ValueError("must not contain a user name or password")
    for name, _ in parse_qsl(parts.query, keep_blank_values=True):
        if re.search(r"(?i)key|token|secret|auth|password", name):
            raise ValueError("must not carry a key in its query string")


# -- resolving the provider and model -------------------------------------------------


@dataclass(frozen=True)
class ResolvedProvider:
    """The provider a run talks to, with its key read from the environment."""

    name: str
    """The `[providers.<name>]` table, or `env` for `OPENAI_BASE_URL`/`OPENAI_API_KEY`."""
    base_url: str
    api_key: Secret | None
    """None for servers that need no key (a local Ollama, llama.cpp, LM Studio)."""
    models: tuple[str, ...] = ()
    timeout: float = 60.0
    connect_timeout: float = 5.0
    idle_timeout: float = 60.0
    max_retries: int = 1


@dataclass(frozen=True)
class ModelChoice:
    """The outcome of `resolve_model`: what to send to, or why nothing can be sent."""

    provider: ResolvedProvider | None
    """None when no provider is usable; `problem` says why."""
    model: str | None
    """The default model; None lets the engine ask the provider's first listed model."""
    problem: str | None = None
    """Why chatting is impossible, as a sentence a user can act on."""
    warnings: tuple[str, ...] = field(default=())
    """Things to tell the user on stderr (such as plain HTTP to another machine)."""


def no_model_message(config_file: Path) -> str:
    """The message shown when no provider is configured at all."""
    return (
        "no model configured: set OPENAI_API_KEY, or OPENAI_BASE_URL for a local "
        "Ollama/llama.cpp/LM Studio server, or add a provider to "
        f"{config_file}"
    )


def resolve_model(
    settings: Settings,
    *,
    config_file: Path,
    environ: Mapping[str, str] | None = None,
    model: str | None = None,
    provider: str | None = None,
) -> ModelChoice:
    """Choose the provider and the default model for a run.

    The model comes from `model` (`--model`), then `TENEX_MODEL`, then the config's
    `model`, then the provider's first listed model, else None (the engine asks the
    provider). The provider is `provider` (`--provider`) or the config's `provider`;
    failing those, an `env` provider when `OPENAI_BASE_URL` or `OPENAI_API_KEY` is set
    (read as the openai SDK reads them); failing that, the first `[providers.*]` table.

    Args:
        settings: The loaded settings.
        config_file: The config path, named in messages.
        environ: The environment (defaults to `os.environ`).
        model: The `--model` option.
        provider: The `--provider` option.

    Returns:
        The choice; `problem` is set when nothing can be sent (the app still runs).

    Raises:
        ConfigError: When `provider` names no configured provider, or
            `OPENAI_BASE_URL` is not a usable URL.
    """
    env = os.environ if environ is None else environ
    chosen_model = model or env.get("TENEX_MODEL") or settings.model or None
    name = provider or settings.provider
    if provider is not None and provider not in settings.providers:
        if provider == ENV_PROVIDER:
            name = None
        else:
            raise ConfigError(
                f"unknown provider {provider!r} (--provider): {config_file} "
                f"{_defined(settings)}"
            )
    base_env = env.get("OPENAI_BASE_URL", "").strip()
    key_env = env.get("OPENAI_API_KEY", "").strip()
    resolved: ResolvedProvider | None
    problem: str | None = None
    if name is None and (base_env or key_env or provider == ENV_PROVIDER):
        base_url = base_env or DEFAULT_OPENAI_BASE_URL
        try:
            check_base_url(base_url)
        except ValueError as exc:
            raise ConfigError(f"OPENAI_BASE_URL {exc}") from None
        resolved = ResolvedProvider(
            name=ENV_PROVIDER,
            base_url=base_url.rstrip("/"),
            api_key=Secret(key_env) if key_env else None,
        )
        if not key_env and not base_env:
            problem = no_model_message(config_file)
            resolved = None
    else:
        if name is None and settings.providers:
            name = next(iter(settings.providers))
        if name is None:
            return ModelChoice(
                provider=None,
                model=chosen_model,
                problem=no_model_message(config_file),
            )
        table = settings.providers[name]
        key: Secret | None = None
        if table.api_key_env:
            value = env.get(table.api_key_env, "").strip()
            if value:
                key = Secret(value)
            else:
                problem = (
                    f"provider {name!r} needs an API key: set {table.api_key_env} "
                    f"(named by [providers.{name}] api_key_env in {config_file})"
                )
        resolved = ResolvedProvider(
            name=name,
            base_url=table.base_url,
            api_key=key,
            models=tuple(table.models),
            timeout=table.timeout,
            connect_timeout=table.connect_timeout,
            idle_timeout=table.idle_timeout,
            max_retries=table.max_retries,
        )
        if problem is not None:
            resolved = None
    warnings: list[str] = []
    if resolved is not None:
        if chosen_model is None and resolved.models:
            chosen_model = resolved.models[0]
        if urlsplit(resolved.base_url).scheme == "http" and not is_loopback_url(
            resolved.base_url
        ):
            host = urlsplit(resolved.base_url).hostname
            warnings.append(
                f"warning: provider {resolved.name!r} uses plain HTTP to {host}: "
                "prompts, replies and the key cross the network unencrypted"
            )
    return ModelChoice(
        provider=resolved,
        model=chosen_model,
        problem=problem,
        warnings=tuple(warnings),
    )
