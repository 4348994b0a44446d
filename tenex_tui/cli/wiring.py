"""Build the model adapter, the local engine and the app's backend factory from settings.

This is the one place that knows the concrete classes (`OpenAICompatibleAdapter`,
`LocalEngine`); every front end gets a `ChatBackend`. The heavy imports (the openai SDK
takes ~0.45 s) happen inside the functions, and the adapter is only built for commands
that talk to a model, so `tenex-tui threads list` never loads openai.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from tenex_tui.config import ModelChoice, ResolvedProvider

if TYPE_CHECKING:
    from tenex_tui.cli.context import RemoteTarget
    from tenex_tui.core.backend import ChatBackend
    from tenex_tui.engine.clock import Clock
    from tenex_tui.engine.engine import LocalEngine
    from tenex_tui.engine.llm import LLMAdapter
    from tenex_tui.paths import Paths
    from tenex_tui.remote.client import RemoteBackend
    from tenex_tui.remote.sync import SyncService


def build_adapter(provider: ResolvedProvider, model: str | None) -> LLMAdapter:
    """Build the OpenAI-compatible adapter for a resolved provider.

    Args:
        provider: The provider (base URL, key, timeouts).
        model: The default model, or None to let the engine ask the provider.

    Returns:
        An adapter; it connects on first use.
    """
    from tenex_tui.engine.openai_adapter import OpenAICompatibleAdapter

    return OpenAICompatibleAdapter(
        base_url=provider.base_url,
        api_key=provider.api_key,
        default_model=model,
        timeout=provider.timeout,
        connect_timeout=provider.connect_timeout,
        idle_timeout=provider.idle_timeout,
        max_retries=provider.max_retries,
    )


async def open_engine(
    paths: Paths,
    choice: ModelChoice,
    *,
    with_model: bool = True,
    clock: Clock | None = None,
) -> LocalEngine:
    """Open the local engine on the installation's database.

    Args:
        paths: Where the database and locks live (created if missing).
        choice: The provider and default model.
        with_model: False to open without a model adapter (listing, showing, export),
            which keeps the openai SDK out of the process.
        clock: A clock for tests.

    Returns:
        The open engine; the caller must `aclose()` it.

    Raises:
        StorageError: When the database cannot be opened (corrupt, read-only, busy).
    """
    from tenex_tui.engine.engine import LocalEngine

    paths.ensure()
    llm = None
    if with_model and choice.provider is not None:
        llm = build_adapter(choice.provider, choice.model)
    return await LocalEngine.open(
        paths.database,
        llm=llm,
        clock=clock,
        locks_dir=paths.locks_dir,
        default_model=choice.model,
        agents_dir=paths.agents_dir,
    )


async def open_backend(
    paths: Paths, choice: ModelChoice, *, with_model: bool = True
) -> ChatBackend:
    """`open_engine`, typed as the port every front end uses."""
    return await open_engine(paths, choice, with_model=with_model)


def backend_factory(
    paths: Paths, choice: ModelChoice
) -> Callable[[], Awaitable[ChatBackend]]:
    """The factory the terminal app calls (inside its own event loop) for its backend.

    The engine is opened in the app's loop, not before it, because its DB thread and
    stream tasks belong to the loop that runs them.
    """

    async def factory() -> ChatBackend:
        return await open_backend(paths, choice, with_model=True)

    return factory


def open_remote(target: RemoteTarget) -> RemoteBackend:
    """Build the backend of the remote workspace (`--remote`).

    Call it inside the event loop that will use it: the httpx client's connections
    belong to that loop.

    Raises:
        ConfigError: When the API base breaks the transport policy (plain http to a
            non-loopback host) or the key is not a `tnx_` key.
    """
    from tenex_tui.core.errors import ConfigError, InvalidRequest
    from tenex_tui.remote.client import build_remote_backend

    try:
        return build_remote_backend(target.api_base, target.api_key)
    except InvalidRequest as exc:
        raise ConfigError(
            f"{exc.message} (API base from TENEX_API_BASE or [remote] api_base; key "
            f"from {target.key_env})"
        ) from None


def remote_backend_factory(
    target: RemoteTarget,
) -> Callable[[], Awaitable[ChatBackend]]:
    """The app's backend factory for `tenex-tui --remote`.

    The `RemoteBackend` is built inside the factory, so its connection pool belongs to
    the app's event loop; the app closes it with `aclose()`.
    """

    async def factory() -> ChatBackend:
        return open_remote(target)

    return factory


async def open_sync(
    paths: Paths, choice: ModelChoice, target: RemoteTarget
) -> tuple[LocalEngine, SyncService]:
    """Open the local engine and the sync service of the remote workspace.

    The caller closes both: `await service.remote.aclose()`, then `engine.aclose()`.

    Raises:
        ConfigError: When the remote's URL or key breaks the transport policy.
        StorageError: When the local database cannot be opened.
    """
    from tenex_tui.remote.sync import SyncService

    engine = await open_engine(paths, choice, with_model=False)
    try:
        remote = open_remote(target)
    except BaseException:
        await engine.aclose()
        raise
    return engine, SyncService(remote, engine)


def mirrored_backend_factory(
    paths: Paths, choice: ModelChoice, target: RemoteTarget
) -> Callable[[], Awaitable[ChatBackend]]:
    """The app's backend factory for `tenex-tui --remote` with a local mirror.

    The backend is the remote workspace while it answers and its local mirror when it
    does not (`MirroredBackend`, a `core.sync.Syncable`); closing it closes the remote
    client and the engine. When the local database cannot be opened (read-only,
    corrupt, busy), the app still gets the remote workspace, without a mirror.
    """

    async def factory() -> ChatBackend:
        from tenex_tui.core.errors import StorageError
        from tenex_tui.remote.mirror import MirroredBackend

        try:
            engine, service = await open_sync(paths, choice, target)
        except StorageError as exc:
            logging.getLogger("tenex_tui").warning(
                "no local mirror (the database cannot be opened: %s); the remote "
                "workspace is used online only",
                exc.message,
            )
            return open_remote(target)
        try:
            return await MirroredBackend.open(service, on_close=engine.aclose)
        except BaseException:
            await service.remote.aclose()
            await engine.aclose()
            raise

    return factory
