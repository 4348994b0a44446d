"""`tenex-tui keys create|list|revoke`: API keys for `tenex-tui serve`.

A key is `tnx_<prefix>_<secret>`. `keys create` prints it once; the database keeps only
the prefix and a salted hash of the secret, so a lost key cannot be shown again (revoke
it and create another). The key's workspace and user scope every request made with it;
by default they are the local app's own (`ws_local` / `usr_local`), so a remote client
sees the same threads as the local app.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from tenex_tui.cli import output
from tenex_tui.cli.context import EXIT_FAILURE, EXIT_OK, CliContext, UsageError

if TYPE_CHECKING:
    from tenex_tui.engine.engine import LocalEngine
    from tenex_tui.engine.store_keys import ApiKeyRecord

DEFAULT_WORKSPACE = "ws_local"
DEFAULT_USER = "usr_local"


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `keys create`, `keys list` and `keys revoke`."""
    keys = subparsers.add_parser(
        "keys",
        help="create, list and revoke API keys for `tenex-tui serve`",
        description="API keys (tnx_<prefix>_<secret>) for the HTTP API of `serve`.",
    )
    actions = keys.add_subparsers(dest="keys_command", metavar="ACTION", required=True)
    create = actions.add_parser(
        "create", help="make a key and print it once (only its hash is stored)"
    )
    create.add_argument(
        "--workspace",
        metavar="W",
        default=DEFAULT_WORKSPACE,
        help=f"the workspace the key acts in (default: {DEFAULT_WORKSPACE}, the local app's)",
    )
    create.add_argument(
        "--user",
        metavar="U",
        default=DEFAULT_USER,
        help=f"the user the key acts for (default: {DEFAULT_USER})",
    )
    create.add_argument(
        "--name", metavar="N", default="", help="a label for `keys list`"
    )
    create.add_argument("--json", action="store_true", help="print the key as JSON")
    create.set_defaults(handler=create_key)
    listing = actions.add_parser(
        "list", help="list keys (prefixes only, never secrets)"
    )
    listing.add_argument("--workspace", metavar="W", help="only this workspace's keys")
    listing.add_argument("--json", action="store_true", help="print the keys as JSON")
    listing.set_defaults(handler=list_keys)
    revoke = actions.add_parser("revoke", help="revoke a key by its prefix")
    revoke.add_argument("prefix", metavar="PREFIX", help="the 8 characters after tnx_")
    revoke.set_defaults(handler=revoke_key)


def _check_id(value: str, what: str) -> str:
    value = value.strip()
    if not value or len(value) > 100 or not value.isprintable() or " " in value:
        raise UsageError(f"{what} must be 1 to 100 visible characters without spaces")
    return value


def create_key(args: argparse.Namespace, ctx: CliContext) -> int:
    """`keys create`: store the hash, print the key once on stdout."""
    from tenex_tui.server.auth import generate_key

    workspace = _check_id(args.workspace, "--workspace")
    user = _check_id(args.user, "--user")
    key = generate_key()

    async def body(engine: LocalEngine) -> ApiKeyRecord:
        await engine.ensure_scope(workspace, user)
        return await engine.create_api_key(
            workspace_id=workspace,
            user_id=user,
            prefix=key.prefix,
            secret_hash=key.secret_hash,
            name=args.name,
        )

    record = ctx.run_engine(body)
    if args.json:
        document = {
            "key": key.token.reveal(),
            "prefix": record.prefix,
            "workspace_id": record.workspace_id,
            "user_id": record.user_id,
            "name": record.name,
            "created_at": record.created_at,
        }
        ctx.out(output.dumps(document))
    else:
        ctx.out(key.token.reveal())
    ctx.error(
        f"tenex-tui: key tnx_{record.prefix}_… for {record.workspace_id}/"
        f"{record.user_id}; store it now, it is not shown again"
    )
    return EXIT_OK


def _record_document(record: ApiKeyRecord) -> dict[str, str | None]:
    return {
        "prefix": record.prefix,
        "workspace_id": record.workspace_id,
        "user_id": record.user_id,
        "name": record.name,
        "created_at": record.created_at,
        "revoked_at": record.revoked_at,
    }


def list_keys(args: argparse.Namespace, ctx: CliContext) -> int:
    """`keys list`: prefix, scope, name, dates; never a secret or a hash."""
    workspace = args.workspace

    async def body(engine: LocalEngine) -> list[ApiKeyRecord]:
        return await engine.list_api_keys(workspace)

    records = ctx.run_engine(body)
    if args.json:
        ctx.out(output.dumps({"items": [_record_document(r) for r in records]}))
        return EXIT_OK
    if not records:
        ctx.error("tenex-tui: no keys; create one with `tenex-tui keys create`")
        return EXIT_OK
    for record in records:
        state = f"revoked {record.revoked_at}" if record.revoked_at else "active"
        name = output.clean_line(record.name, max_chars=40) if record.name else "-"
        ctx.out(
            f"tnx_{record.prefix}_…  "
            f"{output.clean_line(record.workspace_id)}/{output.clean_line(record.user_id)}"
            f"  {name}  created {record.created_at}  {state}"
        )
    return EXIT_OK


def _prefix(text: str) -> str:
    """Accept `abcd1234`, `tnx_abcd1234` or a whole key; keep only the prefix."""
    value = text.strip()
    if value.startswith("tnx_"):
        value = value[4:]
    return value.split("_", 1)[0]


def revoke_key(args: argparse.Namespace, ctx: CliContext) -> int:
    """`keys revoke PREFIX`: later requests with the key get 401, open streams end."""
    prefix = _prefix(args.prefix)
    if not prefix:
        raise UsageError("give the key's prefix (the 8 characters after tnx_)")

    async def body(engine: LocalEngine) -> bool:
        return await engine.revoke_api_key(prefix)

    shown = output.clean_line(prefix, max_chars=40)
    if not ctx.run_engine(body):
        ctx.error(f"tenex-tui: no active key with prefix {shown}")
        return EXIT_FAILURE
    ctx.out(f"revoked tnx_{shown}_…")
    return EXIT_OK
