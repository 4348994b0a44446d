"""A worker that writes through the real engine until it is killed (test-plan H3, T1).

    python -m tests.support.crash_worker DB SEED [--hold N]

It sends message after message with scripted replies (seeded sizes, some failing
mid-way), and reports on stdout, flushed, right after each commit returned:

    committed <user_message_id> <assistant_message_id> <thread_id>
    final <assistant_message_id> <status> <content_length>

With `--hold N`, it starts one reply, lets N chunks through, reports `committed …`, and
then waits forever (the parent kills it there: a reply whose writer died, T13/T14/T25b;
N = 0 is a send killed before the model said anything).

The parent sends SIGKILL at a seeded moment, reopens the database, and checks that every
reported commit is there and that no transaction is half visible.
"""

from __future__ import annotations

import asyncio
import random
import sys
from pathlib import Path

from tenex_tui.core.errors import ModelError
from tenex_tui.engine.engine import LocalEngine
from tenex_tui.engine.llm import StreamBroken
from tests.support.scripted_llm import ScriptedLLM


def _say(*words: object) -> None:
    sys.stdout.write(" ".join(str(w) for w in words) + "\n")
    sys.stdout.flush()


async def _hold(path: Path, at: int) -> None:
    llm = ScriptedLLM()
    engine = await LocalEngine.open(path, llm=llm, checkpoint_interval=0.005)
    thread = await engine.create_thread(title="held")
    reply = llm.enqueue("partial ", "text ", "never sent", hold_at=(at,))
    stream = engine.send_message(thread.id, "question")
    started = await anext(stream)
    assert started.user_message is not None
    await reply.held(at).wait()
    # Make sure the partial text is checkpointed before reporting.
    await engine._core.replies[
        (engine.scope.workspace_id, started.message_id)
    ].checkpoint()
    _say("committed", started.user_message.id, started.message_id, thread.id)
    await asyncio.Event().wait()


async def _churn(path: Path, seed: int) -> None:
    rng = random.Random(seed)
    llm = ScriptedLLM()
    engine = await LocalEngine.open(path, llm=llm, checkpoint_interval=0.005)
    thread_id = (await engine.create_thread(title=f"worker {seed}")).id
    for round_ in range(10_000):
        if round_ % 5 == 4:
            thread_id = (await engine.create_thread(title=f"worker {seed}.{round_}")).id
        chunks = [f"s{seed}r{round_}c{i} " for i in range(rng.randint(5, 80))]
        fault = rng.random()
        if fault < 0.1:
            llm.enqueue(
                *chunks, error=StreamBroken("dropped"), error_at=len(chunks) // 2
            )
        elif fault < 0.15:
            llm.enqueue(*chunks, error=ModelError("provider said no"), error_at=1)
        else:
            llm.enqueue(*chunks)
        async for event in engine.send_message(thread_id, f"question {round_}"):
            if event.type == "message.started":
                assert event.user_message is not None
                _say("committed", event.user_message.id, event.message_id, thread_id)
            elif event.terminal:
                final = event.message
                assert final is not None
                _say("final", final.id, final.status, len(final.content))


def main() -> None:
    """Run the worker (see the module docstring)."""
    path = Path(sys.argv[1])
    seed = int(sys.argv[2])
    if sys.argv[3:4] == ["--hold"]:
        asyncio.run(_hold(path, int(sys.argv[4])))
    else:
        asyncio.run(_churn(path, seed))


if __name__ == "__main__":
    main()
