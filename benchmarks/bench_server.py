"""Server figure (issue 5, DESIGN.md §8): many concurrent SSE streams on loopback.

Three processes: the paced model (`stamp_llm`, 10 chunks/s per stream, each chunk
stamped with its send time), the real `tenex-tui serve` (after `tenex-tui keys
create`; its access log on, as in production), and this process as the clients — a lean HTTP/1.1 + SSE reader on
raw asyncio sockets, so the clients cost as little of the two cores as possible.

Each client sends one message and reads the reply's events to the terminal one. The
delay of a delta is its receipt time minus the stamp the model put in it: the whole path
model → adapter → engine → SSE → client, an upper bound of "the engine's event to the
client". Every stream must see chunks 0…N-1 exactly once, in order.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from benchmarks.common import (
    REPO_ROOT,
    Bench,
    Context,
    Figure,
    child_env,
    median,
    percentile,
    proc_cpu_seconds,
    proc_memory_mb,
)

RATE = 10
"""Chunks per second per stream."""


@dataclass
class StreamResult:
    indices: list[int] = field(default_factory=list)
    delays: list[float] = field(default_factory=list)
    """Receipt − the model's send time, seconds."""
    lags: list[float] = field(default_factory=list)
    """Receipt − the model's schedule (includes backpressure), seconds."""
    status: str = ""
    error: str | None = None


def _spawn(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        cwd=REPO_ROOT,
        env=child_env(),
        text=True,
    )


def _stop(proc: subprocess.Popen[str]) -> None:
    if proc.stdin is not None:
        proc.stdin.close()
    try:
        proc.wait(15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)


async def _read_body(
    reader: asyncio.StreamReader, chunked: bool
) -> AsyncIterator[bytes]:
    if not chunked:
        while data := await reader.read(65536):
            yield data
        return
    while True:
        size_line = await reader.readuntil(b"\r\n")
        size = int(size_line.split(b";")[0], 16)
        if size == 0:
            return
        data = await reader.readexactly(size + 2)
        yield data[:-2]


async def one_stream(port: int, key: str, thread_id: str) -> StreamResult:
    """Send a message and read its SSE reply to the end."""
    result = StreamResult()
    reader, writer = await asyncio.open_connection("127.0.0.1", port, limit=1 << 20)
    try:
        body = json.dumps({"content": "stream please"}).encode()
        writer.write(
            (
                f"POST /api/v1/chat/threads/{thread_id}/messages HTTP/1.1\r\n"
                f"Host: 127.0.0.1:{port}\r\nAuthorization: Bearer {key}\r\n"
                "Accept: text/event-stream\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
            ).encode()
            + body
        )
        await writer.drain()
        head = await reader.readuntil(b"\r\n\r\n")
        status = head.split(b" ", 2)[1]
        if status != b"200":
            rest = await reader.read(2000)
            result.error = f"HTTP {status.decode()}: {rest[:200]!r}"
            return result
        chunked = b"transfer-encoding: chunked" in head.lower()
        buffer = b""
        async for data in _read_body(reader, chunked):
            now = time.monotonic()
            buffer += data
            while b"\n\n" in buffer:
                block, buffer = buffer.split(b"\n\n", 1)
                payload = [
                    line[5:].lstrip()
                    for line in block.split(b"\n")
                    if line.startswith(b"data:")
                ]
                if not payload:
                    continue
                event = json.loads(b"\n".join(payload))
                kind = event.get("type")
                if kind == "message.delta":
                    for token in str(event.get("delta") or "").split():
                        index, sent, due = token.split(":")
                        result.indices.append(int(index))
                        result.delays.append(now - float(sent))
                        result.lags.append(now - float(due))
                elif kind in ("message.completed", "message.failed", "message.stopped"):
                    result.status = str(event.get("status") or kind)
                    return result
        result.error = "the stream ended without a terminal event"
    except (OSError, asyncio.IncompleteReadError, ValueError) as exc:
        result.error = f"{type(exc).__name__}: {exc}"
    finally:
        writer.close()
    return result


def _start_server(ctx: Context, llm_url: str) -> tuple[subprocess.Popen[str], int, str]:
    """`tenex-tui keys create`, then `tenex-tui serve --port 0`; its port and key."""
    home = ctx.scratch("sse")
    env = child_env(
        TENEX_HOME=str(home),
        OPENAI_BASE_URL=llm_url,
        OPENAI_API_KEY="sk-bench-not-secret",
        TENEX_MODEL="stamp-model",
    )
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
    # BENCH_PROFILE_SERVER=<file> runs the server under pyinstrument (its event loop).
    profile = os.environ.get("BENCH_PROFILE_SERVER")
    wrapper = (
        ["-m", "pyinstrument", "--interval", "0.001", "-r", "text", "-o", profile]
        if profile
        else []
    )
    server = subprocess.Popen(
        [sys.executable, *wrapper, "-m", "tenex_tui", "serve", "--port", "0"],
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
            threading.Thread(target=server.stderr.read, daemon=True).start()
            return server, int(found.group(1)), key
    server.wait(10)
    raise RuntimeError(f"tenex-tui serve did not start: {''.join(seen)[-500:]}")


def _create_threads(port: int, key: str, count: int) -> list[str]:
    import httpx

    with httpx.Client(
        base_url=f"http://127.0.0.1:{port}/api/v1/chat",
        headers={"Authorization": f"Bearer {key}"},
        timeout=30,
    ) as client:
        ids = []
        for index in range(count):
            response = client.post("/threads", json={"title": f"sse {index}"})
            response.raise_for_status()
            ids.append(str(response.json()["id"]))
        return ids


def _stop_server(server: subprocess.Popen[str]) -> None:
    # Ctrl+C: `serve` stops uvicorn and closes the engine.
    server.send_signal(signal.SIGINT)
    try:
        server.wait(20)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait(5)


async def sse_load(ctx: Context, streams: int, seconds: float) -> dict[str, Any]:
    chunks = int(seconds * RATE)
    llm = _spawn("benchmarks.stamp_llm", str(chunks), str(1 / RATE))
    server: subprocess.Popen[str] | None = None
    try:
        assert llm.stdout is not None
        port_line = llm.stdout.readline().split()
        llm_url = f"http://127.0.0.1:{port_line[1]}/v1"
        server, port, key = await asyncio.to_thread(_start_server, ctx, llm_url)
        threads = await asyncio.to_thread(_create_threads, port, key, streams)
        cpu0 = {p.pid: proc_cpu_seconds(p.pid) for p in (llm, server)}
        client_cpu0 = time.process_time()
        wall0 = time.monotonic()

        async def staggered(index: int, thread_id: str) -> StreamResult:
            # Spread the starts over the first second, as independent clients would.
            await asyncio.sleep(index / streams)
            return await one_stream(port, key, thread_id)

        results = await asyncio.wait_for(
            asyncio.gather(*(staggered(i, t) for i, t in enumerate(threads))),
            timeout=seconds * 4 + 60,
        )
        wall = time.monotonic() - wall0
        cpu = {pid: proc_cpu_seconds(pid) - before for pid, before in cpu0.items()}
        rss, peak = proc_memory_mb(server.pid)
        client_cpu = time.process_time() - client_cpu0
    finally:
        if server is not None:
            await asyncio.to_thread(_stop_server, server)
        _stop(llm)
    expected = list(range(chunks))
    lost = sum(max(0, chunks - len(set(r.indices))) for r in results)
    duplicated = sum(len(r.indices) - len(set(r.indices)) for r in results)
    disordered = sum(1 for r in results if r.indices != sorted(r.indices))
    failures = [
        r.error or r.status for r in results if r.error or r.status != "complete"
    ]
    delays = [d * 1000 for r in results for d in r.delays]
    lags = [d * 1000 for r in results for d in r.lags]
    return {
        "lags_ms": lags,
        "streams": streams,
        "chunks": chunks,
        "delays_ms": delays,
        "lost": lost,
        "duplicated": duplicated,
        "disordered": disordered,
        "complete": sum(1 for r in results if r.indices == expected),
        "failures": failures[:5],
        "failed": len(failures),
        "server_cpu_pct": 100 * cpu[server.pid] / wall,
        "llm_cpu_pct": 100 * cpu[llm.pid] / wall,
        "client_cpu_pct": 100 * client_cpu / wall,
        "server_rss_mb": rss,
        "server_peak_mb": peak,
        "wall_s": wall,
    }


async def sse_streams(ctx: Context) -> AsyncIterator[Figure]:
    """200 streams (issue 5) and 500 streams (DESIGN.md §8), 10 events/s each."""
    plans = (
        [(20, 3.0, 100.0, "quick: 20 streams × 3 s")]
        if ctx.quick
        else [
            (200, 30.0, 100.0, "issue 5: 200 streams, p99 ≤ 100 ms"),
            (500, 30.0, 50.0, "DESIGN.md §8: 500 streams, p99 ≤ 50 ms"),
        ]
    )
    for streams, seconds, budget, label in plans:
        r = await sse_load(ctx, streams, seconds)
        delays = r["delays_ms"]
        integrity = (
            f"{r['complete']}/{streams} streams complete and in order; lost "
            f"{r['lost']}, duplicated {r['duplicated']}, out of order {r['disordered']}"
        )
        if r["failed"]:
            integrity += f"; {r['failed']} failed, e.g. {r['failures'][0]}"
        yield Figure(
            f"SSE {streams} streams × {RATE}/s for {seconds:.0f} s: p99 event delay",
            percentile(delays, 99) if delays else None,
            "ms",
            budget,
            stat="p99",
            samples=[],
            note=f"{label}; p50 {median(delays):.1f} ms, max {max(delays):.0f} ms; "
            f"measured from the model's schedule (counting the time the model was held "
            f"back by a slow reader): p99 {percentile(r['lags_ms'], 99):.0f} ms; "
            f"{seconds:.0f} s of replies took {r['wall_s']:.0f} s; {integrity}"
            if delays
            else f"{label}; no event arrived; {integrity}",
            error=None if delays else "no event arrived",
        )
        yield Figure(
            f"SSE {streams} streams: events lost or duplicated",
            float(r["lost"] + r["duplicated"] + r["failed"]),
            "events",
            0,
            stat="total",
            note=integrity,
        )
        yield Figure(
            f"SSE {streams} streams: server CPU and memory",
            r["server_cpu_pct"],
            "%",
            kind="report",
            stat="single",
            note=f"% of one core over {r['wall_s']:.0f} s; RSS {r['server_rss_mb']:.0f} MB "
            f"(peak {r['server_peak_mb']:.0f} MB); model process "
            f"{r['llm_cpu_pct']:.0f}%, clients {r['client_cpu_pct']:.0f}%",
        )


BENCHMARKS = [
    Bench("server.sse", sse_streams, "concurrent SSE streams through the HTTP server"),
]
