"""API keys: format, salted hash, constant-time check, uniform 401 (T61 unit part)."""

from __future__ import annotations

import ast
import inspect
import re
from dataclasses import dataclass, replace

import pytest

from tenex_tui.core.errors import Unauthorized
from tenex_tui.server import auth
from tenex_tui.server.auth import (
    UNAUTHORIZED_MESSAGE,
    Authenticator,
    AuthScope,
    bearer_token,
    generate_key,
    hash_secret,
    parse_token,
    verify_secret,
)


@dataclass(frozen=True)
class Record:
    prefix: str
    workspace_id: str
    user_id: str
    secret_hash: str
    name: str = ""
    revoked_at: str | None = None


class MemoryStore:
    def __init__(self) -> None:
        self.keys: dict[str, Record] = {}
        self.lookups = 0

    async def find_api_key(self, prefix: str) -> Record | None:
        self.lookups += 1
        return self.keys.get(prefix)

    def add(self, workspace: str, user: str) -> str:
        key = generate_key()
        self.keys[key.prefix] = Record(key.prefix, workspace, user, key.secret_hash)
        return key.token.reveal()


def test_generated_keys_have_the_documented_shape() -> None:
    key = generate_key()
    token = key.token.reveal()
    assert re.fullmatch(r"tnx_[a-z0-9]{8}_[A-Za-z0-9]{40}", token)
    assert token.startswith(f"tnx_{key.prefix}_")
    assert repr(key.token) == f"Secret('tnx_{key.prefix}_****')"
    assert generate_key().token != key.token


def test_only_a_salted_hash_of_the_secret_is_stored() -> None:
    key = generate_key()
    secret = key.token.reveal().split("_", 2)[2]
    assert secret not in key.secret_hash
    assert key.secret_hash.startswith("sha256$")
    assert verify_secret(secret, key.secret_hash)
    assert not verify_secret(secret + "x", key.secret_hash)
    assert hash_secret(secret) != hash_secret(secret)  # a fresh salt every time
    assert not verify_secret(secret, "garbage")
    assert not verify_secret(secret, "md5$00$00")


def test_the_secret_check_uses_compare_digest() -> None:
    tree = ast.parse(inspect.getsource(auth.verify_secret))
    calls = [
        node
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr == "compare_digest"
    ]
    assert calls, "verify_secret must compare with hmac.compare_digest"
    digest_compares = [
        node
        for node in ast.walk(tree)
        if isinstance(node, ast.Compare)
        and any(isinstance(op, ast.Eq | ast.NotEq) for op in node.ops)
        and "digest" in ast.unparse(node)
    ]
    assert digest_compares == []


@pytest.mark.parametrize(
    ("token", "ok"),
    [
        ("tnx_abcd1234_" + "A" * 40, True),
        ("tnx_abcd1234_" + "A-_b" * 10, True),
        ("tnx_ABCD1234_" + "A" * 40, False),
        ("tnx_abc_" + "A" * 40, False),
        ("tnx_abcd1234_" + "A" * 31, False),
        ("tnx_abcd1234_" + "A" * 40 + " ", False),
        ("sk-abcd1234", False),
        ("", False),
    ],
)
def test_token_parsing(token: str, ok: bool) -> None:
    assert (parse_token(token) is not None) is ok


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("Bearer tok", "tok"),
        ("bearer tok", "tok"),
        ("BEARER    tok", "tok"),
        ("  Bearer tok  ", "tok"),
        ("Basic tok", None),
        ("Bearer", None),
        ("Bearer a b", None),
        ("tok", None),
        (None, None),
        ("", None),
    ],
)
def test_bearer_header_parsing(header: str | None, expected: str | None) -> None:
    assert bearer_token(header) == expected


async def test_every_failure_is_the_same_401() -> None:
    store = MemoryStore()
    good = store.add("ws_a", "usr_a1")
    other = store.add("ws_b", "usr_b1")
    prefix, secret = parse_token(good)  # type: ignore[misc]
    other_prefix, _ = parse_token(other)  # type: ignore[misc]
    revoked = store.add("ws_a", "usr_a1")
    revoked_prefix, _ = parse_token(revoked)  # type: ignore[misc]
    store.keys[revoked_prefix] = replace(
        store.keys[revoked_prefix], revoked_at="2026-01-15T09:30:00Z"
    )
    authenticator = Authenticator(store)
    bad_headers = [
        None,
        "",
        f"Basic {good}",
        "Bearer tnx_malformed",
        f"Bearer tnx_zzzz9999_{secret}",  # unknown prefix
        f"Bearer tnx_{prefix}_{'x' * 40}",  # wrong secret
        f"Bearer tnx_{other_prefix}_{secret}",  # another workspace's prefix with this secret
        f"Bearer {revoked}",
    ]
    messages = set()
    for header in bad_headers:
        with pytest.raises(Unauthorized) as info:
            await authenticator.authenticate(header)
        messages.add(str(info.value))
    assert messages == {UNAUTHORIZED_MESSAGE}
    scope = await authenticator.authenticate(f"bearer   {good}")
    assert scope == AuthScope("ws_a", "usr_a1", prefix)


async def test_still_valid_caches_per_key_for_the_ttl() -> None:
    store = MemoryStore()
    token = store.add("ws_a", "usr_a1")
    now = [100.0]
    authenticator = Authenticator(store, revocation_ttl=1.0, monotonic=lambda: now[0])
    scope = await authenticator.authenticate(f"Bearer {token}")
    lookups = store.lookups
    assert await authenticator.still_valid(scope)
    assert await authenticator.still_valid(scope)
    assert store.lookups == lookups + 1
    store.keys[scope.key_prefix] = replace(
        store.keys[scope.key_prefix], revoked_at="2026-01-15T09:30:00Z"
    )
    assert await authenticator.still_valid(scope)  # within the TTL
    now[0] += 1.5
    assert not await authenticator.still_valid(scope)
