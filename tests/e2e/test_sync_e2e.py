"""End to end: `tenex-tui sync` and `tenex-tui mcp --remote` against the project's own
server, and a day offline through the app's backend (the network cut by closing the
proxy in front of the server, then restored on the same port)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from mcp import Client, StdioServerParameters

from tenex_tui.cli.context import RemoteTarget
from tenex_tui.cli.wiring import mirrored_backend_factory
from tenex_tui.config import ModelChoice
from tenex_tui.paths import resolve_paths
from tenex_tui.remote.mirror import MirroredBackend
from tests.cli.conftest import Run
from tests.remote.sync_helpers import all_messages, all_threads
from tests.support.fault_proxy import FaultProxy
from tests.support.server_fixture import Stack, serve_stack
from tests.support.threaded_stack import ThreadedStack

pytestmark = pytest.mark.e2e


async def _seed(stack: Stack) -> str:
    a1 = stack.scoped("a1")
    thread = await a1.create_thread(title="Quarterly plan")
    async for _ in a1.send_message(thread.id, "what about the budget"):
        pass
    await a1.create_thread(title="Second")
    return thread.id


def test_sync_prints_counts_then_status_and_fails_clearly_offline(
    cli: Run, served: ThreadedStack, remote_env: dict[str, str], tenex_home: Path
) -> None:
    thread_id = served.call(_seed)
    first = cli("sync")
    assert first.code == 0, first.err
    mirror = f"ws_a@127.0.0.1:{served.stack.server.port}"
    assert first.out.splitlines() == [
        f"synced {mirror} (full): 2 threads and 2 messages updated; 0 threads and "
        "0 messages deleted; 0 offline actions sent",
        "0 offline actions pending",
    ]
    again = cli("sync", "--json")
    document = json.loads(again.out)
    assert document["report"]["threads"] == 0 and document["report"]["full"] is False
    assert document["status"]["workspace_id"] == mirror
    assert document["status"]["online"] is True and document["outbox"] == []
    assert document["error"] is None

    # The mirror is in this machine's database: readable with the server gone.
    served.stop()
    offline = cli("sync")
    assert offline.code == 1
    assert "sync failed" in offline.err and "cannot reach" in offline.err.lower()
    status = cli("sync", "--status", "--json")
    assert status.code == 0
    state = json.loads(status.out)["status"]
    assert state["workspace_id"] == mirror and state["last_sync_at"] is not None
    assert "cannot reach" in state["last_error"].lower()
    assert (tenex_home / "tenex.db").exists()
    assert thread_id.startswith("thr_")


def test_mcp_over_stdio_on_the_remote_workspace(
    served: ThreadedStack, tenex_home: Path
) -> None:
    import asyncio

    thread_id = served.call(_seed)

    async def run() -> None:
        params = StdioServerParameters(
            command=sys.executable,
            args=["-m", "tenex_tui", "--remote", "mcp"],
            env={
                "TENEX_HOME": str(tenex_home),
                "TENEX_API_BASE": served.base_url,
                "TENEX_API_KEY": served.key("a1"),
                "PATH": "/usr/bin:/bin",
            },
            cwd=str(Path(__file__).resolve().parents[2]),
        )
        async with Client(params) as client:
            page = await client.call_tool("list_chat_threads", {"user_id": "usr_a1"})
            assert page.structured_content is not None
            titles = [t["title"] for t in page.structured_content["items"]]
            assert titles == ["Second", "Quarterly plan"]
            sent = await client.call_tool(
                "send_chat_message", {"thread_id": thread_id, "content": "and now?"}
            )
            assert sent.structured_content is not None
            assert sent.structured_content["status"] == "complete"

    asyncio.run(run())
    messages = served.call(lambda s: s.scoped("a1").list_messages(thread_id))
    assert [m.content for m in messages.items][-2] == "and now?"


async def test_a_day_offline_through_the_apps_backend(
    tmp_path: Path, tenex_home: Path
) -> None:
    async with serve_stack(tmp_path / "server") as stack:
        thread_id = await _seed(stack)
        proxy = await FaultProxy(upstream=("127.0.0.1", stack.server.port)).start()
        port = proxy.port
        target = RemoteTarget(
            api_base=proxy.base_url, api_key=stack.keys["a1"], key_env="TENEX_API_KEY"
        )
        paths = resolve_paths(None, {"TENEX_HOME": str(tenex_home)})
        factory = mirrored_backend_factory(
            paths, ModelChoice(provider=None, model=None), target
        )
        backend = await factory()
        assert isinstance(backend, MirroredBackend)
        try:
            await backend.service.sync()
            assert (await backend.info()).online

            await proxy.close()  # the network is cut
            listed = await all_threads(backend)
            assert {t.title for t in listed} == {"Quarterly plan", "Second"}
            assert (await backend.search("budget")).total == 1
            await backend.update_thread(thread_id, title="Quarterly plan v2")
            events = [e async for e in backend.send_message(thread_id, "offline note")]
            assert events[-1].status == "queued"
            fresh = await backend.create_thread(title="Idea from the train")
            async for _ in backend.send_message(fresh.id, "remember this"):
                pass
            info = await backend.info()
            assert not info.online and "4 change(s)" in (info.model_problem or "")

            proxy = await FaultProxy(
                upstream=("127.0.0.1", stack.server.port), port=port
            ).start()  # back, on the same address
            report = await backend.service.sync()
            assert report.push.done == 4 and report.pending == 0
            assert (await backend.info()).online
        finally:
            await backend.aclose()
            await proxy.close()

        a1 = stack.scoped("a1")
        server = {t.title: t for t in await all_threads(a1)}
        assert set(server) == {"Quarterly plan v2", "Second", "Idea from the train"}
        notes = [
            m.content for m in await all_messages(a1, thread_id) if m.role == "user"
        ]
        assert notes == ["what about the budget", "offline note"]
        train = server["Idea from the train"].id
        assert next(m.content for m in await all_messages(a1, train)) == "remember this"


def test_sync_status_in_plain_text_before_and_after(
    cli: Run, served: ThreadedStack, remote_env: dict[str, str]
) -> None:
    before = cli("sync", "--status")
    assert before.code == 0
    assert before.out.splitlines() == [
        "never synced on this machine",
        "0 offline actions pending",
    ]
    assert cli("sync").code == 0
    after = cli("sync", "--status")
    first = after.out.splitlines()[0]
    assert first.startswith(f"ws_a@127.0.0.1:{served.stack.server.port}: last synced ")
    assert "never" not in first and "error" not in first


async def test_run_periodically_reports_each_outcome_and_stops(tmp_path: Path) -> None:
    import asyncio

    from tenex_tui.core.errors import TenexError
    from tenex_tui.remote.sync import SyncReport, run_periodically
    from tests.remote.fault_transport import FaultTransport
    from tests.remote.sync_helpers import client_engine, remote_for, service_for

    async with serve_stack(tmp_path / "server") as stack:
        await _seed(stack)
        async with client_engine(tmp_path / "client.db") as engine:
            transport = FaultTransport()
            service = service_for(remote_for(stack, transport=transport), engine)
            outcomes: list[SyncReport | TenexError] = []

            async def record(outcome: SyncReport | TenexError) -> None:
                outcomes.append(outcome)
                transport.offline = len(outcomes) == 1  # the second run fails

            stop = asyncio.Event()
            await run_periodically(
                service, 0.01, stop=stop, on_result=record, max_runs=3
            )
            kinds = [type(o).__name__ for o in outcomes]
            assert kinds == ["SyncReport", "RemoteUnavailable", "SyncReport"]


def test_the_app_still_gets_the_remote_when_the_local_database_is_unusable(
    served: ThreadedStack, tenex_home: Path
) -> None:
    import asyncio

    from tenex_tui.core.secrets import Secret
    from tenex_tui.remote.client import RemoteBackend

    tenex_home.mkdir(parents=True, exist_ok=True)
    (tenex_home / "tenex.db").write_bytes(b"this is not a database" * 100)
    target = RemoteTarget(
        api_base=served.base_url,
        api_key=Secret(served.key("a1")),
        key_env="TENEX_API_KEY",
    )
    paths = resolve_paths(None, {"TENEX_HOME": str(tenex_home)})
    factory = mirrored_backend_factory(
        paths, ModelChoice(provider=None, model=None), target
    )

    async def run() -> tuple[type, bool]:
        backend = await factory()
        try:
            info = await backend.info()
            return type(backend), info.online
        finally:
            await backend.aclose()

    kind, online = asyncio.run(run())
    assert (kind, online) == (RemoteBackend, True)
