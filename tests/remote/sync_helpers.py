"""Shared pieces of the sync and outbox tests: a client engine, a recording sleep, and
a `SyncService` over the served stack (or a fault proxy in front of it)."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from tenex_tui.core.models import Message, Thread
from tenex_tui.engine.clock import FixedClock
from tenex_tui.engine.engine import LocalEngine
from tenex_tui.remote.client import RemoteBackend
from tenex_tui.remote.http import RetryPolicy
from tenex_tui.remote.outbox import OutboxPolicy
from tenex_tui.remote.sse import ResumePolicy
from tenex_tui.remote.sync import SyncPolicy, SyncService
from tests.support.server_fixture import Stack


@dataclass
class Waits:
    """A fake `sleep` that records every wait and returns at once."""

    calls: list[float] = field(default_factory=list)

    async def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)


class Clock:
    """A settable clock for backoff deadlines."""

    def __init__(self) -> None:
        self.now = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@asynccontextmanager
async def client_engine(
    path: Path, clock: FixedClock | None = None
) -> AsyncIterator[LocalEngine]:
    """The local engine of the syncing machine (its own ids collide with the server's
    FixedClock ids on purpose: composite keys must keep them apart)."""
    engine = await LocalEngine.open(
        path, clock=clock or FixedClock(), checkpoint_interval=0.05
    )
    try:
        yield engine
    finally:
        await engine.aclose()


def remote_for(
    stack: Stack, name: str = "a1", base_url: str | None = None, **kwargs: Any
) -> RemoteBackend:
    """A remote client with fast, seeded retries (closed by the stack)."""
    kwargs.setdefault(
        "retry",
        RetryPolicy(max_retries=1, base_delay=0.01, max_delay=0.02, deadline=10),
    )
    kwargs.setdefault(
        "resume", ResumePolicy(max_attempts=3, base_delay=0.01, max_delay=0.02)
    )
    kwargs.setdefault("rng", random.Random(7))
    backend = RemoteBackend(base_url or stack.base_url, stack.keys[name], **kwargs)
    stack._remotes.append(backend)
    return backend


def service_for(
    remote: RemoteBackend,
    engine: LocalEngine,
    *,
    waits: Waits | None = None,
    clock: Clock | None = None,
    page_limit: int = 500,
    spacing: float = 0.05,
) -> SyncService:
    """A sync service with a recording sleep and a seeded jitter source."""
    return SyncService(
        remote,
        engine,
        policy=SyncPolicy(
            page_limit=page_limit,
            outbox=OutboxPolicy(spacing=spacing, backoff_base=1.0),
        ),
        sleep=waits or Waits(),
        rng=random.Random(3),
        now=clock or Clock(),
    )


async def all_threads(backend: Any) -> list[Thread]:
    """Every thread (live and archived) of a backend, paging through."""
    items: list[Thread] = []
    cursor = None
    for _ in range(1000):
        page = await backend.list_threads(limit=200, cursor=cursor, archived=None)
        items += page.items
        cursor = page.next_cursor
        if cursor is None:
            break
    return items


async def all_messages(backend: Any, thread_id: str) -> list[Message]:
    """Every message of a thread, oldest first."""
    items: list[Message] = []
    cursor = None
    for _ in range(1000):
        page = await backend.list_messages(thread_id, limit=200, cursor=cursor)
        items += page.items
        cursor = page.next_cursor
        if cursor is None:
            break
    return items


def comparable(thread: Thread) -> tuple[Any, ...]:
    """The fields a mirror must reproduce."""
    return (
        thread.id,
        thread.user_id,
        thread.title,
        thread.agent,
        thread.system_prompt,
        thread.pinned,
        thread.archived,
        thread.created_at,
        thread.updated_at,
        thread.message_count,
        thread.last_status,
    )


def message_key(message: Message) -> tuple[Any, ...]:
    """The fields of a message a mirror must reproduce."""
    return (
        message.id,
        message.role,
        message.content,
        message.status,
        message.model,
        message.created_at,
    )
