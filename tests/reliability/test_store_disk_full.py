"""Disk full while writing (T6): a clear error, nothing half-written, a streaming reply
kept in memory and saved exactly once when space returns."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path

from tests.support.disk_full_worker import BIG_DELTA

ROOT = Path(__file__).resolve().parents[2]


def test_disk_full_is_reported_and_the_database_stays_intact(tmp_path: Path) -> None:
    db = tmp_path / "full.db"
    done = subprocess.run(
        [sys.executable, "-m", "tests.support.disk_full_worker", str(db)],
        cwd=ROOT,
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr.decode()
    steps = {s["step"]: s for s in map(json.loads, done.stdout.decode().splitlines())}
    assert steps["baseline"]["status"] == "complete"
    assert steps["big_send"]["error"] == "DiskFull"
    assert "disk full" in steps["big_send"]["message"]
    assert steps["stream_while_full"] == {
        "step": "stream_while_full",
        "saved": False,
        "error": "DiskFull",
        "message_id": steps["stream_while_full"]["message_id"],
    }
    expected = BIG_DELTA * 3 + "end"
    assert steps["final"] == {
        "step": "final",
        "status": "complete",
        "length": len(expected),
    }

    conn = sqlite3.connect(db)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        contents = [
            r[0] for r in conn.execute("SELECT content FROM messages ORDER BY seq")
        ]
        assert contents == ["baseline", "baseline reply", "small question", expected]
        message_id = steps["stream_while_full"]["message_id"]
        deltas = conn.execute(
            "SELECT seq, delta FROM events WHERE message_id = ? AND type = 'message.delta' "
            "ORDER BY seq",
            (message_id,),
        ).fetchall()
        # Saved exactly once: each delta stored once, in order.
        assert "".join(d for _, d in deltas) == expected
        assert [s for s, _ in deltas] == list(range(2, 6))
    finally:
        conn.close()
