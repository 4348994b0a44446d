"""`StreamingTransport`, the adapter's HTTP/1.1 transport, against scripted raw servers.

The adapter suites run the whole SDK path over it (replies, drops, stalls, retries,
cancel); these tests pin the HTTP framing it must get right on its own: lengths,
chunked bodies with extensions and trailers, close-delimited bodies, 1xx answers,
keep-alive reuse, a kept-alive connection the server closed, timeouts and bad input.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import httpx2
import pytest

from tenex_tui.engine.openai_transport import StreamingTransport

WAIT = 10.0


class _Recorder:
    """Wraps a StreamReader: every request head it reads is recorded."""

    def __init__(self, reader: asyncio.StreamReader, heads: list[bytes]) -> None:
        self._reader = reader
        self._heads = heads

    async def request(self) -> bytes:
        head = await self._reader.readuntil(b"\r\n\r\n")
        self._heads.append(head)
        length = 0
        for line in head.split(b"\r\n"):
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        return await self._reader.readexactly(length) if length else b""

    async def at_eof(self) -> bool:
        data = await self._reader.read(1)
        return data == b""


Handler = Callable[[_Recorder, asyncio.StreamWriter], Awaitable[None]]


@asynccontextmanager
async def raw_server(handler: Handler) -> AsyncIterator[tuple[str, list[bytes]]]:
    """A loopback server running `handler` per connection; yields its URL and the
    request heads it read (one per request, in order)."""
    heads: list[bytes] = []

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await handler(_Recorder(reader, heads), writer)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}", heads
    finally:
        server.close()


async def fetch(
    url: str, transport: StreamingTransport, *, method: str = "POST", **kw: object
) -> tuple[httpx2.Response, list[bytes]]:
    async with httpx2.AsyncClient(transport=transport, timeout=WAIT) as client:
        parts: list[bytes] = []
        async with client.stream(method, url + "/v1/x", **kw) as response:
            async for part in response.aiter_raw():
                parts.append(part)
        return response, parts


async def test_a_content_length_body_and_the_request_as_sent() -> None:
    async def handler(reader: _Recorder, writer: asyncio.StreamWriter) -> None:
        body = await reader.request()
        assert body == b'{"a":1}'
        writer.write(
            b"HTTP/1.1 201 Created\r\nContent-Length: 5\r\nX-A: b\r\n\r\nhello"
        )
        await writer.drain()

    async with raw_server(handler) as (url, heads):
        response, parts = await fetch(url, StreamingTransport(), json={"a": 1})
    assert response.status_code == 201
    assert response.reason_phrase == "Created"
    assert response.headers["x-a"] == "b"
    assert b"".join(parts) == b"hello"
    head = heads[0]
    assert head.startswith(b"POST /v1/x HTTP/1.1\r\n")
    assert b"\r\nHost: 127.0.0.1:" in head or b"\r\nhost: 127.0.0.1:" in head
    assert b"content-length: 7" in head.lower()


async def test_a_chunked_body_with_extensions_and_trailers_then_the_connection_is_reused() -> (
    None
):
    connections = 0

    async def handler(reader: _Recorder, writer: asyncio.StreamWriter) -> None:
        nonlocal connections
        connections += 1
        for index in range(2):
            await reader.request()
            writer.write(
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                b"3;ext=1\r\nabc\r\n"
            )
            await writer.drain()
            # The rest comes in pieces that split the size line and the data.
            for piece in (
                b"1",
                b"0\r\n0123456789",
                b"abcdef\r\n",
                b"0\r\nX-T: 1\r\n\r\n",
            ):
                writer.write(piece)
                await writer.drain()
                await asyncio.sleep(0.01)
            assert index < 2

    transport = StreamingTransport()
    async with (
        raw_server(handler) as (url, heads),
        httpx2.AsyncClient(transport=transport, timeout=WAIT) as client,
    ):
        for _ in range(2):
            response = await client.get(url + "/v1/x")
            assert response.content == b"abc0123456789abcdef"
    assert len(heads) == 2
    assert connections == 1  # the second request reused the first one's connection


async def test_one_read_of_many_chunks_is_yielded_as_one_piece() -> None:
    async def handler(reader: _Recorder, writer: asyncio.StreamWriter) -> None:
        await reader.request()
        chunks = b"".join(b"%x\r\n%s\r\n" % (2, b"%02d" % i) for i in range(50))
        writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + chunks)
        await writer.drain()
        await asyncio.sleep(0.05)
        writer.write(b"0\r\n\r\n")
        await writer.drain()

    async with raw_server(handler) as (url, _):
        _, parts = await fetch(url, StreamingTransport(), method="GET")
    assert b"".join(parts) == b"".join(b"%02d" % i for i in range(50))
    assert len(parts) <= 3


async def test_a_close_delimited_body_and_a_skipped_100_continue() -> None:
    async def handler(reader: _Recorder, writer: asyncio.StreamWriter) -> None:
        await reader.request()
        writer.write(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\n\r\nuntil ")
        await writer.drain()
        writer.write(b"the end")
        await writer.drain()
        writer.write_eof()

    async with raw_server(handler) as (url, _):
        response, parts = await fetch(url, StreamingTransport(), method="GET")
    assert response.status_code == 200
    assert b"".join(parts) == b"until the end"


async def test_a_kept_alive_connection_the_server_closed_is_replaced_once() -> None:
    connections = 0

    async def handler(reader: _Recorder, writer: asyncio.StreamWriter) -> None:
        nonlocal connections
        connections += 1
        await reader.request()
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        await writer.drain()
        if connections == 1:
            # Keep-alive was promised; the next request is read and dropped unanswered
            # (the server closed an idle connection just as the client reused it).
            await reader.request()

    transport = StreamingTransport()
    async with (
        raw_server(handler) as (url, heads),
        httpx2.AsyncClient(transport=transport, timeout=WAIT) as client,
    ):
        assert (await client.get(url + "/v1/x")).content == b"ok"
        assert (await client.get(url + "/v1/x")).content == b"ok"
    assert connections == 2
    assert len(heads) == 3  # the second request went twice: dropped, then answered


async def test_a_body_cut_short_is_a_protocol_error() -> None:
    async def handler(reader: _Recorder, writer: asyncio.StreamWriter) -> None:
        await reader.request()
        writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab")
        await writer.drain()

    async with raw_server(handler) as (url, _):
        with pytest.raises(httpx2.RemoteProtocolError, match="before the end"):
            await fetch(url, StreamingTransport(), method="GET")


async def test_no_answer_in_time_is_a_read_timeout() -> None:
    async def handler(reader: _Recorder, writer: asyncio.StreamWriter) -> None:
        await reader.request()
        await reader.at_eof()  # never answers; waits for the client to hang up

    async with (
        raw_server(handler) as (url, _),
        httpx2.AsyncClient(
            transport=StreamingTransport(), timeout=httpx2.Timeout(0.2)
        ) as client,
    ):
        with pytest.raises(httpx2.ReadTimeout):
            await client.get(url + "/v1/x")


@pytest.mark.parametrize(
    "head",
    [
        b"HTTP/1.1 abc OK\r\n\r\n",
        b"SPDY/3 200 OK\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nno colon here\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
    ],
)
async def test_malformed_responses_are_protocol_errors(head: bytes) -> None:
    async def handler(reader: _Recorder, writer: asyncio.StreamWriter) -> None:
        await reader.request()
        writer.write(head)
        await writer.drain()
        await reader.at_eof()

    async with raw_server(handler) as (url, _):
        with pytest.raises(httpx2.RemoteProtocolError):
            await asyncio.wait_for(fetch(url, StreamingTransport(), method="GET"), WAIT)


async def test_a_refused_connection_is_a_connect_error_naming_the_cause() -> None:
    server = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    server.close()
    await server.wait_closed()
    with pytest.raises(httpx2.ConnectError) as caught:
        await fetch(f"http://127.0.0.1:{port}", StreamingTransport(), method="GET")
    assert isinstance(caught.value.__cause__, ConnectionRefusedError)


async def test_closing_a_response_early_hangs_up_the_connection() -> None:
    hung_up = asyncio.Event()

    async def handler(reader: _Recorder, writer: asyncio.StreamWriter) -> None:
        await reader.request()
        writer.write(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhi\r\n"
        )
        await writer.drain()
        if await reader.at_eof():
            hung_up.set()

    async with raw_server(handler) as (url, _):
        async with (
            httpx2.AsyncClient(transport=StreamingTransport(), timeout=WAIT) as client,
            client.stream("GET", url + "/v1/x") as response,
        ):
            async for part in response.aiter_raw():
                assert part == b"hi"
                break
        await asyncio.wait_for(hung_up.wait(), WAIT)


def _self_signed(tmp: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and its key (PEM files)."""
    import datetime
    import ipaddress

    x509 = pytest.importorskip("cryptography.x509")
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp / "cert.pem", tmp / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


async def test_https_is_verified_and_streams_like_http(tmp_path: Path) -> None:
    cert, key = _self_signed(tmp_path)
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_ctx.load_cert_chain(cert, key)

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await _Recorder(reader, []).request()
            writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
            writer.write(b"6\r\nsecure\r\n0\r\n\r\n")
            await writer.drain()
        except (ConnectionError, ssl.SSLError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0, ssl=server_ctx)
    url = f"https://127.0.0.1:{server.sockets[0].getsockname()[1]}"
    try:
        trusting = ssl.create_default_context(cafile=str(cert))
        _, parts = await fetch(
            url, StreamingTransport(ssl_context=trusting), method="GET"
        )
        assert b"".join(parts) == b"secure"
        # The default context does not trust a self-signed certificate.
        with pytest.raises(httpx2.ConnectError):
            await fetch(url, StreamingTransport(), method="GET")
    finally:
        server.close()


def test_a_configured_proxy_keeps_the_sdk_stack(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from tenex_tui.engine.openai_transport import (
        PROXY_VARIABLES,
        proxies_configured,
        streaming_client,
    )

    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)
    client = streaming_client()
    assert client is not None
    assert isinstance(client._transport, StreamingTransport)
    monkeypatch.setenv("https_proxy", "http://127.0.0.1:3128")
    assert proxies_configured()
    assert streaming_client() is None  # the SDK then builds its own, proxy-aware client


@pytest.mark.parametrize("lean", [True, False])
async def test_the_adapter_streams_over_either_stack(lean: bool) -> None:
    from tenex_tui.engine.llm import ChatTurn, Finished, TextDelta
    from tenex_tui.engine.openai_adapter import OpenAICompatibleAdapter
    from tests.support.fake_llm import FakeLLMServer, Script

    async with FakeLLMServer() as fake:
        fake.enqueue(Script.reply("one two three"), Script.reply("again"))
        adapter = OpenAICompatibleAdapter(
            base_url=fake.base_url, api_key=None, lean_transport=lean
        )
        try:
            for expected in ("one two three", "again"):
                events = [
                    e async for e in adapter.stream([ChatTurn("user", "x")], model="m")
                ]
                text = "".join(e.text for e in events if isinstance(e, TextDelta))
                assert text == expected
                assert isinstance(events[-1], Finished)
            client = await adapter._ensure_client()
            uses_lean = isinstance(client._client._transport, StreamingTransport)
            assert uses_lean is lean
        finally:
            await adapter.aclose()
