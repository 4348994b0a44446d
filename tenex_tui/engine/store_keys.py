"""API keys and idempotency records, stored for the HTTP server.

The server's auth module decides how keys are made, hashed and compared; the store only
keeps `(prefix, secret_hash)` rows, never a plaintext secret (test-plan T61). Idempotency
records follow Stripe's semantics: the first result stored for a key is the one every
retry gets back, per workspace and user, for 24 hours.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from datetime import timedelta

from tenex_tui.core.errors import InvalidRequest
from tenex_tui.core.models import format_timestamp
from tenex_tui.engine.store_base import Scope, StoreBase

IDEMPOTENCY_TTL = timedelta(hours=24)
"""How long an idempotency record is replayed (Stripe prunes keys after 24 h)."""


@dataclass(frozen=True)
class ApiKeyRecord:
    """A stored API key: its public prefix and the hash of its secret."""

    prefix: str
    workspace_id: str
    user_id: str
    secret_hash: str
    name: str
    created_at: str
    """RFC 3339 UTC."""
    revoked_at: str | None
    """When it was revoked (None: active)."""


@dataclass(frozen=True)
class IdempotencyRecord:
    """The first result of a request made with an `Idempotency-Key`."""

    key: str
    workspace_id: str
    user_id: str
    request_hash: str
    """A digest of the request, to refuse a key reused with another payload."""
    status: int
    body: str
    created_at: str


def _key(row: sqlite3.Row) -> ApiKeyRecord:
    return ApiKeyRecord(
        prefix=row["prefix"],
        workspace_id=row["workspace_id"],
        user_id=row["user_id"],
        secret_hash=row["secret_hash"],
        name=row["name"],
        created_at=row["created_at"],
        revoked_at=row["revoked_at"],
    )


class KeysMixin(StoreBase):
    """API key and idempotency queries."""

    def create_api_key(
        self,
        *,
        workspace_id: str,
        user_id: str,
        prefix: str,
        secret_hash: str,
        name: str,
    ) -> ApiKeyRecord:
        """Store a new key.

        Raises:
            InvalidRequest: When the prefix is taken or a field is empty.
        """
        if not prefix or not secret_hash:
            raise InvalidRequest("A key needs a prefix and a secret hash.")
        now = self.now()
        with self.sc.write() as conn:
            taken = conn.execute(
                "SELECT 1 FROM api_keys WHERE prefix = ?", (prefix,)
            ).fetchone()
            if taken is not None:
                raise InvalidRequest("That key prefix is already in use.")
            conn.execute(
                "INSERT OR IGNORE INTO workspaces (id, name, created_at) VALUES (?, '', ?)",
                (workspace_id, now),
            )
            conn.execute(
                "INSERT OR IGNORE INTO users (workspace_id, id, name, created_at) "
                "VALUES (?, ?, '', ?)",
                (workspace_id, user_id, now),
            )
            conn.execute(
                "INSERT INTO api_keys (prefix, workspace_id, user_id, secret_hash, name, "
                "created_at) VALUES (?, ?, ?, ?, ?, ?)",
                (prefix, workspace_id, user_id, secret_hash, name, now),
            )
        found = self.find_api_key(prefix)
        assert found is not None
        return found

    def find_api_key(self, prefix: str) -> ApiKeyRecord | None:
        """The key with this prefix, revoked or not."""
        row = self.conn.execute(
            "SELECT * FROM api_keys WHERE prefix = ?", (prefix,)
        ).fetchone()
        return _key(row) if row is not None else None

    def list_api_keys(self, workspace_id: str | None) -> list[ApiKeyRecord]:
        """Every key (of one workspace when given), oldest first."""
        if workspace_id is None:
            rows = self.conn.execute(
                "SELECT * FROM api_keys ORDER BY created_at, prefix"
            ).fetchall()
        else:
            rows = self.conn.execute(
                "SELECT * FROM api_keys WHERE workspace_id = ? ORDER BY created_at, prefix",
                (workspace_id,),
            ).fetchall()
        return [_key(r) for r in rows]

    def revoke_api_key(self, prefix: str) -> bool:
        """Revoke a key; False when there is no active key with that prefix."""
        with self.sc.write() as conn:
            cursor = conn.execute(
                "UPDATE api_keys SET revoked_at = ? WHERE prefix = ? AND revoked_at IS NULL",
                (self.now(), prefix),
            )
            return cursor.rowcount == 1

    def get_idempotency(self, scope: Scope, key: str) -> IdempotencyRecord | None:
        """The stored first result for this key in scope, unless it expired."""
        cutoff = format_timestamp(self.clock.now() - IDEMPOTENCY_TTL)
        row = self.conn.execute(
            "SELECT * FROM idempotency WHERE workspace_id = ? AND user_id = ? AND key = ? "
            "AND created_at >= ?",
            (scope.workspace_id, scope.user_id, key, cutoff),
        ).fetchone()
        if row is None:
            return None
        return IdempotencyRecord(
            key=row["key"],
            workspace_id=row["workspace_id"],
            user_id=row["user_id"],
            request_hash=row["request_hash"],
            status=row["status"],
            body=row["body"],
            created_at=row["created_at"],
        )

    def put_idempotency(
        self, scope: Scope, key: str, *, request_hash: str, status: int, body: str
    ) -> None:
        """Store the first result for a key (a later put for a live key is ignored)."""
        now = self.clock.now()
        cutoff = format_timestamp(now - IDEMPOTENCY_TTL)
        with self.sc.write() as conn:
            # Expired records are pruned, and may be replaced by a fresh first result.
            conn.execute(
                "DELETE FROM idempotency WHERE workspace_id = ? AND created_at < ?",
                (scope.workspace_id, cutoff),
            )
            conn.execute(
                "INSERT OR IGNORE INTO idempotency (workspace_id, user_id, key, "
                "request_hash, status, body, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    scope.workspace_id,
                    scope.user_id,
                    key,
                    request_hash,
                    status,
                    body,
                    format_timestamp(now),
                ),
            )
