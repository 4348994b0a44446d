"""The agent registry: built-in agents shipped as package data, plus the user's own.

An agent is a TOML file with these keys (all strings unless noted):

```toml
slug = "lead-triage"          # required: a-z, 0-9 and "-", at most 64 characters
name = "Lead triage"          # required
level = "associate"           # junior | manager | associate (default associate)
description = "…"             # optional
system_prompt = "…"           # required, at most 50,000 characters
tools = ["search_knowledge"]  # optional list of tool names the agent may call
model = "gpt-4o-mini"         # optional: the model its threads use by default
```

Built-ins live in `tenex_tui/engine/agents_builtin/*.toml`; users add files to the
`agents/` folder of the config dir (`Paths.agents_dir`). Rules:

- `list()` gives the built-ins first (`assistant`, then by slug), then user agents by
  slug.
- A user agent with a built-in's slug **overrides** it: it takes the built-in's place in
  the list, with `builtin=False`. That is how a user changes the assistant's prompt or
  the lead-triage tools without forking the package.
- A malformed user file never stops the others from loading: the registry keeps a
  `ConfigError` naming the file (and the line and column for TOML syntax errors) in
  `problems`, and skips that file. Two user files with one slug: the first by file
  name wins, the second is a problem.
"""

from __future__ import annotations

import builtins
import re
import stat
import tomllib
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import get_args

from tenex_tui.core.errors import ConfigError, NotFound
from tenex_tui.core.models import Agent, AgentLevel
from tenex_tui.core.payloads import MAX_SYSTEM_PROMPT_CHARS

SLUG_PATTERN = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?$")
"""What a slug may look like: it appears in URLs, CLI flags and file names."""
MAX_AGENT_FILE_BYTES = 256 * 1024
"""Largest agent file read (a prompt is at most 50,000 characters)."""
MAX_NAME_CHARS = 100
MAX_DESCRIPTION_CHARS = 1000
DEFAULT_AGENT = "assistant"
"""The open-ended assistant, listed first."""

_KEYS = ("slug", "name", "level", "description", "system_prompt", "tools", "model")
_LEVELS: tuple[str, ...] = get_args(AgentLevel)
_TOML_POSITION = re.compile(r"\s*\(at line (\d+), column (\d+)\)$")


def _problem(source: str, detail: str) -> ConfigError:
    return ConfigError(f"{source}: {detail}")


def _string(
    table: Mapping[str, object],
    key: str,
    source: str,
    *,
    required: bool,
    max_chars: int,
) -> str | None:
    value = table.get(key)
    if value is None:
        if required:
            raise _problem(source, f"the key {key!r} is missing")
        return None
    if not isinstance(value, str):
        raise _problem(source, f"{key!r} must be a string")
    value = value.strip()
    if required and not value:
        raise _problem(source, f"{key!r} must not be empty")
    if len(value) > max_chars:
        raise _problem(source, f"{key!r} is longer than {max_chars:,} characters")
    return value


def _tools(
    table: Mapping[str, object], source: str, known_tools: Collection[str] | None
) -> builtins.list[str]:
    value = table.get("tools", [])
    if not isinstance(value, builtins.list) or not all(
        isinstance(item, str) for item in value
    ):
        raise _problem(source, "'tools' must be a list of tool names")
    names: builtins.list[str] = []
    for item in value:
        if item in names:
            raise _problem(source, f"the tool {item!r} is listed twice")
        if known_tools is not None and item not in known_tools:
            known = ", ".join(sorted(known_tools)) or "none"
            raise _problem(source, f"unknown tool {item!r} (known tools: {known})")
        names.append(item)
    return names


def parse_agent(
    text: str,
    *,
    source: str,
    builtin: bool = False,
    known_tools: Collection[str] | None = None,
) -> Agent:
    """Parse one agent file.

    Args:
        text: The TOML text.
        source: How to name the file in errors (its path).
        builtin: Whether it ships with the package.
        known_tools: When given, tool names outside it are refused.

    Returns:
        The agent.

    Raises:
        ConfigError: The TOML is malformed (the message gives line and column) or a
            key is missing, unknown, or of the wrong type.
    """
    try:
        table = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        detail = str(exc)
        match = _TOML_POSITION.search(detail)
        if match:
            reason = detail[: match.start()]
            detail = f"line {match.group(1)}, column {match.group(2)}: {reason}"
        raise _problem(source, f"{detail} (TOML syntax)") from exc
    unknown = sorted(set(table) - set(_KEYS))
    if unknown:
        raise _problem(
            source,
            f"unknown key {unknown[0]!r} (expected: {', '.join(_KEYS)})",
        )
    slug = _string(table, "slug", source, required=True, max_chars=64)
    assert slug is not None  # required=True
    if not SLUG_PATTERN.match(slug):
        raise _problem(
            source,
            f"the slug {slug!r} may use only a-z, 0-9 and '-' (not at either end)",
        )
    name = _string(table, "name", source, required=True, max_chars=MAX_NAME_CHARS)
    level = table.get("level", "associate")
    if level not in _LEVELS:
        raise _problem(
            source, f"'level' must be one of {', '.join(_LEVELS)}, not {level!r}"
        )
    description = _string(
        table, "description", source, required=False, max_chars=MAX_DESCRIPTION_CHARS
    )
    prompt = _string(
        table,
        "system_prompt",
        source,
        required=True,
        max_chars=MAX_SYSTEM_PROMPT_CHARS,
    )
    model = _string(table, "model", source, required=False, max_chars=200)
    return Agent(
        slug=slug,
        name=name or slug,
        level=_level(level),
        description=description or "",
        system_prompt=prompt or "",
        tools=_tools(table, source, known_tools),
        model=model or None,
        builtin=builtin,
    )


def _level(value: object) -> AgentLevel:
    levels: dict[object, AgentLevel] = {
        "junior": "junior",
        "manager": "manager",
        "associate": "associate",
    }
    return levels[value]


def _read_user_file(path: Path) -> str:
    source = str(path)
    try:
        info = path.stat()
        if not stat.S_ISREG(info.st_mode):
            raise _problem(source, "is not a regular file")
        if info.st_size > MAX_AGENT_FILE_BYTES:
            raise _problem(source, f"is larger than {MAX_AGENT_FILE_BYTES // 1024} KB")
        with path.open("rb") as handle:
            data = handle.read(MAX_AGENT_FILE_BYTES + 1)
    except OSError as exc:
        reason = (exc.strerror or "unreadable").lower()
        raise _problem(source, f"could not be read ({reason})") from exc
    if len(data) > MAX_AGENT_FILE_BYTES:
        raise _problem(source, f"is larger than {MAX_AGENT_FILE_BYTES // 1024} KB")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise _problem(
            source, f"is not UTF-8 text (an invalid byte at offset {exc.start})"
        ) from exc


def _builtin_sources() -> Iterable[tuple[str, str]]:
    folder = resources.files("tenex_tui.engine").joinpath("agents_builtin")
    entries = sorted(
        (entry for entry in folder.iterdir() if entry.name.endswith(".toml")),
        key=lambda entry: entry.name,
    )
    for entry in entries:
        yield f"built-in agent {entry.name}", entry.read_text(encoding="utf-8")


def _ordered_builtins(agents: Iterable[Agent]) -> builtins.list[Agent]:
    return sorted(agents, key=lambda a: (a.slug != DEFAULT_AGENT, a.slug))


@dataclass(frozen=True)
class AgentRegistry:
    """The agents threads can be bound to, in the order a picker shows them."""

    agents: tuple[Agent, ...]
    """Built-ins (the default assistant first), then user agents by slug."""
    problems: tuple[ConfigError, ...] = ()
    """One error per user file that could not be loaded (those files are skipped)."""
    _by_slug: dict[str, Agent] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_by_slug", {a.slug: a for a in self.agents})

    @classmethod
    def load(
        cls,
        user_dir: Path | None,
        *,
        known_tools: Collection[str] | None = None,
    ) -> AgentRegistry:
        """Load the built-in agents, then the user's `*.toml` files.

        Args:
            user_dir: The user's agents folder; None or a missing folder means
                built-ins only. Hidden files (`.name.toml`) are ignored.
            known_tools: When given, agents naming other tools are problems.

        Returns:
            The registry; malformed user files are in `problems`, never raised.

        Raises:
            ConfigError: A built-in agent is malformed (a packaging bug).
        """
        builtin_agents = [
            parse_agent(text, source=source, builtin=True, known_tools=known_tools)
            for source, text in _builtin_sources()
        ]
        problems: builtins.list[ConfigError] = []
        user_agents: dict[str, Agent] = {}
        first_source: dict[str, str] = {}
        for path in _user_files(user_dir, problems):
            source = str(path)
            try:
                agent = parse_agent(
                    _read_user_file(path), source=source, known_tools=known_tools
                )
            except ConfigError as exc:
                problems.append(exc)
                continue
            if agent.slug in user_agents:
                problems.append(
                    _problem(
                        source,
                        f"the slug {agent.slug!r} is already used by "
                        f"{first_source[agent.slug]}; this file was skipped",
                    )
                )
                continue
            user_agents[agent.slug] = agent
            first_source[agent.slug] = source
        ordered = [
            user_agents.pop(agent.slug, agent)
            for agent in _ordered_builtins(builtin_agents)
        ]
        ordered += sorted(user_agents.values(), key=lambda a: a.slug)
        return cls(agents=tuple(ordered), problems=tuple(problems))

    @classmethod
    def from_agents(cls, agents: Iterable[Agent]) -> AgentRegistry:
        """A registry of exactly these agents, in this order (tests, remote mirrors)."""
        return cls(agents=tuple(agents))

    def list(self) -> builtins.list[Agent]:
        """Every agent: built-ins first, then the user's."""
        return builtins.list(self.agents)

    def get(self, slug: str) -> Agent:
        """The agent with this slug.

        Raises:
            NotFound: No agent has that slug.
        """
        agent = self._by_slug.get(slug)
        if agent is None:
            raise NotFound(f"There is no agent {slug!r}.")
        return agent

    def __contains__(self, slug: object) -> bool:
        return slug in self._by_slug


def _user_files(
    user_dir: Path | None, problems: builtins.list[ConfigError]
) -> builtins.list[Path]:
    if user_dir is None:
        return []
    try:
        entries = sorted(user_dir.iterdir(), key=lambda p: p.name)
    except FileNotFoundError:
        return []
    except OSError as exc:
        reason = (exc.strerror or "unreadable").lower()
        problems.append(_problem(str(user_dir), f"could not be read ({reason})"))
        return []
    return [
        path
        for path in entries
        if path.name.endswith(".toml") and not path.name.startswith(".")
    ]
