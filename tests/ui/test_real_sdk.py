"""The app on the full real path: `LocalEngine` → `OpenAICompatibleAdapter` (the openai
SDK) → the loopback OpenAI-compatible server. Streaming, a cut connection, and Esc."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tenex_tui.engine.engine import LocalEngine
from tenex_tui.engine.openai_adapter import OpenAICompatibleAdapter
from tenex_tui.ui.widgets.composer import Composer
from tenex_tui.ui.widgets.message_view import MessageView
from tests.support.fake_llm import FakeLLMServer, Script
from tests.ui.harness import fixed_clock, make_app, ready, settle, shown, wait_until


@pytest.fixture
async def served(tmp_path: Path) -> AsyncIterator[tuple[LocalEngine, FakeLLMServer]]:
    """An engine whose model is the loopback server, through the real SDK."""
    async with FakeLLMServer() as server:
        adapter = OpenAICompatibleAdapter(
            base_url=server.base_url, api_key=None, default_model="loopback-1"
        )
        engine = await LocalEngine.open(
            tmp_path / "t.db", llm=adapter, clock=fixed_clock()
        )
        yield engine, server
        await engine.aclose()


def _finished(app: object) -> list[MessageView]:
    views = app.chat.pane.views  # type: ignore[attr-defined]
    return [view for view in views if isinstance(view, MessageView)]


async def _send(pilot: object, text: str) -> None:
    for char in text:
        await pilot.press("space" if char == " " else char)  # type: ignore[attr-defined]
    await pilot.press("enter")  # type: ignore[attr-defined]


async def test_a_reply_streams_through_the_real_sdk(
    served: tuple[LocalEngine, FakeLLMServer],
) -> None:
    engine, server = served
    thread = await engine.create_thread(title="real")
    server.enqueue(
        Script.reply("Hello from the loopback model, streamed word by word.")
    )
    async with make_app(engine).run_test() as pilot:
        app = await ready(pilot)
        app.chat.threads.select(thread.id)
        await pilot.press("enter")
        await shown(pilot, thread.id)
        await wait_until(pilot, lambda: isinstance(app.focused, Composer), "composer")
        await _send(pilot, "hi")
        await wait_until(pilot, lambda: len(_finished(app)) == 2, "the reply")
        await settle(pilot)
        reply = _finished(app)[-1].message
        assert reply.content == "Hello from the loopback model, streamed word by word."
        assert reply.model == "loopback-1" and reply.status == "complete"
        assert server.chat_requests[0].body["stream"] is True


async def test_a_cut_connection_ends_interrupted_and_r_retries(
    served: tuple[LocalEngine, FakeLLMServer],
) -> None:
    engine, server = served
    thread = await engine.create_thread(title="cut")
    server.enqueue(Script.reply("one two three four five six", drop_after=4))
    async with make_app(engine).run_test() as pilot:
        app = await ready(pilot)
        app.chat.threads.select(thread.id)
        await pilot.press("enter")
        await shown(pilot, thread.id)
        await _send(pilot, "go")
        await wait_until(
            pilot,
            lambda: (
                len(_finished(app)) == 2
                and _finished(app)[-1].message.status == "interrupted"
            ),
            "the interrupted reply",
        )
        assert (
            app.chat.composer.text == ""
        )  # the message was stored: nothing to restore
        server.enqueue(Script.reply("all good now"))
        app.chat.pane.focus()
        await pilot.pause()
        await pilot.press("R")
        await wait_until(
            pilot,
            lambda: _finished(app)[-1].message.content == "all good now",
            "the retried reply",
        )


async def test_escape_stops_a_stalled_reply_and_the_server_sees_the_client_leave(
    served: tuple[LocalEngine, FakeLLMServer],
) -> None:
    engine, server = served
    thread = await engine.create_thread(title="stall")
    server.enqueue(Script.reply("partial words then nothing more", stall_after=3))
    async with make_app(engine).run_test() as pilot:
        app = await ready(pilot)
        app.chat.threads.select(thread.id)
        await pilot.press("enter")
        await shown(pilot, thread.id)
        await _send(pilot, "go")
        await server.wait_for_chunks(3)
        await wait_until(
            pilot, lambda: app.chat.pane.reply_view is not None, "live view"
        )
        await pilot.press("escape")
        await wait_until(
            pilot,
            lambda: (
                bool(_finished(app)) and _finished(app)[-1].message.status == "stopped"
            ),
            "stopped",
        )
        await server.wait_for_disconnect()
        stored = (await engine.list_messages(thread.id)).items[-1]
        assert stored.status == "stopped"
        assert _finished(app)[-1].message.content == stored.content
