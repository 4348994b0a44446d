"""T70: SIGKILL a sync at random moments, then run it again: the mirror ends equal to
the server and the server holds every offline message exactly once, in order."""

from __future__ import annotations

import asyncio
import os
import random
import signal
import sys
from pathlib import Path

import pytest

from tenex_tui.remote.mirror import MirroredBackend
from tests.remote.fault_transport import FaultTransport
from tests.remote.sync_helpers import (
    all_messages,
    all_threads,
    client_engine,
    comparable,
    message_key,
    remote_for,
    service_for,
)
from tests.support.server_fixture import Stack

ROOT = Path(__file__).resolve().parents[2]
ITERATIONS = int(os.environ.get("TENEX_CRASH_ITERS", "20"))
SENDS = 30


async def run_child(
    db: Path, stack: Stack, kill_after: float | None
) -> tuple[int | None, str]:
    env = {**os.environ, "SYNC_TEST_KEY": stack.keys["a1"].reveal()}
    child = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.remote.sync_worker",
        str(db),
        stack.base_url,
        "SYNC_TEST_KEY",
        cwd=ROOT,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert child.stdout is not None
    async with asyncio.timeout(60):
        started = await child.stdout.readline()
    assert started == b"started\n", started
    try:
        async with asyncio.timeout(kill_after if kill_after is not None else 60):
            out, _err = await child.communicate()
            return child.returncode, out.decode()
    except TimeoutError:
        child.send_signal(signal.SIGKILL)
        await child.wait()
        return None, ""


@pytest.mark.crash
async def test_sigkill_during_sync_then_restart_leaves_no_duplicates(
    stack: Stack, tmp_path: Path
) -> None:
    a1 = stack.scoped("a1")
    # Something to pull (several pages of each feed) …
    for index in range(12):
        thread = await a1.create_thread(title=f"remote {index}")
        async for _ in a1.send_message(thread.id, f"remote question {index}"):
            pass
    target = await a1.create_thread(title="offline target")
    db = tmp_path / "client.db"
    # … and something to push: messages queued while offline.
    async with client_engine(db) as engine:
        transport = FaultTransport()
        service = service_for(remote_for(stack, transport=transport), engine)
        await service.sync()
        backend = await MirroredBackend.open(service, probe_interval=1e9)
        transport.offline = True
        for index in range(SENDS):
            async for _ in backend.send_message(target.id, f"offline {index:02d}"):
                pass
        # More remote changes while this machine was offline.
        for index in range(12, 20):
            await a1.create_thread(title=f"remote {index}")

    rng = random.Random(70)
    killed = 0
    for _ in range(ITERATIONS):
        code, _out = await run_child(db, stack, kill_after=rng.uniform(0.0, 0.6))
        if code is None:
            killed += 1
        elif code == 0:
            break
    code, out = await run_child(db, stack, kill_after=None)
    assert code == 0, out
    assert killed > 0  # the loop did kill runs part-way

    users = [m.content for m in await all_messages(a1, target.id) if m.role == "user"]
    assert users == [f"offline {i:02d}" for i in range(SENDS)]
    async with client_engine(db) as engine:
        service = service_for(remote_for(stack), engine)
        await service.sync()
        port = service.port
        assert port is not None
        remote_threads = sorted(map(comparable, await all_threads(a1)))
        assert (
            sorted(map(comparable, await all_threads(port.backend))) == remote_threads
        )
        for thread in await all_threads(a1):
            expected = [message_key(m) for m in await all_messages(a1, thread.id)]
            got = [message_key(m) for m in await all_messages(port.backend, thread.id)]
            assert got == expected
        assert (await service.status()).pending == 0
