"""The error hierarchy every backend raises, and its wire codes.

Each error carries a stable `code` (the `error.code` of the API's error envelope) and an
HTTP `status`, so the server maps errors to responses and the remote client maps them back
without a table in either place. Messages are plain sentences a user can act on; they
never contain secrets (callers redact before raising).
"""

from __future__ import annotations

from typing import ClassVar


class TenexError(Exception):
    """Base of every error a `ChatBackend` raises on purpose."""

    code: ClassVar[str] = "internal_error"
    status: ClassVar[int] = 500

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message

    def to_wire(self) -> dict[str, dict[str, str]]:
        """Return the API's error envelope: `{"error": {"code", "message"}}`."""
        return {"error": {"code": self.code, "message": self.message}}


class NotFound(TenexError):
    """The thing does not exist in the caller's scope (another scope's ids included)."""

    code = "not_found"
    status = 404


class InvalidRequest(TenexError):
    """The request is malformed: a bad argument, limit, or body."""

    code = "invalid_request"
    status = 400


class InvalidCursor(InvalidRequest):
    """A cursor was tampered with, belongs to another scope, or to other filters."""

    code = "invalid_cursor"


class Conflict(TenexError):
    """The request conflicts with the current state (a reply is already streaming)."""

    code = "conflict"
    status = 409


class Unauthorized(TenexError):
    """The API key is missing, malformed, unknown or revoked."""

    code = "unauthorized"
    status = 401


class RateLimited(TenexError):
    """The server asked the client to slow down."""

    code = "rate_limited"
    status = 429

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class PayloadTooLarge(TenexError):
    """A body or an attachment is above its size cap."""

    code = "payload_too_large"
    status = 413


class StorageError(TenexError):
    """The local store could not do what was asked."""

    code = "storage_error"
    status = 500


class StorageBusy(StorageError):
    """Another process holds the database's write lock longer than the busy timeout."""

    code = "storage_busy"
    status = 503


class StorageReadOnly(StorageError):
    """The database file or its folder cannot be written."""

    code = "storage_read_only"
    status = 503


class StorageCorrupt(StorageError):
    """The database file is not a database, or fails its integrity check."""

    code = "storage_corrupt"
    status = 500


class StorageGone(StorageError):
    """The database file was removed, moved or replaced while the engine ran (T10).

    Retrying cannot help: nothing more is written until the engine is reopened.
    """

    code = "storage_gone"
    status = 503


class DiskFull(StorageError):
    """A write failed for lack of space (or a file-size limit)."""

    code = "disk_full"
    status = 507


class ModelError(TenexError):
    """The model provider failed; the message says how, redacted."""

    code = "model_error"
    status = 502


class ModelNotConfigured(ModelError):
    """No model provider is configured, so nothing can be sent."""

    code = "model_not_configured"
    status = 503


class ModelUnavailable(ModelError):
    """The provider could not be reached or timed out."""

    code = "model_unavailable"
    status = 503


class RemoteUnavailable(TenexError):
    """A remote workspace could not be reached (offline, timeout, 5xx)."""

    code = "remote_unavailable"
    status = 503


class AttachmentError(InvalidRequest):
    """A file could not be attached: too big, binary, unreadable, or refused."""

    code = "attachment_error"


class ConfigError(TenexError):
    """The configuration file is malformed; the message names the file and line."""

    code = "config_error"


class IdempotencyConflict(InvalidRequest):
    """An `Idempotency-Key` was reused with a different request (a client bug)."""

    code = "idempotency_key_reused"
    status = 422


ERRORS_BY_CODE: dict[str, type[TenexError]] = {}
"""Every concrete error class by its wire code, for clients decoding an envelope."""


def _register(cls: type[TenexError]) -> None:
    ERRORS_BY_CODE.setdefault(cls.code, cls)
    for sub in cls.__subclasses__():
        _register(sub)


_register(TenexError)


def error_from_wire(code: str, message: str) -> TenexError:
    """Rebuild an error from the API's error envelope.

    Args:
        code: The envelope's `error.code`.
        message: The envelope's `error.message`.

    Returns:
        An instance of the matching class, or `TenexError` for an unknown code.
    """
    cls = ERRORS_BY_CODE.get(code, TenexError)
    return cls(message)
