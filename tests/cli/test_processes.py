"""`tenex-tui` as a real process: entry points, stdin, Ctrl+C, start-up imports, and the
safety properties that only a separate process can show (T34, T39, T44)."""

from __future__ import annotations

import json
import os
import secrets
import select
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tenex_tui import __version__
from tenex_tui.core.models import Message
from tests.cli.conftest import (
    SUBPROCESS_TIMEOUT,
    Result,
    Run,
    child_env,
    run_child,
    tenex_command,
)
from tests.support.fake_llm import FakeLLMServer, Script

HOSTILE_REPLY = "safe \x1b]52;c;cHduZWQ=\x07 then \x9b31mred\x1b[0m end"


def _has_controls(text: str) -> bool:
    """ESC or a C1 control character (0x9b is the 8-bit CSI) in decoded text."""
    return any(c == "\x1b" or "\x80" <= c <= "\x9f" for c in text)


@pytest.fixture
def env(tenex_home: Path, llm: FakeLLMServer) -> dict[str, str]:
    """The environment of a child that talks to the fake server."""
    return child_env(tenex_home, OPENAI_BASE_URL=llm.base_url, TENEX_MODEL="fake-model")


@pytest.fixture
def spawned() -> Iterator[list[subprocess.Popen[str]]]:
    """Children started by a test; any still running at the end are killed."""
    children: list[subprocess.Popen[str]] = []
    yield children
    for child in children:
        if child.poll() is None:
            child.kill()
            child.wait(SUBPROCESS_TIMEOUT)


def _read_until(child: subprocess.Popen[str], needle: bytes) -> bytes:
    """Read the child's stdout until `needle` appears (bounded in time and size)."""
    assert child.stdout is not None
    fd = child.stdout.fileno()
    deadline = time.monotonic() + SUBPROCESS_TIMEOUT
    seen = b""
    while needle not in seen:
        left = deadline - time.monotonic()
        assert left > 0, f"no {needle!r} on stdout; got {seen!r}"
        ready, _, _ = select.select([fd], [], [], left)
        if ready:
            data = os.read(fd, 65536)
            assert data, f"stdout closed before {needle!r}; got {seen!r}"
            seen += data
            assert len(seen) < 1_000_000
    return seen


def _new_thread(cli: Run, *options: str) -> str:
    result = cli("threads", "new", *options)
    assert result.code == 0, result.err
    return result.out.strip()


def _messages(cli: Run, thread_id: str) -> list[Message]:
    result = cli("threads", "show", thread_id, "--json")
    assert result.code == 0, result.err
    return [Message.model_validate(m) for m in json.loads(result.out)["messages"]]


def test_the_console_script_and_python_m_both_work(tenex_home: Path) -> None:
    script = Path(sys.executable).parent / "tenex-tui"
    done = subprocess.run(
        [str(script), "--version"],
        capture_output=True,
        text=True,
        timeout=SUBPROCESS_TIMEOUT,
        env=child_env(tenex_home),
        check=False,
    )
    assert (done.returncode, done.stdout) == (0, f"tenex-tui {__version__}\n")
    result = run_child("--version", env=child_env(tenex_home))
    assert (result.code, result.out) == (0, f"tenex-tui {__version__}\n")


def test_threads_list_loads_no_model_sdk_and_no_ui(tenex_home: Path) -> None:
    """Start-up cost: listing must not import openai, textual or rich."""
    code = (
        "import sys, json\n"
        "from tenex_tui.cli import main\n"
        "status = main(['threads', 'list', '--json'])\n"
        "print(json.dumps({'status': status, 'modules': sorted(sys.modules)}))\n"
    )
    env = child_env(tenex_home, OPENAI_BASE_URL="http://127.0.0.1:9/v1")
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=SUBPROCESS_TIMEOUT,
        env=env,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout.splitlines()[-1])
    assert report["status"] == 0
    heavy = {
        m for m in report["modules"] if m.split(".")[0] in {"openai", "textual", "rich"}
    }
    assert heavy == set()
    assert (tenex_home / "tenex.db").exists()


def test_send_reads_stdin(cli: Run, llm: FakeLLMServer, env: dict[str, str]) -> None:
    thread_id = _new_thread(cli)
    piped = run_child("send", thread_id, env=env, input="from a pipe\n")
    assert (piped.code, piped.out) == (0, "from a pipe\n"), piped.err
    dashed = run_child("send", thread_id, "-", env=env, input="line one\nline two\n")
    assert dashed.code == 0, dashed.err
    contents = [r.body["messages"][-1]["content"] for r in llm.chat_requests]
    assert contents == ["from a pipe", "line one\nline two"]


def test_ctrl_c_stops_the_reply_keeps_it_and_exits_130(
    cli: Run,
    llm: FakeLLMServer,
    env: dict[str, str],
    spawned: list[subprocess.Popen[str]],
) -> None:
    thread_id = _new_thread(cli)
    # role chunk + "partial " + "words ", then nothing until the client goes away.
    llm.enqueue(Script.reply("partial words never arrive", stall_after=3))
    child = subprocess.Popen(
        tenex_command("send", thread_id, "go"),
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    spawned.append(child)
    llm.wait_for_chunks_blocking(3, timeout=SUBPROCESS_TIMEOUT)
    # The server wrote the chunks; wait until the child has printed them too.
    printed = _read_until(child, b"words ")
    child.send_signal(signal.SIGINT)
    rest, err = child.communicate(timeout=SUBPROCESS_TIMEOUT)
    assert child.returncode == 130, err
    assert printed.decode() + rest == "partial words \n"
    assert "stopped" in err and "Traceback" not in err
    llm.wait_for_disconnect_blocking(timeout=SUBPROCESS_TIMEOUT)
    # A new engine (this process) sees what the child stored.
    reply = _messages(cli, thread_id)[-1]
    assert (reply.role, reply.status, reply.content) == (
        "assistant",
        "stopped",
        "partial words ",
    )


def test_the_key_is_not_in_the_command_line_of_a_running_send(
    cli: Run,
    llm: FakeLLMServer,
    env: dict[str, str],
    spawned: list[subprocess.Popen[str]],
) -> None:
    """T44: no key in argv; `/proc/<pid>/cmdline` of a live `send` lacks it."""
    key = "sk-CANARY" + secrets.token_hex(12)
    llm.required_api_key = key
    thread_id = _new_thread(cli)
    llm.enqueue(Script.reply("wait for it", stall_after=2))
    child = subprocess.Popen(
        tenex_command("send", thread_id, "hello"),
        env={**env, "OPENAI_API_KEY": key},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    spawned.append(child)
    llm.wait_for_chunks_blocking(2, timeout=SUBPROCESS_TIMEOUT)
    cmdline = Path(f"/proc/{child.pid}/cmdline").read_bytes()
    assert b"send" in cmdline and thread_id.encode() in cmdline
    assert key.encode() not in cmdline and b"CANARY" not in cmdline
    child.send_signal(signal.SIGINT)
    child.communicate(timeout=SUBPROCESS_TIMEOUT)
    assert child.returncode == 130
    assert llm.chat_requests[0].headers["authorization"] == f"Bearer {key}"


def test_show_and_export_strip_terminal_controls_unless_raw(
    cli: Run, llm: FakeLLMServer, env: dict[str, str], tmp_path: Path
) -> None:
    """T34: no ESC / 0x9b from content in stdout or the exported file by default."""
    thread_id = _new_thread(cli, "--title", "title \x1b]0;pwned\x07 here")
    llm.enqueue(Script.text(HOSTILE_REPLY[:4], HOSTILE_REPLY[4:]))
    sent = run_child("send", thread_id, "hi", env=env)
    assert sent.code == 0, sent.err
    assert not _has_controls(sent.out)

    shown = run_child("threads", "show", thread_id, env=env)
    listed = run_child("threads", "list", env=env)
    exported = run_child("export", thread_id, env=env)
    target = tmp_path / "out.md"
    to_file = run_child("export", thread_id, "--output", str(target), env=env)
    as_json = run_child("threads", "show", thread_id, "--json", env=env)
    for result in (shown, listed, exported, to_file, as_json):
        assert result.code == 0, result.err
        assert not _has_controls(result.out) and not _has_controls(result.err)
    assert "safe" in shown.out and "end" in shown.out
    assert not _has_controls(target.read_text(encoding="utf-8"))
    assert json.loads(as_json.out)["messages"][-1]["content"] == HOSTILE_REPLY

    raw = run_child("threads", "show", thread_id, "--raw", env=env)
    raw_export = run_child("export", thread_id, "--raw", env=env)
    for result in (raw, raw_export):
        assert result.code == 0
        assert HOSTILE_REPLY in result.out
        assert "--raw prints untrusted text verbatim" in result.err


@pytest.mark.e2e  # fourteen child processes: ~12 s on two cores
def test_a_canary_key_never_reaches_output_or_files(
    cli: Run,
    llm: FakeLLMServer,
    tenex_home: Path,
    tmp_path: Path,
) -> None:
    """T39: a whole session, success and error paths, with the SDK at debug level."""
    openai_key = "sk-CANARY" + secrets.token_hex(16)
    tenex_key = "tnx_test_CANARYSECRET" + secrets.token_hex(16)
    llm.required_api_key = openai_key
    env = child_env(
        tenex_home,
        OPENAI_BASE_URL=llm.base_url,
        OPENAI_API_KEY=openai_key,
        TENEX_API_KEY=tenex_key,
        TENEX_MODEL="fake-model",
        OPENAI_LOG="debug",
    )
    exports = tmp_path / "exports"
    exports.mkdir()
    results: list[Result] = []

    def step(*argv: str, expect: int = 0, **options: str) -> Result:
        result = run_child(*argv, env={**env, **options})
        assert result.code == expect, (argv, result.err[-2000:])
        results.append(result)
        return result

    thread_id = step("threads", "new", "--title", "canary").out.strip()
    step("send", thread_id, "hello")
    step("send", thread_id, "again", "--json")
    step("models")
    step("threads", "show", thread_id)
    step("threads", "show", thread_id, "--json")
    step("search", "hello")
    step("export", thread_id, "--output", str(exports / "t.md"))
    step("export", thread_id, "--format", "json", "--output", str(exports / "t.json"))
    # Error paths: a wrong key (the server echoes it, as real providers do), and a key
    # typed where it does not belong.
    wrong = "sk-CANARYwrong" + secrets.token_hex(16)
    failed = step(
        "send", thread_id, "with the wrong key", expect=1, OPENAI_API_KEY=wrong
    )
    assert "Incorrect API key" in failed.err
    step("models", expect=1, OPENAI_API_KEY=wrong)
    step("--api-key", openai_key, "threads", "list", expect=2)
    step("threads", "list", "--limit", tenex_key, expect=2)
    step("backup", str(exports / "backup.db"))

    for result in results:
        assert "CANARY" not in result.out
        assert "CANARY" not in result.err
    files = [p for p in [*tenex_home.rglob("*"), *exports.rglob("*")] if p.is_file()]
    assert any(p.name == "tenex.db" for p in files)
    for path in files:
        assert b"CANARY" not in path.read_bytes(), path


def test_delete_asks_on_a_terminal(
    cli: Run, tenex_home: Path, spawned: list[subprocess.Popen[str]]
) -> None:
    thread_id = _new_thread(cli, "--title", "Keep?")

    def delete_answering(answer: bytes) -> tuple[int, str]:
        primary, secondary = os.openpty()
        try:
            child = subprocess.Popen(
                tenex_command("threads", "delete", thread_id),
                env=child_env(tenex_home),
                stdin=secondary,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            spawned.append(child)
            os.write(primary, answer)
            _, err = child.communicate(timeout=SUBPROCESS_TIMEOUT)
        finally:
            os.close(primary)
            os.close(secondary)
        return child.returncode, err

    code, err = delete_answering(b"n\n")
    assert code == 1
    assert "Delete 'Keep?' and its 0 messages? [y/N]" in err
    assert "not deleted" in err
    assert cli("threads", "show", thread_id).code == 0
    code, err = delete_answering(b"y\n")
    assert code == 0, err
    assert cli("threads", "show", thread_id).code == 1
