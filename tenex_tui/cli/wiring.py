"""Build the model adapter, the local engine and the app's backend factory from settings.

This is the one place that knows the concrete classes (`OpenAICompatibleAdapter`,
`LocalEngine`); every front end gets a `ChatBackend`. The heavy imports (the openai SDK
takes ~0.45 s) happen inside the functions, and the adapter is only built for commands
that talk to a model, so `tenex-tui threads list` never loads openai.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from tenex_tui.config import ModelChoice, ResolvedProvider

if TYPE_CHECKING:
    from tenex_tui.core.backend import ChatBackend
    from tenex_tui.engine.clock import Clock
    from tenex_tui.engine.engine import LocalEngine
    from tenex_tui.engine.llm import LLMAdapter
    from tenex_tui.paths import Paths


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
