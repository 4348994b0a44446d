"""Transport rules of the remote client: retry timing, `Retry-After`, URL policy, auth.

Pure policy, no I/O: `http.ApiHttp` applies it. See `http.py` for why each rule exists.
"""

from __future__ import annotations

import ipaddress
import random
from collections.abc import Generator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

import httpx

from tenex_tui.core.errors import InvalidRequest
from tenex_tui.core.secrets import Secret


@dataclass(frozen=True)
class RetryPolicy:
    """How many times, and how patiently, a request is tried again."""

    max_retries: int = 3
    """Retries after the first attempt (so at most `max_retries + 1` requests)."""
    base_delay: float = 0.5
    """The backoff ceiling of the first retry, in seconds; it doubles each time."""
    max_delay: float = 8.0
    """No single backoff waits longer than this."""
    max_retry_after: float = 30.0
    """The longest `Retry-After` honoured by waiting; above it `RateLimited` is raised."""
    deadline: float = 60.0
    """Overall time for one call, every attempt and wait included."""

    def backoff(self, retry: int, rng: random.Random) -> float:
        """The wait before retry number `retry` (0-based): full jitter.

        Returns:
            A delay drawn uniformly from `[0, min(max_delay, base_delay * 2**retry)]`.
        """
        ceiling = min(self.max_delay, self.base_delay * (2.0**retry))
        return rng.uniform(0.0, ceiling)


def parse_retry_after(
    headers: Mapping[str, str], *, now: datetime | None = None
) -> float | None:
    """Read how long a server asked the client to wait.

    Args:
        headers: Response headers (case-insensitive mapping).
        now: The current time, for an HTTP-date value (defaults to the real clock).

    Returns:
        Seconds to wait, from `retry-after-ms`, or `Retry-After` as seconds or an
        HTTP-date; None when absent, negative, or unreadable (then backoff applies).
    """
    millis = headers.get("retry-after-ms")
    if millis is not None:
        try:
            value = float(millis) / 1000.0
        except ValueError:
            value = -1.0
        if value >= 0 and value == value:  # rejects NaN
            return value
    raw = headers.get("retry-after")
    if raw is None:
        return None
    raw = raw.strip()
    if raw.isascii() and raw.isdigit():
        return float(raw)
    try:
        when = parsedate_to_datetime(raw)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    current = now if now is not None else datetime.now(UTC)
    seconds = (when - current).total_seconds()
    return seconds if seconds >= 0 else 0.0


def is_loopback_host(host: str) -> bool:
    """True for `localhost` and loopback addresses (127.0.0.0/8, ::1)."""
    host = host.strip("[]").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_base_url(base_url: str, *, allow_insecure: bool = False) -> httpx.URL:
    """Validate the API base URL against the transport policy (T72).

    Args:
        base_url: Such as `https://api.10ex.ai` or `http://127.0.0.1:8765`.
        allow_insecure: Permit plain `http://` to a non-loopback host.

    Returns:
        The parsed URL, without a trailing slash.

    Raises:
        InvalidRequest: For another scheme, credentials or a query in the URL, or plain
            HTTP to a remote host without `allow_insecure`.
    """
    try:
        url = httpx.URL(base_url.strip())
    except (httpx.InvalidURL, TypeError) as exc:
        raise InvalidRequest(f"The API base URL is not a URL: {exc}") from None
    if url.scheme not in {"http", "https"} or not url.host:
        raise InvalidRequest(
            "The API base URL must start with https:// (or http:// for loopback)."
        )
    if url.userinfo:
        raise InvalidRequest(
            "The API base URL must not contain credentials; use TENEX_API_KEY."
        )
    if url.query or url.fragment:
        raise InvalidRequest("The API base URL must not have a query or fragment.")
    if url.scheme == "http" and not is_loopback_host(url.host) and not allow_insecure:
        raise InvalidRequest(
            f"Refusing plain http:// to {url.host}: the API key would travel "
            "unencrypted. Use https://, or allow_insecure for a trusted network."
        )
    return url.copy_with(path=url.path.rstrip("/"))


def _origin(url: httpx.URL) -> tuple[str, str, int | None]:
    default = {"http": 80, "https": 443}.get(url.scheme)
    return (url.scheme, url.host, url.port or default)


class BearerAuth(httpx.Auth):
    """Adds `Authorization: Bearer tnx_…` to requests for one origin only.

    The key stays a `Secret` until this flow builds the header, so no other frame of
    the program holds the clear value (a crash screen's locals show `tnx_abcd_****`).
    """

    def __init__(self, key: Secret, base_url: httpx.URL) -> None:
        self._key = key
        self._origin = _origin(base_url)

    def __repr__(self) -> str:
        return f"BearerAuth({self._key!r})"

    def auth_flow(
        self, request: httpx.Request
    ) -> Generator[httpx.Request, httpx.Response, None]:
        """Attach the header when the request goes to the configured origin."""
        if _origin(request.url) == self._origin:
            request.headers["Authorization"] = f"Bearer {self._key.reveal()}"
        yield request
