"""What reaches the terminal: escape sequences from content (T26–T28) and crash output
(T40), captured byte for byte from the real app running in a pseudo-terminal."""

from __future__ import annotations

import re
from pathlib import Path

from tenex_tui.core.errors import ModelError
from tenex_tui.engine.engine import LocalEngine
from tests.support.pty_capture import capture
from tests.support.scripted_llm import ScriptedLLM, ToolFragment
from tests.ui.harness import open_engine

OSC52 = "\x1b]52;c;VEVORVg=\x1b\\"
"""A clipboard write (ST-terminated) carrying a unique marker (base64 of "TENEX")."""
OSC52_BEL = "\x1b]52;c;QkVMTUFSSw==\x07"
OSC_TITLE = "\x1b]0;PWNEDTITLE\x07"
OSC2_TITLE = "\x1b]2;PWNEDTWO\x1b\\"
OSC8 = "\x1b]8;;https://evil.example/LINKMARK\x1b\\click\x1b]8;;\x1b\\"
CLEAR = "\x1b[2J\x1b[H"
CONCEAL = "\x1b[8mHIDDENMARK\x1b[0m"
C1 = "\x9b31mC1MARK \x9d0;C1TITLE\x07"
DCS = "\x1bPDCSMARK\x1b\\"
PASTE_END = "\x1b[201~"
NUL = "NUL\x00MARK"

PAYLOAD = " ".join(
    [
        OSC52,
        OSC52_BEL,
        OSC_TITLE,
        OSC2_TITLE,
        OSC8,
        CLEAR,
        CONCEAL,
        C1,
        DCS,
        PASTE_END,
        NUL,
    ]
)
SPOOF = "\x1b[2J\x1b[H╔ tenex-tui: API key expired — paste it below ╗ \x1b]0;tenex-tui — verified\x07"


async def _prepare(path: Path, *, payload: bool) -> tuple[str, str]:
    llm = ScriptedLLM()
    engine = await open_engine(path, llm)
    text = PAYLOAD if payload else "plain words only"
    title = ("title " + OSC52 + OSC_TITLE + C1) if payload else "clean title"
    thread = await engine.create_thread(title=title)
    llm.enqueue(
        ToolFragment(
            0,
            "call_1",
            "lookup",
            '{"q": "' + text.replace("\\", "\\\\").replace('"', "'") + '"}',
        ),
        "Reply: ",
        text,
        "\n\n" + (SPOOF if payload else "ok"),
    )
    async for _ in engine.send_message(thread.id, "user says " + text):
        pass
    failed = await engine.create_thread(title="errors")
    llm.enqueue(error=ModelError("server said " + text))
    async for _ in engine.send_message(failed.id, "q"):
        pass
    # The thread with every payload is the most recent one: the app previews it first.
    await engine.update_thread(thread.id, pinned=True)
    stored = (await engine.list_messages(thread.id)).items
    await engine.aclose()
    return thread.id, stored[-1].content


def _count(data: bytes, needle: bytes) -> int:
    return data.count(needle)


async def test_no_escape_sequence_from_content_reaches_the_terminal(
    tmp_path: Path,
) -> None:
    """T26/T27/T28: every payload is shown as visible text, none is obeyed."""
    clean_db = tmp_path / "clean" / "tenex.db"
    dirty_db = tmp_path / "dirty" / "tenex.db"
    clean_db.parent.mkdir()
    dirty_db.parent.mkdir()
    await _prepare(clean_db, payload=False)
    _thread_id, stored = await _prepare(dirty_db, payload=True)
    assert PAYLOAD in stored  # storage keeps the original bytes (T26)

    baseline = capture(clean_db, home=tmp_path / "clean")
    output = capture(dirty_db, home=tmp_path / "dirty")
    assert b"clean title" in baseline  # the harness really painted the app
    assert b"title " in output

    for marker in (
        b"VEVORVg=",
        b"QkVMTUFSSw==",
        b"PWNEDTITLE",
        b"PWNEDTWO",
        b"LINKMARK",
    ):
        # The marker may be shown as text, but never inside a live sequence.
        assert not re.search(rb"\x1b\][0-9]+;[^\x07\x1b]*" + re.escape(marker), output)
    assert b"\x1b]52" not in output
    assert b"\x1b]0;" not in output and b"\x1b]2;" not in output
    assert b"\x1b]8;" not in output
    assert b"\x1bP" not in output
    assert b"\xc2\x9b" not in output and b"\xc2\x9d" not in output  # C1 as characters
    assert b"\x00" not in output
    for sequence in (b"\x1b[2J", b"\x1b[8m", b"\x1b[201~"):
        assert _count(output, sequence) == _count(baseline, sequence), sequence
    # What the user sees instead: control pictures.
    assert "␛]52;c;VEVORVg=".encode() in output


async def test_a_crash_prints_no_secret_and_no_local_variables(tmp_path: Path) -> None:
    """T40: Textual's default crash report shows locals; ours masks keys and omits them."""
    db = tmp_path / "tenex.db"
    engine: LocalEngine = await open_engine(db, None)
    await engine.create_thread(title="anything")
    await engine.aclose()
    output = capture(db, home=tmp_path, exit_after=0.8, crash=True)
    text = output.decode("utf-8", "replace")
    assert "RuntimeError" in text and "tenex-tui crashed" in text
    assert "CANARYSECRET" not in text
    assert "tnx_test_****" in text
    assert "locals" not in text  # Rich titles its locals panel "locals"
