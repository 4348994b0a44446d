"""A `tenex-tui sync` run in a child process, for the SIGKILL tests (T70).

    python -m tests.remote.sync_worker DB BASE_URL KEY_ENV

It opens the local engine on DB and syncs with the server at BASE_URL (the key is read
from the environment variable KEY_ENV, never from argv), with small pages so that a
kill lands between pages; it prints `started` once the engine is open (the parent's kill
timer starts there) and `done <pushed> <pending>` when the run finished.
"""

from __future__ import annotations

import asyncio
import os
import random
import sys
from pathlib import Path

from tenex_tui.core.secrets import Secret
from tenex_tui.engine.engine import LocalEngine
from tenex_tui.remote.client import RemoteBackend
from tenex_tui.remote.http import RetryPolicy
from tenex_tui.remote.outbox import OutboxPolicy
from tenex_tui.remote.sync import SyncPolicy, SyncService


async def main(db: Path, base_url: str, key_env: str) -> int:
    engine = await LocalEngine.open(db, checkpoint_interval=0.05)
    remote = RemoteBackend(
        base_url,
        Secret(os.environ[key_env]),
        retry=RetryPolicy(max_retries=1, base_delay=0.01, max_delay=0.02, deadline=20),
        rng=random.Random(5),
    )
    try:
        service = SyncService(
            remote,
            engine,
            policy=SyncPolicy(page_limit=7, outbox=OutboxPolicy(spacing=0.02)),
        )
        sys.stdout.write("started\n")
        sys.stdout.flush()
        report = await service.sync()
        sys.stdout.write(f"done {report.push.done} {report.pending}\n")
        sys.stdout.flush()
        return 0 if report.pending == 0 else 1
    finally:
        await remote.aclose()
        await engine.aclose()


if __name__ == "__main__":
    sys.exit(asyncio.run(main(Path(sys.argv[1]), sys.argv[2], sys.argv[3])))
