"""A paced OpenAI-compatible model whose every chunk carries the moment it was sent.

`python -m benchmarks.stamp_llm N INTERVAL` serves `POST /v1/chat/completions` on
127.0.0.1 (it prints `PORT <n>`): each request gets N content chunks, one every INTERVAL
seconds on an absolute schedule (no drift), each chunk's text `"<i>:<sent>:<due> "`
(CLOCK_MONOTONIC when it was written, and when it was scheduled), then a finish chunk,
a usage chunk and `[DONE]`. A client at the far end of the stack reads them back: its
delay from the model's send to its own receipt; its delay from the schedule, which also
counts time the model spent blocked because the server read too slowly (TCP
backpressure); and whether any chunk was lost, doubled or reordered.

The fixture server of the tests (`tests/support/fake_llm.py`) cannot do this: its reply
bytes are built before the first one is sent. This one is deliberately small (one
asyncio server, HTTP/1.1 keep-alive, chunked bodies) so that 500 paced streams cost it
little CPU on the benchmark's two cores.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time

_HEAD = (
    b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n"
    b"cache-control: no-cache\r\ntransfer-encoding: chunked\r\n\r\n"
)


def _frame(payload: dict[str, object]) -> bytes:
    data = b"data: " + json.dumps(payload, separators=(",", ":")).encode() + b"\n\n"
    return b"%x\r\n%s\r\n" % (len(data), data)


def _chunk(delta: dict[str, object], finish: str | None = None) -> bytes:
    return _frame(
        {
            "id": "chatcmpl-stamp",
            "object": "chat.completion.chunk",
            "created": 0,
            "model": "stamp-model",
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        }
    )


class StampServer:
    def __init__(self, chunks: int, interval: float) -> None:
        self.chunks = chunks
        self.interval = interval

    async def handle(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    name, _, value = line.partition(b":")
                    if name.strip().lower() == b"content-length":
                        length = int(value)
                if length:
                    await reader.readexactly(length)
                if not head.startswith(b"POST /v1/chat/completions"):
                    body = b'{"object":"list","data":[{"id":"stamp-model","object":"model"}]}'
                    writer.write(
                        b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
                        b"content-length: %d\r\n\r\n%s" % (len(body), body)
                    )
                    await writer.drain()
                    continue
                await self.stream(writer)
        except (
            asyncio.IncompleteReadError,
            ConnectionError,
            asyncio.LimitOverrunError,
        ):
            pass
        finally:
            writer.close()

    async def stream(self, writer: asyncio.StreamWriter) -> None:
        loop = asyncio.get_running_loop()
        writer.write(_HEAD + _chunk({"role": "assistant", "content": ""}))
        start = loop.time()
        # loop.time() is CLOCK_MONOTONIC too: the schedule and the stamps compare.
        for index in range(self.chunks):
            due = start + (index + 1) * self.interval
            delay = due - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            stamp = f"{index}:{time.monotonic():.6f}:{due:.6f} "
            writer.write(_chunk({"content": stamp}))
            await writer.drain()
        writer.write(_chunk({}, "stop"))
        writer.write(
            _frame(
                {
                    "id": "chatcmpl-stamp",
                    "object": "chat.completion.chunk",
                    "created": 0,
                    "model": "stamp-model",
                    "choices": [],
                    "usage": {
                        "prompt_tokens": 1,
                        "completion_tokens": self.chunks,
                        "total_tokens": self.chunks + 1,
                    },
                }
            )
        )
        data = b"data: [DONE]\n\n"
        writer.write(b"%x\r\n%s\r\n0\r\n\r\n" % (len(data), data))
        await writer.drain()


async def main(chunks: int, interval: float) -> None:
    server = await asyncio.start_server(
        StampServer(chunks, interval).handle, "127.0.0.1", 0, backlog=2048
    )
    port = server.sockets[0].getsockname()[1]
    sys.stdout.write(f"PORT {port}\n")
    sys.stdout.flush()
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, sys.stdin.read)
    server.close()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]), float(sys.argv[2])))
