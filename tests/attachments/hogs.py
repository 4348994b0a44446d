"""Misbehaving parser children for the worker tests: `python -m tests.attachments.hogs
KIND --config JSON`, run by `run_parser(module=...)` exactly like the real worker.

- `sleep`: never answers (bounded at 30 s in case the parent's kill failed).
- `allocate`: applies the real worker's limits, then asks for 1 GiB at once.
- `garbage`: answers something that is not JSON.
- `crash`: exits with status 3 without answering.
- `payload`: answers with the SHA-256 of what it read on stdin and its argv.
- `env`: answers with the names of its environment variables.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import time

from tenex_tui.attachments.worker import apply_limits


def main() -> int:
    kind = sys.argv[1]
    config = json.loads(sys.argv[3])
    if kind == "sleep":
        time.sleep(30)
        return 0
    if kind == "allocate":
        apply_limits(config["memory_bytes"], config["cpu_seconds"])
        try:
            hog = bytearray(1 << 30)
        except MemoryError:
            sys.stdout.write(json.dumps({"ok": False, "code": "memory"}))
            return 0
        sys.stdout.write(
            json.dumps({"ok": True, "text": str(len(hog)), "total_chars": 1})
        )
        return 0
    if kind == "garbage":
        sys.stdout.write("this is not json")
        return 0
    if kind == "crash":
        sys.stdout.flush()
        os._exit(3)
    if kind == "payload":
        data = sys.stdin.buffer.read()
        reply = {
            "ok": True,
            "text": hashlib.sha256(data).hexdigest(),
            "total_chars": 64,
            "warnings": [" ".join(sys.argv[1:])],
        }
        sys.stdout.write(json.dumps(reply))
        return 0
    if kind == "env":
        reply = {"ok": True, "text": json.dumps(sorted(os.environ)), "total_chars": 1}
        sys.stdout.write(json.dumps(reply))
        return 0
    return 2


if __name__ == "__main__":
    sys.exit(main())
