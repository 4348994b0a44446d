"""Sync figures (issue 5): a first sync of 10,000 threads / 100,000 messages over
loopback, and an incremental sync when nothing changed.

Two processes: the real `tenex-tui serve` over a copy of the synthetic database
(`bigdb`, 10,000 threads and 100,000 messages in its default workspace, after `tenex-tui
keys create`), and this process as the syncing client: `SyncService` with a
`RemoteBackend` and a `LocalEngine` on a fresh file, exactly what `tenex-tui sync` runs.

- first sync: wall time from nothing to a complete mirror (every thread and message
  stored and indexed locally), checked by counting the mirror's rows;
- nothing changed: one whole `sync()` (who-am-I, the outbox, one empty page of each
  feed), repeated, median (p95 in the note);
- a small change (report): ten renames and ten new messages on the server.
"""

from __future__ import annotations

import asyncio
import json
import random
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator
from pathlib import Path

from benchmarks.common import (
    REPO_ROOT,
    Bench,
    Context,
    Figure,
    big_db,
    child_env,
    median,
    ms,
    percentile,
    proc_cpu_seconds,
    proc_memory_mb,
)

FULL_SCALE = (10_000, 100_000)
QUICK_SCALE = (1_000, 10_000)


def _start_server(home: Path) -> tuple[subprocess.Popen[str], int, str]:
    """`tenex-tui keys create`, then `tenex-tui serve --port 0`; its port and key."""
    env = child_env(TENEX_HOME=str(home))
    created = subprocess.run(
        [sys.executable, "-m", "tenex_tui", "keys", "create", "--json"],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    key = str(json.loads(created.stdout)["key"])
    server = subprocess.Popen(
        [sys.executable, "-m", "tenex_tui", "serve", "--port", "0"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        cwd=REPO_ROOT,
        env=env,
        text=True,
    )
    assert server.stderr is not None
    seen = []
    for line in server.stderr:
        seen.append(line)
        found = re.search(r"serving http://127\.0\.0\.1:(\d+)/", line)
        if found:
            # The access log keeps writing: drain it so the server never blocks on it.
            stream = server.stderr
            threading.Thread(target=stream.read, daemon=True).start()
            return server, int(found.group(1)), key
    server.wait(10)
    raise RuntimeError(f"tenex-tui serve did not start: {''.join(seen)[-500:]}")


def _stop_server(server: subprocess.Popen[str]) -> None:
    server.send_signal(signal.SIGINT)
    try:
        server.wait(30)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait(5)


def _mirror_counts(path: Path, workspace: str) -> tuple[int, int]:
    conn = sqlite3.connect(path)
    try:
        threads = conn.execute(
            "SELECT count(*) FROM threads WHERE workspace_id = ?", (workspace,)
        ).fetchone()[0]
        messages = conn.execute(
            "SELECT count(*) FROM messages WHERE workspace_id = ?", (workspace,)
        ).fetchone()[0]
        return int(threads), int(messages)
    finally:
        conn.close()


def _change_some(home: Path, count: int) -> None:
    """Rename `count` threads and edit their last user message on the server, through
    its own store (a second writer on the file, as another client would be)."""
    from tenex_tui.engine.engine import LocalEngine

    async def change() -> None:
        engine = await LocalEngine.open(home / "tenex.db")
        try:
            page = await engine.list_threads(limit=count)
            for index, thread in enumerate(page.items):
                await engine.update_thread(thread.id, title=f"renamed {index}")
                # Editing the last user message changes it and drops the reply after
                # it (no model is needed for that).
                recent = await engine.list_messages(thread.id, order="desc", limit=5)
                last_user = next((m for m in recent.items if m.role == "user"), None)
                if last_user is not None:
                    await engine.edit_message(thread.id, last_user.id, "edited again")
        finally:
            await engine.aclose()

    asyncio.run(change())


async def sync_figures(ctx: Context) -> AsyncIterator[Figure]:
    from tenex_tui.core.secrets import Secret
    from tenex_tui.engine.engine import LocalEngine
    from tenex_tui.remote.client import RemoteBackend
    from tenex_tui.remote.sync import SyncPolicy, SyncService

    threads, messages = QUICK_SCALE if ctx.quick else FULL_SCALE
    db = await asyncio.to_thread(big_db, threads, messages, log=ctx.log)
    home = ctx.scratch("sync-server")
    shutil.copy2(db.home / "tenex.db", home / "tenex.db")
    server, port, key = await asyncio.to_thread(_start_server, home)
    client_home = ctx.scratch("sync-client")
    label = f"{threads:,} threads / {messages:,} messages"
    try:
        engine = await LocalEngine.open(client_home / "tenex.db")
        remote = RemoteBackend(f"http://127.0.0.1:{port}", Secret(key))
        try:
            service = SyncService(
                remote, engine, policy=SyncPolicy(page_limit=1000), rng=random.Random(1)
            )
            server_cpu0 = proc_cpu_seconds(server.pid)
            client_cpu0 = time.process_time()
            started = time.perf_counter()
            report = await service.sync()
            first = time.perf_counter() - started
            server_cpu = proc_cpu_seconds(server.pid) - server_cpu0
            client_cpu = time.process_time() - client_cpu0
            port_ = service.port
            assert port_ is not None
            got = await asyncio.to_thread(
                _mirror_counts, client_home / "tenex.db", port_.workspace_id
            )
            complete = got == (threads, messages)
            rss, _peak = proc_memory_mb(server.pid)
            yield Figure(
                f"sync: first sync, {label}",
                first,
                "s",
                60.0,
                stat="single",
                samples=[first],
                note=f"{report.pages} pages of ≤ 1000; mirror holds {got[0]:,} threads / "
                f"{got[1]:,} messages ({'complete' if complete else 'INCOMPLETE'}); "
                f"server CPU {server_cpu:.1f} s (RSS {rss:.0f} MB), client CPU "
                f"{client_cpu:.1f} s",
                error=None if complete else f"mirror incomplete: {got}",
            )

            samples = []
            for _ in range(max(5, ctx.runs * 2)):
                started = time.perf_counter()
                idle = await service.sync()
                samples.append(ms(time.perf_counter() - started))
                assert idle.threads == 0 and idle.messages == 0
            yield Figure(
                f"sync: incremental, nothing changed ({label})",
                median(samples),
                "ms",
                200.0,
                samples=samples,
                note=f"p95 {percentile(samples, 95):.1f} ms over {len(samples)} runs: "
                "GET /me, the outbox, one empty page of each feed",
            )

            await asyncio.to_thread(_change_some, home, 10)
            started = time.perf_counter()
            changed = await service.sync()
            small = ms(time.perf_counter() - started)
            yield Figure(
                "sync: incremental, 10 threads and their messages changed",
                small,
                "ms",
                kind="report",
                stat="single",
                samples=[small],
                note=f"{changed.threads} threads, {changed.messages} messages updated, "
                f"{changed.messages_deleted} deleted",
            )
        finally:
            await remote.aclose()
            await engine.aclose()
    finally:
        await asyncio.to_thread(_stop_server, server)


BENCHMARKS = [
    Bench("sync.mirror", sync_figures, "first and incremental sync over loopback"),
]
