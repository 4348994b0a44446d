"""The loopback OpenAI-compatible server of the tests, run as a separate process.

`python -m benchmarks.llm_server` starts `tests.support.fake_llm.FakeLLMServer` on
127.0.0.1, prints `PORT <n>`, then one JSON line per finished chat request with the
moments that matter (CLOCK_MONOTONIC, which every process on the machine shares):

    {"index": 3, "t_request": …, "t_first_content": …, "t_last_byte": …, "chunks": 4003}

It runs in its own process so that its CPU never counts against the engine or the app
being measured. What a request gets is chosen by the last user message:

- `bench:full:N`: N content chunks as fast as the socket takes them (64 per write, the
  fixture's full-speed mode); the first chunk is `FIRSTTOKEN `, the last ` LASTTOKEN`.
- `bench:paced:N:MS`: the same N chunks, one every MS milliseconds.
- anything else: the fixture's echo reply.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import subprocess
import sys
import threading
import time
from collections.abc import Mapping
from typing import Any

from tests.support.fake_llm import FakeLLMServer, RecordedRequest
from tests.support.fake_llm_http import Connection
from tests.support.fake_llm_scripts import Script, echo_script

FIRST_TOKEN = "FIRSTTOKEN"
LAST_TOKEN = "LASTTOKEN"
_WORDS = [
    "the",
    "lead",
    "asked",
    "about",
    "pricing",
    "for",
    "the",
    "next",
    "quarter",
    "and",
    "our",
    "brand",
    "team",
    "drafted",
    "a",
    "reply",
    "with",
    "the",
    "campaign",
    "budget",
    "so",
    "we",
    "can",
    "follow",
    "up",
    "after",
    "the",
    "demo",
    "call",
]


def reply_chunks(n: int) -> list[str]:
    """N word-sized chunks, paragraphs every 60 words, with the two markers."""
    chunks = [f"{FIRST_TOKEN} "]
    for i in range(1, n - 1):
        word = _WORDS[i % len(_WORDS)]
        chunks.append(word + ("\n\n" if i % 60 == 0 else " "))
    chunks.append(f" {LAST_TOKEN}")
    return chunks[:n]


def _last_user_text(body: Mapping[str, Any]) -> str:
    for message in reversed(list(body.get("messages") or [])):
        if isinstance(message, Mapping) and message.get("role") == "user":
            content = message.get("content")
            return content if isinstance(content, str) else ""
    return ""


def bench_script(body: Mapping[str, Any]) -> Script:
    """The script a request asks for (see the module docstring)."""
    text = _last_user_text(body).strip()
    parts = text.split(":")
    if len(parts) >= 3 and parts[0] == "bench":
        n = max(2, int(parts[2]))
        if parts[1] == "full":
            return Script.text(*reply_chunks(n), batch=64)
        if parts[1] == "paced" and len(parts) >= 4:
            return Script.text(*reply_chunks(n), chunk_delay=int(parts[3]) / 1000)
    return echo_script(body)


class TimedServer(FakeLLMServer):
    """The fixture server, noting when each chat request arrived, began and ended."""

    def __init__(self) -> None:
        super().__init__(models=("bench-model",), default_script=bench_script)
        self._live: dict[int, dict[str, Any]] = {}

    async def _respond(self, conn: Connection, record: RecordedRequest) -> bool:
        if not record.is_chat:
            return await super()._respond(conn, record)
        times: dict[str, Any] = {"index": record.index, "t_request": time.monotonic()}
        self._live[record.index] = times
        try:
            return await super()._respond(conn, record)
        finally:
            times["t_last_byte"] = time.monotonic()
            times["chunks"] = record.chunks_sent
            times["completed"] = record.completed
            self._live.pop(record.index, None)
            sys.stdout.write(json.dumps(times) + "\n")
            sys.stdout.flush()

    def _changed(self) -> None:
        super()._changed()
        if not self._live:
            return
        now = time.monotonic()
        for index, times in self._live.items():
            # Chunk 1 is the role chunk; chunk 2 carries the first content.
            if "t_first_content" not in times and self._chunks(index) >= 2:
                times["t_first_content"] = now

    def _chunks(self, index: int) -> int:
        with self._lock:
            return self._requests[index].chunks_sent


class LLMProcess:
    """The parent's handle on a `python -m benchmarks.llm_server` child."""

    def __init__(self) -> None:
        from benchmarks.common import REPO_ROOT, child_env

        self.proc = subprocess.Popen(
            [sys.executable, "-m", "benchmarks.llm_server"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            cwd=REPO_ROOT,
            env=child_env(),
            text=True,
        )
        assert self.proc.stdout is not None
        first = self.proc.stdout.readline().split()
        if len(first) != 2 or first[0] != "PORT":
            self.close()
            raise RuntimeError(f"the LLM server did not start: {first!r}")
        self.port = int(first[1])
        self.records: list[dict[str, Any]] = []
        self._cond = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    @property
    def base_url(self) -> str:
        """What `OPENAI_BASE_URL` should be."""
        return f"http://127.0.0.1:{self.port}/v1"

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            with self._cond:
                self.records.append(json.loads(line))
                self._cond.notify_all()

    def wait_records(self, count: int, timeout: float) -> list[dict[str, Any]]:
        """Block until `count` chat requests have finished (bounded)."""
        with self._cond:
            if not self._cond.wait_for(lambda: len(self.records) >= count, timeout):
                raise TimeoutError(
                    f"the LLM server finished {len(self.records)} of {count}"
                )
            return list(self.records)

    def close(self) -> None:
        """Stop the child (closing its stdin ends it), bounded."""
        with contextlib.suppress(OSError):
            if self.proc.stdin is not None:
                self.proc.stdin.close()
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)

    def __enter__(self) -> LLMProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


async def main() -> None:
    server = TimedServer()
    await server.start()
    sys.stdout.write(f"PORT {server.port}\n")
    sys.stdout.flush()
    # Run until the parent closes our stdin (or kills us).
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, sys.stdin.read)
    await server.stop()


if __name__ == "__main__":
    asyncio.run(main())
