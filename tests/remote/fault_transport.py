"""An httpx transport over real loopback connections that injects faults by count.

`FaultTransport` forwards every request to the real server through
`httpx.AsyncHTTPTransport`, except when:

- `offline` is set: every request fails to connect (`httpx.ConnectError`), as with the
  network cut or the server down;
- a `Fault` matches: the `at`-th request (1-based) matching its method and path regex
  is refused before reaching the server (`before`: a 500, or `refuse`: no connection),
  or reaches it and loses its answer (`after_commit`: the server committed, the client
  gets a 500; `drop_after_commit`: the connection breaks instead).

Every request is recorded with its `Idempotency-Key` and its time (monotonic), so tests
can check keys across retries and the spacing between requests.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from typing import Literal

import httpx

FaultKind = Literal["before", "refuse", "after_commit", "drop_after_commit"]
_ERROR = b'{"error":{"code":"internal_error","message":"injected failure"}}'


@dataclass
class Fault:
    method: str
    path: str
    """A regex over the URL path."""
    at: int
    """Which matching request (1-based) fails first."""
    kind: FaultKind = "before"
    times: int = 1
    """How many matching requests from `at` on fail."""
    seen: int = 0

    def hit(self, method: str, path: str) -> bool:
        if method != self.method or re.search(self.path, path) is None:
            return False
        self.seen += 1
        return self.at <= self.seen < self.at + self.times


@dataclass(frozen=True)
class Seen:
    method: str
    path: str
    key: str | None
    at: float
    fault: str | None


@dataclass
class FaultTransport(httpx.AsyncBaseTransport):
    offline: bool = False
    faults: list[Fault] = field(default_factory=list)
    seen: list[Seen] = field(default_factory=list)
    inner: httpx.AsyncHTTPTransport = field(default_factory=httpx.AsyncHTTPTransport)

    def add(
        self,
        method: str,
        path: str,
        at: int,
        kind: FaultKind = "before",
        times: int = 1,
    ) -> Fault:
        fault = Fault(method, path, at, kind, times)
        self.faults.append(fault)
        return fault

    def requests(self, method: str, path: str) -> list[Seen]:
        return [s for s in self.seen if s.method == method and re.search(path, s.path)]

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        method, path = request.method, request.url.path
        fault = next((f for f in self.faults if f.hit(method, path)), None)
        kind = "offline" if self.offline else (fault.kind if fault else None)
        self.seen.append(
            Seen(
                method,
                path,
                request.headers.get("idempotency-key"),
                time.monotonic(),
                kind,
            )
        )
        if self.offline or kind == "refuse":
            raise httpx.ConnectError("connection refused (injected)", request=request)
        if kind == "before":
            return _error_response(request)
        response = await self.inner.handle_async_request(request)
        if kind in ("after_commit", "drop_after_commit"):
            await response.aread()
            await response.aclose()
            if kind == "drop_after_commit":
                raise httpx.ReadError("connection dropped (injected)", request=request)
            return _error_response(request)
        return response

    async def aclose(self) -> None:
        await self.inner.aclose()


def _error_response(request: httpx.Request) -> httpx.Response:
    return httpx.Response(
        500,
        headers={"content-type": "application/json"},
        content=_ERROR,
        request=request,
    )
