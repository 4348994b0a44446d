"""`Idempotency-Key` on POSTs, with Stripe's semantics (test-plan §7a, T67).

The first successful result of a key is stored through the backend's idempotency records
(scoped to the key's workspace and user) and replayed for every retry with the same key;
the same key with a different request (another route or another body) is a 422. Errors
are not stored, so a request that failed can be retried for real.

Sends and regenerations store *which reply* they started (thread and message ids) as soon
as `message.started` is out, and a retry gets that reply's stream again from its first
event (the client drops the events it already has). Requests with the same key are
serialised by an in-process lock, so two racing retries cannot both execute.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from tenex_tui.core.errors import IdempotencyConflict


class IdempotencyRecordLike(Protocol):
    """What the server reads from a stored record (the engine's `IdempotencyRecord`)."""

    @property
    def request_hash(self) -> str: ...
    @property
    def status(self) -> int: ...
    @property
    def body(self) -> str: ...


class IdempotencyStore(Protocol):
    """Where results are kept, already scoped to one workspace and user."""

    async def get_idempotency(self, key: str) -> IdempotencyRecordLike | None:
        """The record of this key, or None."""
        ...

    async def put_idempotency(
        self, key: str, *, request_hash: str, status: int, body: str
    ) -> None:
        """Store the first result of a key."""
        ...


@dataclass(frozen=True)
class Replay:
    """A stored first result."""

    kind: Literal["json", "stream"]
    status: int
    data: Any = None
    """For `json`: the response body."""
    thread_id: str = ""
    """For `stream`: the reply's thread."""
    message_id: str = ""
    """For `stream`: the reply's assistant message."""
    user_message_id: str | None = None


def request_hash(method: str, path: str, raw_body: bytes) -> str:
    """Fingerprint a request: method, path and its JSON body, key order ignored."""
    try:
        body: Any = json.loads(raw_body) if raw_body.strip() else None
        canonical = json.dumps(body, sort_keys=True, separators=(",", ":"))
    except (ValueError, UnicodeDecodeError):
        canonical = raw_body.hex()
    digest = hashlib.sha256(f"{method} {path}\n{canonical}".encode())
    return digest.hexdigest()


class Slot:
    """One key's turn: what was stored before, and how to store this result."""

    def __init__(
        self, store: IdempotencyStore, key: str, fingerprint: str, replay: Replay | None
    ) -> None:
        self._store = store
        self._key = key
        self._hash = fingerprint
        self.replay = replay
        """The first result of this key, when there is one."""

    async def store_json(self, status: int, data: Any) -> None:
        """Remember a JSON answer."""
        body = json.dumps({"kind": "json", "data": data}, separators=(",", ":"))
        await self._store.put_idempotency(
            self._key, request_hash=self._hash, status=status, body=body
        )

    async def store_stream(
        self, thread_id: str, message_id: str, user_message_id: str | None
    ) -> None:
        """Remember which reply this request started."""
        body = json.dumps(
            {
                "kind": "stream",
                "thread_id": thread_id,
                "message_id": message_id,
                "user_message_id": user_message_id,
            },
            separators=(",", ":"),
        )
        await self._store.put_idempotency(
            self._key, request_hash=self._hash, status=200, body=body
        )


def _decode(record: IdempotencyRecordLike) -> Replay:
    data = json.loads(record.body)
    if data.get("kind") == "stream":
        return Replay(
            kind="stream",
            status=record.status,
            thread_id=str(data["thread_id"]),
            message_id=str(data["message_id"]),
            user_message_id=data.get("user_message_id"),
        )
    return Replay(kind="json", status=record.status, data=data.get("data"))


class IdempotencyGate:
    """Serialises requests per (workspace, user, key) inside this server process."""

    def __init__(self) -> None:
        self._locks: dict[tuple[str, str, str], tuple[asyncio.Lock, int]] = {}

    @asynccontextmanager
    async def slot(
        self,
        store: IdempotencyStore,
        scope: tuple[str, str],
        key: str,
        fingerprint: str,
    ) -> AsyncIterator[Slot]:
        """Hold the key's lock and look up its first result.

        Raises:
            IdempotencyConflict: When the key was used for a different request.
        """
        ident = (scope[0], scope[1], key)
        lock, users = self._locks.get(ident, (asyncio.Lock(), 0))
        self._locks[ident] = (lock, users + 1)
        try:
            async with lock:
                record = await store.get_idempotency(key)
                replay = None
                if record is not None:
                    if record.request_hash != fingerprint:
                        raise IdempotencyConflict(
                            "This Idempotency-Key was already used for a different "
                            "request; use a new key for a new request."
                        )
                    replay = _decode(record)
                yield Slot(store, key, fingerprint, replay)
        finally:
            lock, users = self._locks[ident]
            if users <= 1:
                del self._locks[ident]
            else:
                self._locks[ident] = (lock, users - 1)
