"""`tenex-tui models`: the models the configured provider offers."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from tenex_tui.cli import output
from tenex_tui.cli.context import EXIT_OK, CliContext
from tenex_tui.core.errors import ModelNotConfigured

if TYPE_CHECKING:
    from tenex_tui.core.backend import ChatBackend


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `models`."""
    p = subparsers.add_parser(
        "models",
        help="list the provider's models",
        description="List the models of the configured provider; '*' marks the default.",
    )
    p.add_argument(
        "--json", action="store_true", help='print {"provider", "default", "items"}'
    )
    p.set_defaults(handler=list_models)


def list_models(args: argparse.Namespace, ctx: CliContext) -> int:
    """`models`: one model id per line, the default marked with `*`."""
    if ctx.remote:
        # The remote workspace's models: its server decides the default.
        provider, configured = "remote", None
    else:
        choice = ctx.choice
        if choice.provider is None:
            raise ModelNotConfigured(choice.problem or "no model configured")
        provider, configured = choice.provider.name, choice.model

    async def body(backend: ChatBackend) -> list[str]:
        return await backend.list_models()

    models = ctx.run(body, with_model=True)
    default = configured or (models[0] if models else None)
    if args.json:
        document = {
            "provider": provider,
            "default": default,
            "items": models,
        }
        ctx.out(output.dumps(document))
        return EXIT_OK
    for model in models:
        marker = "*" if model == default else " "
        ctx.out(f"{marker} {output.clean_line(model)}")
    if not models:
        ctx.error(f"tenex-tui: provider {provider!r} lists no models")
    return EXIT_OK
