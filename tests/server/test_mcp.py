"""The MCP tools: every tool through an in-process `mcp.Client`, the `/mcp` endpoint of
`serve` over streamable HTTP with the API's bearer keys, and `tenex-tui mcp` as a stdio
child process driven by the SDK's stdio client."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import httpx2
import pytest
from mcp import Client, StdioServerParameters
from mcp.client.streamable_http import streamable_http_client

from tenex_tui.engine.clock import FixedClock
from tenex_tui.engine.engine import LocalEngine
from tenex_tui.server.mcp import build_mcp_server, fixed_resolver
from tests.support.server_fixture import Stack, StepLLM

TOOLS = {
    "list_chat_threads",
    "create_chat_thread",
    "get_chat_thread",
    "list_chat_messages",
    "send_chat_message",
    "rename_chat_thread",
    "pin_chat_thread",
    "archive_chat_thread",
    "delete_chat_thread",
    "search_chat_messages",
}


async def call(client: Client, name: str, **arguments: Any) -> dict[str, Any]:
    result = await client.call_tool(name, arguments)
    assert not result.is_error, result.content
    assert isinstance(result.structured_content, dict)
    return result.structured_content


async def error_of(client: Client, name: str, **arguments: Any) -> str:
    result = await client.call_tool(name, arguments)
    assert result.is_error
    text = result.content[0]
    assert text.type == "text"
    return str(text.text)


async def exercise_every_tool(client: Client, user_id: str) -> None:
    """The same script for every transport: each tool once, checking what it returns."""
    listed = await client.list_tools()
    tools = {tool.name: tool for tool in listed.tools}
    assert set(tools) == TOOLS
    for tool in tools.values():
        assert tool.description and "Returns:" in tool.description
    assert tools["list_chat_threads"].input_schema["required"] == ["user_id"]
    assert tools["create_chat_thread"].input_schema["required"] == ["system_prompt"]

    created = await call(
        client, "create_chat_thread", system_prompt="Answer in haiku", title="Poems"
    )
    thread_id = created["id"]
    assert (created["title"], created["system_prompt"]) == ("Poems", "Answer in haiku")
    assert created["user_id"] == user_id

    page = await call(client, "list_chat_threads", user_id=user_id)
    assert [t["id"] for t in page["items"]] == [thread_id] and page["total"] == 1
    assert "not_found" in await error_of(
        client, "list_chat_threads", user_id="usr_else"
    )

    fetched = await call(client, "get_chat_thread", thread_id=thread_id)
    assert fetched["id"] == thread_id

    sent = await call(
        client, "send_chat_message", thread_id=thread_id, content="write about rain"
    )
    assert sent["reply"] == "w0 w1 w2 w3 w4 " and sent["status"] == "complete"
    assert sent["message_id"].startswith("msg_") and sent["error"] is None

    history = await call(client, "list_chat_messages", thread_id=thread_id)
    assert [m["id"] for m in history["items"]][-1] == sent["message_id"]
    assert history["items"][0]["id"] == sent["user_message_id"]

    found = await call(client, "search_chat_messages", query="rain")
    assert [h["message_id"] for h in found["items"]] == [sent["user_message_id"]]

    renamed = await call(
        client, "rename_chat_thread", thread_id=thread_id, title="Rain"
    )
    assert renamed["title"] == "Rain"
    pinned = await call(client, "pin_chat_thread", thread_id=thread_id)
    assert pinned["pinned"] is True
    unpinned = await call(client, "pin_chat_thread", thread_id=thread_id, pinned=False)
    assert unpinned["pinned"] is False
    archived = await call(client, "archive_chat_thread", thread_id=thread_id)
    assert archived["archived"] is True
    live = await call(client, "list_chat_threads", user_id=user_id)
    assert live["items"] == []
    archive = await call(client, "list_chat_threads", user_id=user_id, archived=True)
    assert [t["id"] for t in archive["items"]] == [thread_id]

    assert await call(client, "delete_chat_thread", thread_id=thread_id) == {
        "deleted": thread_id
    }
    assert "not_found" in await error_of(client, "get_chat_thread", thread_id=thread_id)
    blank = await error_of(client, "rename_chat_thread", thread_id="thr_x", title=" ")
    assert "invalid_request" in blank


@asynccontextmanager
async def local_engine(tmp_path: Path) -> AsyncIterator[LocalEngine]:
    engine = await LocalEngine.open(
        tmp_path / "mcp.db", llm=StepLLM(), clock=FixedClock()
    )
    try:
        yield engine
    finally:
        await engine.aclose()


async def test_every_tool_in_process(tmp_path: Path) -> None:
    async with local_engine(tmp_path) as engine:
        server = build_mcp_server(fixed_resolver(engine, lambda: "usr_local"))
        async with Client(server) as client:
            await exercise_every_tool(client, "usr_local")


async def test_tool_errors_carry_the_api_code_and_no_secret(tmp_path: Path) -> None:
    async with local_engine(tmp_path) as engine:
        server = build_mcp_server(fixed_resolver(engine, lambda: "usr_local"))
        async with Client(server) as client:
            text = await error_of(client, "list_chat_messages", thread_id="thr_missing")
            assert "not_found" in text
            text = await error_of(client, "search_chat_messages", query="   ")
            assert "invalid_request" in text


def bearer_client(stack: Stack, name: str) -> httpx2.AsyncClient:
    return httpx2.AsyncClient(
        headers={"Authorization": f"Bearer {stack.keys[name].reveal()}"}, timeout=30
    )


async def test_every_tool_over_streamable_http_with_a_bearer_key(stack: Stack) -> None:
    url = f"{stack.base_url}/mcp"
    async with (
        bearer_client(stack, "a1") as http,
        Client(streamable_http_client(url, http_client=http)) as client,
    ):
        await exercise_every_tool(client, "usr_a1")


async def test_http_tools_act_for_the_key_and_nobody_else(stack: Stack) -> None:
    url = f"{stack.base_url}/mcp"
    mine = await stack.scoped("a1").create_thread(title="a1 only")
    async with (
        bearer_client(stack, "b1") as http,
        Client(streamable_http_client(url, http_client=http)) as client,
    ):
        page = await call(client, "list_chat_threads", user_id="usr_b1")
        assert page["items"] == []
        text = await error_of(client, "get_chat_thread", thread_id=mine.id)
        assert "not_found" in text
        text = await error_of(client, "list_chat_threads", user_id="usr_a1")
        assert "not_found" in text
        created = await call(client, "create_chat_thread", system_prompt="x")
        assert (created["workspace_id"], created["user_id"]) == ("ws_b", "usr_b1")


@pytest.mark.parametrize(
    "authorization", [None, "Bearer tnx_abcdefgh_" + "z" * 40, "Basic dXNlcjpwYXNz"]
)
async def test_mcp_without_a_valid_key_is_a_uniform_401(
    stack: Stack, authorization: str | None
) -> None:
    headers = {"Accept": "application/json, text/event-stream"}
    if authorization is not None:
        headers["Authorization"] = authorization
    body = {"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}}
    async with httpx.AsyncClient(base_url=stack.base_url, timeout=10) as client:
        answer = await client.post("/mcp", json=body, headers=headers)
    assert answer.status_code == 401
    assert answer.json()["error"]["code"] == "unauthorized"
    assert answer.headers["www-authenticate"].startswith("Bearer")


async def test_stdio_server_in_a_child_process(tmp_path: Path) -> None:
    home = tmp_path / "home"
    # The child is `tenex-tui mcp` with a model served by a tiny scripted provider:
    # the child's own engine runs the real OpenAI-compatible adapter against it.
    from tests.support.fake_llm import FakeLLMServer, Script

    with FakeLLMServer() as llm:
        llm.enqueue(Script.reply("w0 w1 w2 w3 w4 "))
        params = StdioServerParameters(
            command=sys.executable,
            args=["-m", "tenex_tui", "mcp"],
            env={
                "TENEX_HOME": str(home),
                "OPENAI_BASE_URL": llm.base_url,
                "TENEX_MODEL": "fake-model",
                "PATH": "/usr/bin:/bin",
            },
            cwd=str(Path(__file__).resolve().parents[2]),
        )
        async with Client(params) as client:
            await exercise_every_tool(client, "usr_local")
    # Nothing but protocol went to stdout (the client would have failed to parse it),
    # and the child's database holds what the tools did: the thread came and went,
    # and the reply was generated by the provider exactly once.
    assert len(llm.chat_requests) == 1
    engine = await LocalEngine.open(home / "tenex.db")
    try:
        assert (await engine.list_threads(archived=None)).items == []
    finally:
        await engine.aclose()
