"""The HTTP policy of the remote client: auth, transport rules, retries, error mapping.

Everything that decides *how* a request travels lives here, so `client.py` only says
*what* to ask. The rules, and why:

- **Timeouts.** httpx's read timeout is the gap between chunks, so a server dripping one
  byte a second never trips it (test-plan §7a). Every call therefore also runs under an
  overall deadline (`asyncio.timeout`), retries included.
- **Retries.** Only requests that are safe to repeat are retried: GET, PATCH, DELETE,
  and POSTs that carry an `Idempotency-Key` (the client always sends one on create, send,
  regenerate and cancel, and the server replays the first result). A connection that was
  never established is retried for any method, since nothing was sent. 4xx answers are
  never retried, except 429, which waits for `Retry-After` when the wait is short and
  otherwise raises `RateLimited` carrying it. Delays are exponential with full jitter
  (AWS architecture blog), with an injectable sleep and RNG so tests can pin them.
- **Credentials.** The key lives in a `Secret` inside `BearerAuth`, the only code that
  reveals it, and only for the configured origin. Redirects are not followed (a 3xx is an
  error), so a key can never travel to another origin (T43). A key found in a URL is
  refused before anything is sent (T41), and every error text is redacted.
- **Transport.** Plain `http://` is allowed only to loopback unless the caller passes
  `allow_insecure=True`; disabling TLS verification needs the same flag (T72).
  `trust_env` is pinned to False: proxy variables, `SSL_CERT_FILE` and `~/.netrc` are
  ignored, so no ambient setting can reroute or re-credential the API traffic. A proxy
  must be given explicitly (`proxy=`).
- **Responses.** Bodies are read with a size cap while streaming; a non-JSON body (a
  captive portal's HTML page) is a clear `RemoteUnavailable` naming the endpoint (T71).
"""

from __future__ import annotations

import asyncio
import json
import random
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import httpx

from tenex_tui.core.errors import (
    Conflict,
    InvalidRequest,
    NotFound,
    PayloadTooLarge,
    RateLimited,
    RemoteUnavailable,
    TenexError,
    Unauthorized,
    error_from_wire,
)
from tenex_tui.core.secrets import Secret, redact
from tenex_tui.remote.policy import (
    BearerAuth,
    RetryPolicy,
    check_base_url,
    is_loopback_host,
    parse_retry_after,
)

__all__ = [
    "DEFAULT_MAX_BODY_BYTES",
    "DEFAULT_TIMEOUT",
    "ApiHttp",
    "ApiResponse",
    "BearerAuth",
    "HeadersTimeout",
    "RetryPolicy",
    "Sleep",
    "check_base_url",
    "is_loopback_host",
    "new_idempotency_key",
    "parse_retry_after",
]

DEFAULT_TIMEOUT = httpx.Timeout(connect=5.0, read=30.0, write=10.0, pool=5.0)
"""Per-phase timeouts: connect 5 s, read 30 s between chunks, write 10 s, pool 5 s.

The read timeout is above the server's 15 s keep-alive ping, so an idle stream lives.
"""
DEFAULT_MAX_BODY_BYTES = 10 * 1024 * 1024
"""Largest JSON response body read (T71); larger ones are refused while streaming."""
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "PATCH", "DELETE"})
"""Methods that may be repeated without changing the outcome."""
RETRYABLE_STATUSES = frozenset({500, 502, 503, 504})
"""Server failures worth another try (when the request is safe to repeat)."""

Sleep = Callable[[float], Awaitable[None]]
"""How the policy waits between attempts (`asyncio.sleep`, or a fake in tests)."""


class HeadersTimeout(RemoteUnavailable):
    """A streaming request got no response headers within its deadline."""


@dataclass(frozen=True)
class ApiResponse:
    """A fully read JSON answer."""

    status: int
    data: Any
    """The decoded JSON body, or None for an empty (204) answer."""


class ApiHttp:
    """One configured HTTP client for `/api/v1/chat`, with the policy above.

    Args:
        base_url: The API base, such as `https://api.10ex.ai`.
        api_key: The key, kept secret.
        retry: The retry and deadline policy.
        timeout: httpx per-phase timeouts.
        allow_insecure: Allow plain HTTP to non-loopback hosts and unverified TLS.
        verify: TLS verification (False needs `allow_insecure`).
        proxy: An explicit proxy URL (environment proxies are never used).
        transport: An httpx transport (tests pass `httpx.MockTransport`).
        sleep: The wait used between attempts.
        rng: The jitter source.
        max_body_bytes: The cap on a JSON response body.
        api_prefix: The path of the chat API under the base URL.

    Raises:
        InvalidRequest: When the base URL or TLS settings break the transport policy.
    """

    def __init__(
        self,
        base_url: str,
        api_key: Secret,
        *,
        retry: RetryPolicy | None = None,
        timeout: httpx.Timeout = DEFAULT_TIMEOUT,
        allow_insecure: bool = False,
        verify: bool = True,
        proxy: str | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        sleep: Sleep | None = None,
        rng: random.Random | None = None,
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
        api_prefix: str = "/api/v1/chat",
    ) -> None:
        self.base_url = check_base_url(base_url, allow_insecure=allow_insecure)
        if not verify and not allow_insecure:
            raise InvalidRequest(
                "TLS verification can be turned off only with allow_insecure."
            )
        self.insecure = allow_insecure and (
            not verify or self.base_url.scheme == "http"
        )
        """True when a persistent 'insecure connection' warning should be shown."""
        self.retry = retry or RetryPolicy()
        self.max_body_bytes = max_body_bytes
        self._key = api_key
        self._prefix = api_prefix.rstrip("/")
        self._sleep: Sleep = sleep or asyncio.sleep
        self._rng = rng or random.Random()
        self.online: bool | None = None
        """The outcome of the last request: None before any, False after a failure."""
        self._client = httpx.AsyncClient(
            base_url=str(self.base_url),
            auth=BearerAuth(api_key, self.base_url),
            timeout=timeout,
            follow_redirects=False,
            # Pinned (T72): no env proxies, no netrc credentials, no SSL_CERT_FILE.
            trust_env=False,
            verify=verify,
            proxy=proxy,
            transport=transport,
            headers={"User-Agent": "tenex-tui", "Accept": "application/json"},
        )

    @property
    def host(self) -> str:
        """The API host, for messages."""
        return self.base_url.host

    def redact(self, text: str) -> str:
        """Remove the key (and anything key-shaped) from a text."""
        return redact(text, [self._key.reveal()])

    def endpoint(self, method: str, path: str) -> str:
        """`GET /api/v1/chat/threads`: how errors name a request (never its query)."""
        return f"{method} {self.url_path(path)}"

    def url_path(self, path: str) -> str:
        """The full path of an API route (base path + API prefix + route)."""
        base = self.base_url.path.rstrip("/")
        return f"{base}{self._prefix}{path}"

    def build_request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        json_body: Any = None,
        headers: Mapping[str, str] | None = None,
        idempotency_key: str | None = None,
    ) -> httpx.Request:
        """Build a request, refusing any that would carry the key in its URL (T41).

        Raises:
            InvalidRequest: When the key appears in the URL.
        """
        all_headers = dict(headers or {})
        if idempotency_key is not None:
            all_headers["Idempotency-Key"] = idempotency_key
        content = None
        if json_body is not None:
            content = json.dumps(json_body, separators=(",", ":")).encode()
            all_headers["Content-Type"] = "application/json"
        request = self._client.build_request(
            method,
            self.url_path(path),
            params=dict(params) if params else None,
            content=content,
            headers=all_headers,
        )
        secret = self._key.reveal()
        if secret and secret in str(request.url):
            raise InvalidRequest("Refusing to send an API key in a URL.")
        return request

    async def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        json_body: Any = None,
        idempotency_key: str | None = None,
    ) -> ApiResponse:
        """Send one API call under the retry policy and decode its JSON answer.

        Returns:
            The status and decoded body.

        Raises:
            TenexError: The server's error, decoded from its envelope (`NotFound`,
                `InvalidRequest`, `Unauthorized`, `Conflict`, …); `RateLimited` with
                `retry_after`; `RemoteUnavailable` for timeouts, refused connections,
                5xx after retries, redirects and non-JSON answers.
        """
        endpoint = self.endpoint(method, path)
        repeatable = method in IDEMPOTENT_METHODS or idempotency_key is not None
        deadline = self.retry.deadline
        try:
            async with asyncio.timeout(deadline):
                return await self._attempts(
                    method,
                    path,
                    endpoint=endpoint,
                    repeatable=repeatable,
                    params=params,
                    json_body=json_body,
                    idempotency_key=idempotency_key,
                )
        except TimeoutError:
            self.online = False
            raise RemoteUnavailable(
                f"The remote workspace ({self.host}) is not responding after "
                f"{deadline:g} s ({endpoint})."
            ) from None

    async def _attempts(
        self,
        method: str,
        path: str,
        *,
        endpoint: str,
        repeatable: bool,
        params: Mapping[str, str] | None,
        json_body: Any,
        idempotency_key: str | None,
    ) -> ApiResponse:
        retry = 0
        while True:
            request = self.build_request(
                method,
                path,
                params=params,
                json_body=json_body,
                idempotency_key=idempotency_key,
            )
            wait: float | None = None
            try:
                status, headers, body = await self._send_and_read(request, endpoint)
            except httpx.TransportError as exc:
                self.online = False
                never_sent = isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout)
                error = self.transport_error(exc, endpoint)
                if not (repeatable or never_sent) or retry >= self.retry.max_retries:
                    raise error from None
            else:
                self.online = status < 500
                if 200 <= status < 300:
                    return ApiResponse(
                        status, self.decode_json(body, headers, endpoint)
                    )
                error = self.status_error(status, headers, body, endpoint)
                hint = parse_retry_after(headers)
                if status == 429:
                    # The server did not act on a 429, so any method may try again.
                    if hint is not None and hint > self.retry.max_retry_after:
                        raise error
                    if retry >= self.retry.max_retries:
                        raise error
                    wait = hint
                elif status in RETRYABLE_STATUSES and repeatable:
                    if retry >= self.retry.max_retries:
                        raise error
                    if hint is not None and hint <= self.retry.max_retry_after:
                        wait = hint
                else:
                    raise error
            if wait is None:
                wait = self.retry.backoff(retry, self._rng)
            retry += 1
            await self._sleep(wait)

    async def _send_and_read(
        self, request: httpx.Request, endpoint: str
    ) -> tuple[int, httpx.Headers, bytes]:
        response = await self._client.send(request, stream=True)
        try:
            body = await self.read_capped(response, endpoint)
        finally:
            await response.aclose()
        return response.status_code, response.headers, body

    async def read_capped(self, response: httpx.Response, endpoint: str) -> bytes:
        """Read a response body, stopping at the size cap (T71).

        Raises:
            RemoteUnavailable: When the body is larger than the cap.
        """
        declared = response.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > self.max_body_bytes:
            raise self._too_big(endpoint)
        chunks: list[bytes] = []
        size = 0
        async for chunk in response.aiter_bytes():
            size += len(chunk)
            if size > self.max_body_bytes:
                raise self._too_big(endpoint)
            chunks.append(chunk)
        return b"".join(chunks)

    def _too_big(self, endpoint: str) -> RemoteUnavailable:
        limit_mb = self.max_body_bytes / (1024 * 1024)
        return RemoteUnavailable(
            f"The remote workspace sent more than {limit_mb:g} MB for {endpoint}; "
            "the answer was not read."
        )

    def decode_json(self, body: bytes, headers: httpx.Headers, endpoint: str) -> Any:
        """Decode a success body as JSON (an empty body is None).

        Raises:
            RemoteUnavailable: When the body is not JSON (a captive portal, a proxy).
        """
        if not body.strip():
            return None
        content_type = headers.get("content-type", "").split(";")[0].strip().lower()
        try:
            return json.loads(body)
        except (ValueError, UnicodeDecodeError):
            kind = content_type or "an unknown type"
            raise RemoteUnavailable(
                f"{endpoint} on {self.host} answered with {kind}, not JSON: is a "
                "captive portal or proxy in the way?"
            ) from None

    def status_error(
        self, status: int, headers: httpx.Headers, body: bytes, endpoint: str
    ) -> TenexError:
        """Turn an error answer into the matching `TenexError`, redacted."""
        message: str | None = None
        code: str | None = None
        try:
            data = json.loads(body) if body.strip() else None
        except (ValueError, UnicodeDecodeError):
            data = None
        if isinstance(data, dict) and isinstance(data.get("error"), dict):
            envelope = data["error"]
            if isinstance(envelope.get("code"), str):
                code = envelope["code"]
            if isinstance(envelope.get("message"), str):
                message = self.redact(envelope["message"])[:500]
        if status == 429:
            retry_after = parse_retry_after(headers)
            when = ""
            if retry_after is not None:
                until = datetime.now().astimezone() + timedelta(seconds=retry_after)
                when = f" until {until.strftime('%H:%M')}"
            return RateLimited(
                message or f"The remote workspace is rate limiting requests{when}.",
                retry_after=retry_after,
            )
        if 300 <= status < 400:
            return RemoteUnavailable(
                f"{endpoint} on {self.host} answered with a redirect ({status}); "
                "redirects are not followed, so the API key never leaves this host."
            )
        if code is not None and message is not None:
            return error_from_wire(code, message)
        fallback = f"{endpoint} on {self.host} failed with HTTP {status}"
        if not body.strip() or data is None:
            fallback += " and an answer that is not the API's (not JSON)"
        by_status: dict[int, type[TenexError]] = {
            400: InvalidRequest,
            401: Unauthorized,
            403: Unauthorized,
            404: NotFound,
            409: Conflict,
            413: PayloadTooLarge,
            422: InvalidRequest,
        }
        if status in by_status:
            return by_status[status](message or fallback + ".")
        return RemoteUnavailable(message or fallback + ".")

    def transport_error(self, exc: httpx.TransportError, endpoint: str) -> TenexError:
        """A sentence for a connection-level failure, never with the key or a URL."""
        if isinstance(exc, httpx.ConnectTimeout):
            text = f"cannot reach {self.host}: connecting timed out"
        elif isinstance(exc, httpx.ConnectError):
            text = f"cannot reach {self.host}: {self.redact(str(exc)) or 'refused'}"
        elif isinstance(exc, httpx.TimeoutException):
            text = f"the remote workspace ({self.host}) stopped responding"
        elif isinstance(exc, httpx.UnsupportedProtocol):
            text = f"unsupported URL for {self.host}"
        else:
            text = f"the connection to {self.host} was lost ({type(exc).__name__})"
        return RemoteUnavailable(f"{text[0].upper()}{text[1:]} ({endpoint}).")

    @asynccontextmanager
    async def stream(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        json_body: Any = None,
        headers: Mapping[str, str] | None = None,
        idempotency_key: str | None = None,
        connect_deadline: float | None = None,
    ) -> AsyncIterator[httpx.Response]:
        """Open a streaming request; the caller reads the body.

        The response's headers must arrive within the deadline; the body then has only
        the per-chunk read timeout (a reply can take minutes, pinged every 15 s).

        Yields:
            The open response, whatever its status (the caller decides).

        Raises:
            httpx.TransportError: Connection failures, for the caller's resume policy.
            HeadersTimeout: When the headers do not arrive within the deadline.
        """
        request = self.build_request(
            method,
            path,
            params=params,
            json_body=json_body,
            headers=headers,
            idempotency_key=idempotency_key,
        )
        limit = (
            connect_deadline if connect_deadline is not None else self.retry.deadline
        )
        try:
            async with asyncio.timeout(limit):
                response = await self._client.send(request, stream=True)
        except TimeoutError:
            self.online = False
            raise HeadersTimeout(
                f"The remote workspace ({self.host}) is not responding after "
                f"{limit:g} s ({self.endpoint(method, path)})."
            ) from None
        except httpx.TransportError:
            self.online = False
            raise
        self.online = response.status_code < 500
        try:
            yield response
        finally:
            await response.aclose()

    async def sleep(self, seconds: float) -> None:
        """Wait with the policy's (injectable) sleep."""
        await self._sleep(seconds)

    @property
    def rng(self) -> random.Random:
        """The jitter source."""
        return self._rng

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self._client.aclose()


def new_idempotency_key() -> str:
    """A fresh `Idempotency-Key` (a random UUID, as Stripe recommends)."""
    return str(uuid.uuid4())
