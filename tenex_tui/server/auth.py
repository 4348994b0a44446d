"""API keys: `tnx_<prefix>_<secret>`, stored as a salted hash, checked in constant time.

A key has a public part and a secret part. The prefix (8 characters of `[a-z0-9]`) names
the key: it is what `keys list` shows, what logs may print, and how a request finds its
key record. The secret (40 characters of `[A-Za-z0-9]`, about 238 bits) is shown once by
`keys create` and never stored: the store keeps `sha256$<salt>$<digest>` where digest is
SHA-256 over a per-key random salt and the secret, and a request is accepted only when the
digest of what it sent matches, compared with `hmac.compare_digest` (T61).

Every failure — no header, another scheme, a malformed token, an unknown prefix, a wrong
secret, a revoked key — is the same 401 with the same body, so the answer says nothing
about which keys exist. Keys are read from the `Authorization` header only, never from a
query string (a URL ends up in logs and browser history).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import re
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Protocol

from tenex_tui.core.errors import Unauthorized
from tenex_tui.core.secrets import Secret

PREFIX_ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789"
SECRET_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
PREFIX_LENGTH = 8
SECRET_LENGTH = 40
_TOKEN = re.compile(r"tnx_([a-z0-9]{8})_([A-Za-z0-9_\-]{32,128})")
_HASH_SCHEME = "sha256"
UNAUTHORIZED_MESSAGE = "A valid API key is required (Authorization: Bearer tnx_…)."
"""The one message of every 401, whatever went wrong."""


class ApiKeyLike(Protocol):
    """What the server reads from a stored key (the engine's `ApiKeyRecord`)."""

    @property
    def prefix(self) -> str: ...
    @property
    def workspace_id(self) -> str: ...
    @property
    def user_id(self) -> str: ...
    @property
    def secret_hash(self) -> str: ...
    @property
    def name(self) -> str: ...
    @property
    def revoked_at(self) -> str | None:
        """When the key was revoked (RFC 3339), or None while it is active."""
        ...


class KeyStore(Protocol):
    """Where keys live (the local engine implements it)."""

    async def find_api_key(self, prefix: str) -> ApiKeyLike | None:
        """The key with this prefix, revoked ones included; None when unknown."""
        ...


@dataclass(frozen=True)
class AuthScope:
    """Who a request acts for: the key's workspace and user."""

    workspace_id: str
    user_id: str
    key_prefix: str
    """The public part of the key (safe to log)."""


@dataclass(frozen=True)
class NewKey:
    """A freshly generated key: show `token` once, store `secret_hash`."""

    prefix: str
    token: Secret
    """The full `tnx_<prefix>_<secret>`."""
    secret_hash: str


def hash_secret(secret: str, *, salt: bytes | None = None) -> str:
    """Hash a key's secret part for storage.

    Args:
        secret: The secret part of the key.
        salt: 16 random bytes (generated when None).

    Returns:
        `sha256$<salt hex>$<digest hex>`.
    """
    salt = salt if salt is not None else secrets.token_bytes(16)
    digest = hashlib.sha256(salt + secret.encode()).hexdigest()
    return f"{_HASH_SCHEME}${salt.hex()}${digest}"


def verify_secret(secret: str, stored: str) -> bool:
    """Check a secret against its stored hash, in constant time."""
    try:
        scheme, salt_hex, digest = stored.split("$")
        salt = bytes.fromhex(salt_hex)
    except ValueError:
        return False
    if scheme != _HASH_SCHEME:
        return False
    candidate = hashlib.sha256(salt + secret.encode()).hexdigest()
    return hmac.compare_digest(candidate, digest)


def generate_key(*, prefix: str | None = None) -> NewKey:
    """Make a new random key.

    Args:
        prefix: A fixed prefix (tests); random when None.

    Returns:
        The key, its prefix and the hash to store.
    """
    prefix = prefix or "".join(
        secrets.choice(PREFIX_ALPHABET) for _ in range(PREFIX_LENGTH)
    )
    secret = "".join(secrets.choice(SECRET_ALPHABET) for _ in range(SECRET_LENGTH))
    return NewKey(
        prefix=prefix,
        token=Secret(f"tnx_{prefix}_{secret}"),
        secret_hash=hash_secret(secret),
    )


def parse_token(token: str) -> tuple[str, str] | None:
    """Split `tnx_<prefix>_<secret>` into its parts; None when malformed."""
    match = _TOKEN.fullmatch(token)
    if match is None:
        return None
    return match.group(1), match.group(2)


def bearer_token(header: str | None) -> str | None:
    """Extract the token of an `Authorization: Bearer …` header.

    The scheme is case-insensitive and may be followed by several spaces (RFC 9110
    §11.4); anything else (another scheme, a token with spaces) is None.
    """
    if not header:
        return None
    scheme, _, rest = header.strip().partition(" ")
    if scheme.lower() != "bearer":
        return None
    token = rest.strip(" ")
    if not token or any(ch.isspace() for ch in token):
        return None
    return token


# A hash to compare against when the prefix is unknown, so that path costs the same.
_DUMMY_HASH = hash_secret("x" * SECRET_LENGTH, salt=b"\x00" * 16)


class Authenticator:
    """Turns an `Authorization` header into an `AuthScope`, or a uniform 401.

    Args:
        store: The key store.
        revocation_ttl: How long (seconds) a stream may rely on an earlier "still
            valid" answer before asking the store again; 0 asks at every event.
        monotonic: The clock for that cache (tests can pass a fake).
    """

    def __init__(
        self,
        store: KeyStore,
        *,
        revocation_ttl: float = 1.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._store = store
        self._ttl = revocation_ttl
        self._monotonic = monotonic
        self._checked: dict[str, tuple[float, bool]] = {}
        self._asking: dict[str, asyncio.Future[ApiKeyLike | None]] = {}

    async def authenticate(self, header: str | None) -> AuthScope:
        """Check a request's header against the store.

        Returns:
            The key's scope.

        Raises:
            Unauthorized: Always with the same message, whatever the reason.
        """
        token = bearer_token(header)
        parts = parse_token(token) if token else None
        if parts is None:
            raise Unauthorized(UNAUTHORIZED_MESSAGE)
        prefix, secret = parts
        record = await self._store.find_api_key(prefix)
        stored = record.secret_hash if record is not None else _DUMMY_HASH
        matches = verify_secret(secret, stored)
        if record is None or not matches or record.revoked_at is not None:
            raise Unauthorized(UNAUTHORIZED_MESSAGE)
        return AuthScope(
            workspace_id=record.workspace_id,
            user_id=record.user_id,
            key_prefix=record.prefix,
        )

    def cached_validity(self, scope: AuthScope) -> bool | None:
        """`still_valid`'s answer while it is fresh, without awaiting (None: ask).

        A stream asks before every event; at thousands of events a second the
        coroutine of `still_valid` alone is measurable, and its answer is cached
        for `revocation_ttl` seconds anyway.
        """
        cached = self._checked.get(scope.key_prefix)
        if cached is not None and self._monotonic() - cached[0] < self._ttl:
            return cached[1]
        return None

    async def still_valid(self, scope: AuthScope) -> bool:
        """Whether the key of an open stream is still valid (not revoked, T61).

        Answers are cached for `revocation_ttl` seconds per key, so hundreds of
        streams on one key cost one store lookup per interval.
        """
        now = self._monotonic()
        cached = self._checked.get(scope.key_prefix)
        if cached is not None and now - cached[0] < self._ttl:
            return cached[1]
        # One lookup per key at a time: when the cache expires, the hundreds of
        # streams on that key wait for the same answer instead of each asking.
        asking = self._asking.get(scope.key_prefix)
        if asking is None:
            asking = asyncio.ensure_future(self._store.find_api_key(scope.key_prefix))
            self._asking[scope.key_prefix] = asking
            asking.add_done_callback(partial(self._lookup_done, scope.key_prefix))
        # Shielded: one waiter leaving must not cancel the others' lookup.
        record = await asyncio.shield(asking)
        valid = (
            record is not None
            and record.revoked_at is None
            and record.workspace_id == scope.workspace_id
            and record.user_id == scope.user_id
        )
        self._checked[scope.key_prefix] = (now, valid)
        return valid

    def _lookup_done(
        self, prefix: str, done: asyncio.Future[ApiKeyLike | None]
    ) -> None:
        if self._asking.get(prefix) is done:
            del self._asking[prefix]
        if not done.cancelled():
            done.exception()  # Retrieved here; each waiter gets it from the shield.
