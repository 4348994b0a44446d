"""The remote client's HTTP policy: retries (T65), 429 (T66), validation and caps (T71),
transport rules (T72), redaction (T41), redirects (T43), timeouts (T64d)."""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import AsyncIterator, Callable, Coroutine
from datetime import UTC, datetime
from email.utils import format_datetime

import httpx
import pytest

from tenex_tui.core.errors import (
    Conflict,
    InvalidRequest,
    NotFound,
    RateLimited,
    RemoteUnavailable,
    TenexError,
    Unauthorized,
)
from tenex_tui.core.secrets import Secret
from tenex_tui.remote.http import (
    ApiHttp,
    BearerAuth,
    RetryPolicy,
    check_base_url,
    parse_retry_after,
)

SECRET = "S3cretS3cretS3cretS3cretS3cretS3cretS3cr"
KEY = f"tnx_abcd1234_{SECRET}"
BASE = "http://127.0.0.1:9"

Handler = Callable[[httpx.Request], Coroutine[None, None, httpx.Response]]


class FakeSleep:
    """Records every wait instead of waiting."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)


class Recorder:
    """A MockTransport handler that answers from a script and records requests."""

    def __init__(self, *answers: httpx.Response | Exception) -> None:
        self.answers = list(answers)
        self.requests: list[httpx.Request] = []

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        if isinstance(answer, Exception):
            raise answer
        return answer


def ok(data: object = None, status: int = 200) -> httpx.Response:
    return httpx.Response(status, json=data if data is not None else {"ok": True})


def error(
    status: int, code: str = "x", message: str = "m", **headers: str
) -> httpx.Response:
    return httpx.Response(
        status, json={"error": {"code": code, "message": message}}, headers=headers
    )


def make(
    handler: Handler, *, policy: RetryPolicy | None = None, **kwargs: object
) -> tuple[ApiHttp, FakeSleep]:
    sleep = FakeSleep()
    api = ApiHttp(
        kwargs.pop("base_url", BASE),  # type: ignore[arg-type]
        Secret(KEY),
        transport=httpx.MockTransport(handler),
        sleep=sleep,
        rng=random.Random(7),
        retry=policy or RetryPolicy(max_retries=3, base_delay=0.5, max_delay=8.0),
        **kwargs,  # type: ignore[arg-type]
    )
    return api, sleep


# -- T65 retries ---------------------------------------------------------------------


async def test_get_is_retried_on_503_then_succeeds_with_jittered_backoff() -> None:
    handler = Recorder(error(503), error(503), ok({"n": 1}))
    api, sleep = make(handler)
    answer = await api.request("GET", "/threads")
    assert answer.data == {"n": 1}
    assert len(handler.requests) == 3
    assert len(sleep.delays) == 2
    for retry, delay in enumerate(sleep.delays):
        assert 0.0 <= delay <= min(8.0, 0.5 * 2**retry)
    assert api.online is True


async def test_backoff_is_full_jitter_within_its_ceiling() -> None:
    policy = RetryPolicy(base_delay=0.5, max_delay=8.0)
    rng = random.Random(1)
    for retry in range(10):
        ceiling = min(8.0, 0.5 * 2**retry)
        delays = [policy.backoff(retry, rng) for _ in range(50)]
        assert all(0.0 <= d <= ceiling for d in delays)
        assert max(delays) > ceiling / 2  # spread out, not a constant


async def test_reset_connection_is_retried_for_get() -> None:
    handler = Recorder(httpx.RemoteProtocolError("peer closed"), ok())
    api, sleep = make(handler)
    await api.request("GET", "/threads")
    assert len(handler.requests) == 2
    assert len(sleep.delays) == 1


@pytest.mark.parametrize(
    ("status", "cls"),
    [
        (400, InvalidRequest),
        (401, Unauthorized),
        (403, Unauthorized),
        (404, NotFound),
        (409, Conflict),
        (422, InvalidRequest),
    ],
)
async def test_4xx_is_never_retried(status: int, cls: type[TenexError]) -> None:
    handler = Recorder(httpx.Response(status, text="nope"))
    api, sleep = make(handler)
    with pytest.raises(cls):
        await api.request("GET", "/threads/x")
    assert len(handler.requests) == 1
    assert sleep.delays == []


async def test_error_envelope_becomes_the_named_error() -> None:
    handler = Recorder(error(404, "not_found", "Thread not found."))
    api, _ = make(handler)
    with pytest.raises(NotFound, match="Thread not found"):
        await api.request("GET", "/threads/x")


async def test_retry_budget_is_respected() -> None:
    handler = Recorder(error(503, "remote_unavailable", "down"))
    api, sleep = make(handler, policy=RetryPolicy(max_retries=2))
    with pytest.raises(RemoteUnavailable):
        await api.request("GET", "/threads")
    assert len(handler.requests) == 3
    assert len(sleep.delays) == 2


async def test_post_without_idempotency_key_is_not_retried() -> None:
    handler = Recorder(error(503), ok())
    api, _ = make(handler)
    with pytest.raises(TenexError):
        await api.request("POST", "/threads", json_body={})
    assert len(handler.requests) == 1
    lost = Recorder(httpx.ReadError("lost"), ok())
    api2, _ = make(lost)
    with pytest.raises(RemoteUnavailable):
        await api2.request("POST", "/threads", json_body={})
    assert len(lost.requests) == 1


async def test_post_with_idempotency_key_is_retried_with_the_same_key() -> None:
    handler = Recorder(httpx.ReadError("lost"), error(500), ok(status=201))
    api, _ = make(handler)
    answer = await api.request("POST", "/threads", json_body={}, idempotency_key="k-1")
    assert answer.status == 201
    assert [r.headers["idempotency-key"] for r in handler.requests] == ["k-1"] * 3


async def test_a_connection_never_made_is_retried_for_any_method() -> None:
    handler = Recorder(httpx.ConnectError("refused"), ok())
    api, _ = make(handler)
    await api.request("POST", "/threads", json_body={})
    assert len(handler.requests) == 2


# -- T66 429 -------------------------------------------------------------------------


async def test_retry_after_seconds_is_waited_exactly() -> None:
    handler = Recorder(error(429, **{"Retry-After": "2"}), ok())
    api, sleep = make(handler)
    await api.request("GET", "/threads")
    assert sleep.delays == [2.0]


async def test_retry_after_ms_is_waited_exactly() -> None:
    handler = Recorder(error(429, **{"retry-after-ms": "1500"}), ok())
    api, sleep = make(handler)
    await api.request("GET", "/threads")
    assert sleep.delays == [1.5]


@pytest.mark.parametrize("value", ["garbage", "-5", ""])
async def test_unreadable_retry_after_falls_back_to_backoff(value: str) -> None:
    handler = Recorder(error(429, **{"Retry-After": value}), ok())
    api, sleep = make(handler)
    await api.request("GET", "/threads")
    assert len(sleep.delays) == 1 and 0.0 <= sleep.delays[0] <= 0.5


async def test_retry_after_above_the_cap_raises_rate_limited_without_waiting() -> None:
    handler = Recorder(
        error(429, "rate_limited", "slow down", **{"Retry-After": "3600"})
    )
    api, sleep = make(handler, policy=RetryPolicy(max_retry_after=30))
    with pytest.raises(RateLimited) as info:
        await api.request("GET", "/threads")
    assert info.value.retry_after == 3600
    assert sleep.delays == []
    assert len(handler.requests) == 1


async def test_persistent_429_stops_after_the_retry_budget() -> None:
    handler = Recorder(httpx.Response(429, headers={"Retry-After": "1"}))
    api, sleep = make(handler, policy=RetryPolicy(max_retries=3))
    with pytest.raises(RateLimited) as info:
        await api.request("GET", "/threads")
    assert len(handler.requests) == 4
    assert sleep.delays == [1.0, 1.0, 1.0]
    assert "rate limiting" in str(info.value)


def test_parse_retry_after_forms() -> None:
    now = datetime(2026, 1, 15, 9, 30, tzinfo=UTC)
    later = format_datetime(datetime(2026, 1, 15, 9, 30, 42, tzinfo=UTC), usegmt=True)
    assert parse_retry_after(httpx.Headers({"Retry-After": "2"}), now=now) == 2.0
    assert parse_retry_after(httpx.Headers({"Retry-After": later}), now=now) == 42.0
    assert parse_retry_after(httpx.Headers({"retry-after-ms": "1500"}), now=now) == 1.5
    assert parse_retry_after(httpx.Headers({"Retry-After": "soon"}), now=now) is None
    assert parse_retry_after(httpx.Headers({"Retry-After": "-1"}), now=now) is None
    assert parse_retry_after(httpx.Headers({"retry-after-ms": "nan"}), now=now) is None
    assert parse_retry_after(httpx.Headers({}), now=now) is None


# -- T71 response validation and caps ----------------------------------------------------


async def test_html_answer_is_a_clear_error_naming_the_endpoint() -> None:
    handler = Recorder(httpx.Response(200, html="<html>Sign in to the Wi-Fi</html>"))
    api, _ = make(handler)
    with pytest.raises(RemoteUnavailable) as info:
        await api.request("GET", "/threads")
    assert "GET /api/v1/chat/threads" in str(info.value)
    assert "text/html" in str(info.value)


async def test_invalid_json_is_a_clear_error() -> None:
    handler = Recorder(
        httpx.Response(
            200, content=b'{"items": [', headers={"content-type": "application/json"}
        )
    )
    api, _ = make(handler)
    with pytest.raises(RemoteUnavailable, match="not JSON"):
        await api.request("GET", "/threads")


async def test_body_cap_is_enforced_while_streaming() -> None:
    sent: list[int] = []

    async def endless() -> AsyncIterator[bytes]:
        for _ in range(10_000):
            sent.append(1)
            yield b"x" * 4096

    async def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            200, content=endless(), headers={"content-type": "application/json"}
        )

    api, _ = make(handler, max_body_bytes=64 * 1024)
    with pytest.raises(RemoteUnavailable, match="more than"):
        await api.request("GET", "/threads")
    assert len(sent) < 40  # stopped soon after the cap, not after 40 MB


async def test_declared_oversized_body_is_refused_before_reading() -> None:
    handler = Recorder(
        httpx.Response(200, content=b"{}", headers={"content-length": str(10**9)})
    )
    api, _ = make(handler, max_body_bytes=1024)
    with pytest.raises(RemoteUnavailable, match="more than"):
        await api.request("GET", "/threads")


# -- T72 transport policy ----------------------------------------------------------


def test_plain_http_is_allowed_only_to_loopback() -> None:
    assert check_base_url("http://127.0.0.1:8765").host == "127.0.0.1"
    assert check_base_url("http://localhost:8765/").host == "localhost"
    assert check_base_url("http://[::1]:8765").host == "::1"
    assert check_base_url("https://api.10ex.ai").scheme == "https"
    with pytest.raises(InvalidRequest, match="plain http"):
        check_base_url("http://api.10ex.ai")
    with pytest.raises(InvalidRequest, match="plain http"):
        check_base_url("http://10.0.0.5:8765")
    assert (
        check_base_url("http://10.0.0.5:8765", allow_insecure=True).host == "10.0.0.5"
    )


@pytest.mark.parametrize(
    "url",
    [
        "ftp://api.10ex.ai",
        "https://user:pw@api.10ex.ai",
        "https://api.10ex.ai/?api_key=x",
        "not a url",
    ],
)
def test_bad_base_urls_are_refused(url: str) -> None:
    with pytest.raises(InvalidRequest):
        check_base_url(url)


def test_turning_off_tls_verification_needs_the_explicit_flag() -> None:
    with pytest.raises(InvalidRequest, match="allow_insecure"):
        ApiHttp("https://api.10ex.ai", Secret(KEY), verify=False)
    api = ApiHttp("https://api.10ex.ai", Secret(KEY), verify=False, allow_insecure=True)
    assert api.insecure is True
    assert ApiHttp("https://api.10ex.ai", Secret(KEY)).insecure is False


async def test_trust_env_is_pinned_off_so_proxy_variables_are_ignored(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://10.255.255.1:3128")
    monkeypatch.setenv("HTTP_PROXY", "http://10.255.255.1:3128")
    monkeypatch.setenv("ALL_PROXY", "http://10.255.255.1:3128")
    handler = Recorder(ok())
    api, _ = make(handler)
    await api.request("GET", "/threads")
    # With trust_env on, httpx would mount a proxy transport and try 10.255.255.1.
    assert len(handler.requests) == 1
    assert api._client.trust_env is False


# -- T41 redaction, T43 redirects ------------------------------------------------------


async def test_error_bodies_echoing_the_key_are_redacted() -> None:
    echo = json.dumps(
        {
            "error": {
                "code": "unauthorized",
                "message": f"bad header Authorization: Bearer {KEY}",
            }
        }
    )
    handler = Recorder(
        httpx.Response(
            401, content=echo.encode(), headers={"content-type": "application/json"}
        )
    )
    api, _ = make(handler)
    with pytest.raises(Unauthorized) as info:
        await api.request("GET", "/threads")
    assert SECRET not in str(info.value)
    assert "tnx_abcd1234_****" in str(info.value) or "****" in str(info.value)


async def test_transport_errors_never_show_the_key() -> None:
    handler = Recorder(httpx.ConnectError(f"failed for http://127.0.0.1:9/?k={KEY}"))
    api, _ = make(handler, policy=RetryPolicy(max_retries=0))
    with pytest.raises(RemoteUnavailable) as info:
        await api.request("GET", "/threads")
    assert SECRET not in str(info.value)
    assert "Cannot reach 127.0.0.1" in str(info.value)


def test_the_key_is_refused_in_a_url() -> None:
    api, _ = make(Recorder(ok()))
    with pytest.raises(InvalidRequest, match="URL"):
        api.build_request("GET", "/search", params={"q": KEY})
    with pytest.raises(InvalidRequest, match="URL"):
        api.build_request("GET", f"/threads/{KEY}")


async def test_the_key_is_sent_only_in_the_authorization_header() -> None:
    handler = Recorder(ok())
    api, _ = make(handler)
    await api.request("GET", "/threads", params={"limit": "5"})
    request = handler.requests[0]
    assert request.headers["authorization"] == f"Bearer {KEY}"
    assert SECRET not in str(request.url)
    assert repr(api._client.auth) == "BearerAuth(Secret('tnx_abcd1234_****'))"


async def test_redirects_are_not_followed() -> None:
    handler = Recorder(
        httpx.Response(
            302, headers={"Location": "http://127.0.0.2:9/api/v1/chat/threads"}
        )
    )
    api, _ = make(handler)
    with pytest.raises(RemoteUnavailable, match="redirect"):
        await api.request("GET", "/threads")
    assert len(handler.requests) == 1


def test_bearer_auth_only_signs_requests_for_its_origin() -> None:
    auth = BearerAuth(Secret(KEY), httpx.URL("http://127.0.0.1:8765"))
    same = httpx.Request("GET", "http://127.0.0.1:8765/api/v1/chat/threads")
    other_host = httpx.Request("GET", "http://127.0.0.2:8765/api/v1/chat/threads")
    other_port = httpx.Request("GET", "http://127.0.0.1:8766/api/v1/chat/threads")
    assert next(auth.auth_flow(same)).headers.get("authorization") == f"Bearer {KEY}"
    assert "authorization" not in next(auth.auth_flow(other_host)).headers
    assert "authorization" not in next(auth.auth_flow(other_port)).headers


# -- T64d timeouts ---------------------------------------------------------------


async def test_refused_connection_is_a_clear_error_after_retries() -> None:
    handler = Recorder(httpx.ConnectError("Connection refused"))
    api, _ = make(handler, policy=RetryPolicy(max_retries=2))
    with pytest.raises(RemoteUnavailable, match=r"Cannot reach 127\.0\.0\.1"):
        await api.request("GET", "/threads")
    assert len(handler.requests) == 3
    assert api.online is False


async def test_overall_deadline_bounds_a_call_that_never_answers() -> None:
    never = asyncio.Event()

    async def handler(request: httpx.Request) -> httpx.Response:
        await never.wait()
        return ok()

    api, _ = make(handler, policy=RetryPolicy(deadline=0.3))
    loop = asyncio.get_running_loop()
    start = loop.time()
    with pytest.raises(RemoteUnavailable, match=r"not responding after 0.3 s"):
        await api.request("GET", "/threads")
    assert loop.time() - start < 2.0
    assert api.online is False
