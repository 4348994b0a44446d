"""Which HTTP implementation uvicorn runs the API on (`run.http_protocol`).

httptools is a dependency because it measured cheaper per SSE event than h11; the
server must still start on h11 where it is missing.
"""

from __future__ import annotations

import importlib.util

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from tenex_tui.server import run


def _app() -> Starlette:
    async def hello(_request: Request) -> Response:
        return PlainTextResponse("hi")

    return Starlette(routes=[Route("/hello", hello)])


def test_httptools_is_used_when_it_is_installed() -> None:
    pytest.importorskip("httptools")
    config = run._config(_app(), tls_cert=None, tls_key=None, graceful_timeout=1)
    config.load()
    assert run.http_protocol() == "httptools"
    assert config.http_protocol_class.__name__ == "HttpToolsProtocol"


def test_without_httptools_the_server_falls_back_to_h11(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    real = importlib.util.find_spec

    def find_spec(name: str, *args: object) -> object:
        return None if name == "httptools" else real(name, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(importlib.util, "find_spec", find_spec)
    config = run._config(_app(), tls_cert=None, tls_key=None, graceful_timeout=1)
    config.load()
    assert config.http_protocol_class.__name__ == "H11Protocol"


async def test_the_server_answers_on_the_protocol_it_picked() -> None:
    server = await run.start_server(_app())
    try:
        assert server.server.config.http == run.http_protocol()
        async with httpx.AsyncClient(base_url=server.base_url, timeout=10) as client:
            answer = await client.get("/hello")
        assert answer.status_code == 200 and answer.text == "hi"
    finally:
        await server.stop()
