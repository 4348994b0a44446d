"""`tenex-tui agents list`: the agents a thread can be bound to (`threads new --agent`).

Built-in agents come first, then the user's own (TOML files in the config folder's
`agents/`); a user file that could not be loaded is reported on stderr, naming the
file and what is wrong with it.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from tenex_tui.cli import output
from tenex_tui.cli.cmd_knowledge import columns
from tenex_tui.cli.context import EXIT_OK, CliContext
from tenex_tui.core.models import Agent

if TYPE_CHECKING:
    from tenex_tui.core.backend import ChatBackend


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `agents` and its subcommand."""
    agents = subparsers.add_parser("agents", help="list the agents")
    commands = agents.add_subparsers(
        dest="agents_command", metavar="ACTION", required=True
    )
    p = commands.add_parser(
        "list",
        help="list the agents a thread can be bound to",
        description=(
            "Built-in agents first, then yours: add one as a TOML file in the "
            "'agents' folder next to config.toml. A file that does not load is "
            "reported on stderr."
        ),
    )
    p.add_argument("--json", action="store_true", help="print the agents as JSON")
    p.set_defaults(handler=list_agents)


def list_agents(args: argparse.Namespace, ctx: CliContext) -> int:
    """`agents list`: slug, level, tools, then name and description."""

    async def body(backend: ChatBackend) -> tuple[list[Agent], list[str]]:
        agents = await backend.list_agents()
        # Only the local engine reads agent files, so only it has problems to show.
        problems = getattr(backend, "agent_problems", None)
        return agents, [str(p) for p in problems] if isinstance(problems, list) else []

    agents, problems = ctx.run(body)
    for problem in problems:
        ctx.error(f"tenex-tui: agent skipped: {output.clean_line(problem)}")
    if args.json:
        ctx.out(output.dumps([agent.model_dump(mode="json") for agent in agents]))
        return EXIT_OK
    rows = [("SLUG", "LEVEL", "TOOLS", "NAME")]
    for agent in agents:
        name = output.clean_line(agent.name)
        if agent.description:
            name += f" — {output.clean_line(agent.description, max_chars=100)}"
        if not agent.builtin:
            name += " (yours)"
        rows.append(
            (
                output.clean_line(agent.slug),
                agent.level,
                ",".join(agent.tools) or "-",
                name,
            )
        )
    for line in columns(rows):
        ctx.out(line)
    return EXIT_OK
