"""Reading requests safely: capped bodies, strict JSON bodies, typed query parameters.

Every failure here is a `TenexError` with a sentence the caller can act on, so the API
answers 400 (or 413) with the error envelope instead of a traceback.
"""

from __future__ import annotations

import json
import re
from typing import Any, TypeVar

import pydantic
from starlette.requests import Request

from tenex_tui.core.errors import InvalidRequest, NotFound, PayloadTooLarge
from tenex_tui.core.models import clamp_limit

BodyT = TypeVar("BodyT", bound=pydantic.BaseModel)

_INT = re.compile(r"-?[0-9]{1,18}")
_KEY_PARAMS = frozenset({"api_key", "apikey", "key", "token", "access_token"})
MAX_ID_CHARS = 200
"""Longest id accepted in a path; longer ones cannot exist."""
MAX_IDEMPOTENCY_KEY_CHARS = 255


async def read_body(request: Request, max_bytes: int) -> bytes:
    """Read a request body, refusing it as soon as it passes the cap.

    A declared `Content-Length` above the cap is refused before reading anything;
    a chunked body is counted while it arrives, so memory never holds more than the cap.

    Raises:
        PayloadTooLarge: When the body is larger than `max_bytes`.
    """
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        raise _too_large(max_bytes)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > max_bytes:
            raise _too_large(max_bytes)
        chunks.append(chunk)
    return b"".join(chunks)


def _too_large(max_bytes: int) -> PayloadTooLarge:
    return PayloadTooLarge(
        f"The request body is larger than the limit of {max_bytes / 1048576:g} MB."
    )


def parse_json_body(raw: bytes, model: type[BodyT]) -> BodyT:
    """Validate a JSON body against a `core.payloads` model.

    An empty body counts as `{}`. Unknown fields are an error (the models forbid them).

    Raises:
        InvalidRequest: For bad UTF-8, bad JSON, a non-object, or a failed validation,
            with the position or the field in the message.
    """
    data: Any = {}
    if raw.strip():
        try:
            data = json.loads(raw.decode("utf-8"))
        except UnicodeDecodeError:
            raise InvalidRequest("The request body is not UTF-8 text.") from None
        except json.JSONDecodeError as exc:
            raise InvalidRequest(
                f"The request body is not valid JSON: {exc.msg} "
                f"(line {exc.lineno}, column {exc.colno})."
            ) from None
    if not isinstance(data, dict):
        raise InvalidRequest("The request body must be a JSON object.")
    try:
        return model.model_validate(data)
    except pydantic.ValidationError as exc:
        raise InvalidRequest(f"Invalid request body: {describe_errors(exc)}.") from None


def describe_errors(exc: pydantic.ValidationError, limit: int = 3) -> str:
    """Summarise a validation error: `title: String should have at most 200 characters`."""
    parts = []
    for error in exc.errors()[:limit]:
        location = ".".join(str(part) for part in error["loc"]) or "body"
        message = error["msg"]
        if error["type"] == "extra_forbidden":
            message = "unknown field"
        parts.append(f"{location}: {message}")
    more = len(exc.errors()) - limit
    if more > 0:
        parts.append(f"and {more} more")
    return "; ".join(parts)


def refuse_key_in_query(request: Request) -> None:
    """Keys are accepted only in the `Authorization` header (never in a URL).

    Raises:
        InvalidRequest: When the query string carries something named like a key.
    """
    for name in request.query_params:
        if name.lower() in _KEY_PARAMS:
            raise InvalidRequest(
                "API keys are accepted only in the Authorization header, never in "
                "the URL."
            )


def query_limit(request: Request) -> int | None:
    """`limit`: absent → None (the default 50); above 200 → 200.

    Raises:
        InvalidRequest: For 0, negative numbers and anything that is not a whole number.
    """
    raw = request.query_params.get("limit")
    if raw is None or raw == "":
        return None
    if not _INT.fullmatch(raw.strip()):
        raise InvalidRequest(
            f"limit must be a whole number from 1 to 200, not {raw!r}."
        )
    try:
        return clamp_limit(int(raw))
    except ValueError:
        raise InvalidRequest("limit must be at least 1.") from None


def query_bool(request: Request, name: str, *, allow_all: bool = False) -> bool | None:
    """A boolean filter: `true`/`false` (`1`/`0`), absent → None, `all` → None.

    Raises:
        InvalidRequest: For any other value.
    """
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return None
    value = raw.strip().lower()
    if value in {"true", "1", "yes"}:
        return True
    if value in {"false", "0", "no"}:
        return False
    if allow_all and value in {"all", "any"}:
        return None
    choices = "true, false or all" if allow_all else "true or false"
    raise InvalidRequest(f"{name} must be {choices}, not {raw!r}.")


def query_archived(request: Request) -> bool | None:
    """`archived`: absent → False (live threads), `true`, `false`, or `all` → None."""
    if request.query_params.get("archived") in (None, ""):
        return False
    return query_bool(request, "archived", allow_all=True)


def query_text(request: Request, name: str, *, max_chars: int = 1000) -> str | None:
    """A free-text parameter, or None when absent.

    Raises:
        InvalidRequest: When it is longer than `max_chars`.
    """
    raw = request.query_params.get(name)
    if raw is None:
        return None
    if len(raw) > max_chars:
        raise InvalidRequest(f"{name} is longer than {max_chars} characters.")
    return raw


def query_order(request: Request) -> str:
    """`order`: `asc` (default) or `desc`.

    Raises:
        InvalidRequest: For anything else.
    """
    raw = request.query_params.get("order") or "asc"
    if raw not in {"asc", "desc"}:
        raise InvalidRequest(f"order must be asc or desc, not {raw!r}.")
    return raw


def path_id(request: Request, name: str) -> str:
    """An id from the path; ids longer than any real one are simply not found.

    Raises:
        NotFound: For an id that cannot exist.
    """
    value = str(request.path_params[name])
    if not value or len(value) > MAX_ID_CHARS:
        raise NotFound("Not found.")
    return value


def idempotency_key(request: Request) -> str | None:
    """The `Idempotency-Key` header, validated.

    Raises:
        InvalidRequest: When it is empty, too long, or not printable ASCII.
    """
    raw = request.headers.get("idempotency-key")
    if raw is None:
        return None
    value = raw.strip()
    if (
        not value
        or len(value) > MAX_IDEMPOTENCY_KEY_CHARS
        or not value.isascii()
        or not value.isprintable()
    ):
        raise InvalidRequest(
            "Idempotency-Key must be 1 to 255 printable ASCII characters."
        )
    return value


def accepts_event_stream(request: Request) -> bool:
    """True when the client asked for Server-Sent Events."""
    accept = request.headers.get("accept", "")
    return any(
        part.split(";")[0].strip().lower() == "text/event-stream"
        for part in accept.split(",")
    )
