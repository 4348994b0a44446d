"""Injectable time and ids, so tests and snapshots are deterministic.

Ids are `<prefix>_<26 chars>`: 10 characters of millisecond time then 16 random ones, in
Crockford base32, so they sort by creation time and cannot be guessed from a neighbour.
"""

from __future__ import annotations

import secrets
import threading
from datetime import UTC, datetime, timedelta
from typing import Protocol

_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"


def _b32(value: int, length: int) -> str:
    chars = []
    for _ in range(length):
        chars.append(_ALPHABET[value & 31])
        value >>= 5
    return "".join(reversed(chars))


class Clock(Protocol):
    """Where the engine gets the time and new ids."""

    def now(self) -> datetime:
        """The current time, timezone-aware UTC."""
        ...

    def new_id(self, prefix: str) -> str:
        """A new unique id such as `thr_01jd…`."""
        ...


class SystemClock:
    """The real clock and random ids."""

    def now(self) -> datetime:
        """The current time, timezone-aware UTC."""
        return datetime.now(UTC)

    def new_id(self, prefix: str) -> str:
        """A time-ordered id with 80 random bits."""
        millis = int(self.now().timestamp() * 1000)
        return f"{prefix}_{_b32(millis, 10)}{_b32(secrets.randbits(80), 16)}"


class FixedClock:
    """A clock for tests: starts at `start`, advances `step` per call, counts ids.

    Thread-safe, because the engine calls it from its DB thread and the event loop.
    """

    def __init__(
        self,
        start: datetime = datetime(2026, 1, 15, 9, 30, tzinfo=UTC),
        step: timedelta = timedelta(seconds=1),
    ) -> None:
        self._now = start
        self._step = step
        self._counter = 0
        self._lock = threading.Lock()

    def now(self) -> datetime:
        """The current fake time, then advance by one step."""
        with self._lock:
            value = self._now
            self._now += self._step
            return value

    def advance(self, delta: timedelta) -> None:
        """Move the fake time forward."""
        with self._lock:
            self._now += delta

    def new_id(self, prefix: str) -> str:
        """`<prefix>_` plus a zero-padded counter: stable across runs."""
        with self._lock:
            self._counter += 1
            return f"{prefix}_{self._counter:026d}"
