"""The CLI with `--remote` against the project's own server on loopback.

Every command that works on threads runs against the served engine (user a1 of
workspace ws_a) and leaves the local database untouched; the commands that act on this
machine refuse `--remote`; `send --remote` streams the reply and Ctrl+C stops it on the
server, as it does locally.
"""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tenex_tui.core.events import StreamEvent
from tenex_tui.core.models import Message, Page, SearchHit, Thread
from tests.cli.conftest import SUBPROCESS_TIMEOUT, Run, child_env, tenex_command
from tests.support.threaded_stack import ThreadedStack

pytestmark = pytest.mark.e2e


def _thread(cli: Run, *argv: str) -> Thread:
    result = cli("--remote", *argv, "--json")
    assert result.code == 0, result.err
    return Thread.model_validate_json(result.out)


def _list(cli: Run, *options: str) -> Page[Thread]:
    result = cli("--remote", "threads", "list", "--json", *options)
    assert result.code == 0, result.err
    return Page[Thread].model_validate_json(result.out)


def test_thread_commands_act_on_the_remote_workspace(
    cli: Run, served: ThreadedStack, remote_env: dict[str, str], tenex_home: Path
) -> None:
    created = _thread(cli, "threads", "new", "--title", "Remote launch")
    assert (created.workspace_id, created.user_id) == ("ws_a", "usr_a1")

    # The server's engine holds it, for that user only.
    on_server = served.call(lambda s: s.scoped("a1").get_thread(created.id))
    assert on_server.title == "Remote launch"
    other = served.call(lambda s: s.scoped("b1").list_threads())
    assert other.items == []

    sent = cli("--remote", "send", created.id, "hello there")
    assert sent.code == 0, sent.err
    assert sent.out == "w0 w1 w2 w3 w4 \n"

    shown = cli("--remote", "threads", "show", created.id, "--json")
    messages = [Message.model_validate(m) for m in json.loads(shown.out)["messages"]]
    assert [(m.role, m.status) for m in messages] == [
        ("user", "complete"),
        ("assistant", "complete"),
    ]

    found = cli("--remote", "search", "hello", "--json")
    hits = Page[SearchHit].model_validate_json(found.out).items
    assert [h.message_id for h in hits] == [messages[0].id]

    exported = cli("--remote", "export", created.id)
    assert exported.out.startswith("# Remote launch\n")

    renamed = _thread(cli, "threads", "rename", created.id, "Launch, renamed")
    assert renamed.title == "Launch, renamed"
    assert _thread(cli, "threads", "pin", created.id).pinned
    assert _thread(cli, "threads", "archive", created.id).archived
    assert [t.id for t in _list(cli, "--archived").items] == [created.id]
    assert _list(cli).items == []

    deleted = cli("--remote", "threads", "delete", created.id)
    assert deleted.code == 0 and deleted.out.startswith(f"deleted {created.id}")
    assert _list(cli, "--all").items == []
    gone = cli("--remote", "threads", "show", created.id)
    assert gone.code == 1 and "not found" in gone.err

    # Nothing went to the local engine: its database was never even created.
    assert not (tenex_home / "tenex.db").exists()
    local = cli("threads", "list", "--json", "--all")
    assert Page[Thread].model_validate_json(local.out).items == []


def test_models_and_send_json_use_the_remote_model(
    cli: Run, remote_env: dict[str, str]
) -> None:
    models = cli("--remote", "models", "--json")
    assert models.code == 0, models.err
    assert json.loads(models.out) == {
        "provider": "remote",
        "default": "step-model",
        "items": ["step-model", "step-model-large"],
    }
    thread = _thread(cli, "threads", "new")
    result = cli("--remote", "send", thread.id, "count", "--json")
    assert result.code == 0, result.err
    events = [StreamEvent.model_validate_json(line) for line in result.out.splitlines()]
    assert (events[0].type, events[-1].type) == ("message.started", "message.completed")
    assert events[-1].message is not None and events[-1].message.model == "step-model"


def test_local_only_commands_refuse_remote(
    cli: Run, remote_env: dict[str, str], tmp_path: Path
) -> None:
    for argv in (
        ("backup", str(tmp_path / "copy.db")),
        ("keys", "list"),
        ("serve", "--port", "0"),
    ):
        result = cli("--remote", *argv)
        assert result.code == 2, argv
        assert "without --remote" in result.err
    assert not (tmp_path / "copy.db").exists()


def test_a_missing_key_is_a_configuration_error_pointing_to_keys_create(
    cli: Run, served: ThreadedStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TENEX_API_BASE", served.base_url)
    result = cli("--remote", "threads", "list")
    assert result.code == 2
    assert "TENEX_API_KEY" in result.err and "keys create" in result.err


def test_a_wrong_key_fails_without_printing_it(
    cli: Run, served: ThreadedStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    wrong = "tnx_abcdefgh_" + "x" * 40
    monkeypatch.setenv("TENEX_API_BASE", served.base_url)
    monkeypatch.setenv("TENEX_API_KEY", wrong)
    result = cli("--remote", "threads", "list")
    assert result.code == 1
    assert "API key" in result.err and wrong not in result.err + result.out


def test_plain_http_to_a_remote_host_is_refused(
    cli: Run, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TENEX_API_BASE", "http://chat.example.com")
    monkeypatch.setenv("TENEX_API_KEY", "tnx_abcdefgh_" + "y" * 40)
    result = cli("--remote", "threads", "list")
    assert result.code == 2
    assert "http://" in result.err and "yyyy" not in result.err


def _read_until(child: subprocess.Popen[str], needle: bytes) -> bytes:
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
    return seen


def test_ctrl_c_on_send_remote_stops_the_reply_on_the_server(
    served: ThreadedStack, tenex_home: Path
) -> None:
    thread = served.call(lambda s: s.scoped("a1").create_thread(title="hold"))

    async def hold(stack: object) -> None:
        served.stack.llm.enqueue(["partial ", "words ", "never"], hold_at=2)

    served.call(hold)
    env = child_env(
        tenex_home, TENEX_API_BASE=served.base_url, TENEX_API_KEY=served.key("a1")
    )
    child = subprocess.Popen(
        tenex_command("--remote", "send", thread.id, "go"),
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        printed = _read_until(child, b"words ")
        child.send_signal(signal.SIGINT)
        rest, err = child.communicate(timeout=SUBPROCESS_TIMEOUT)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait(SUBPROCESS_TIMEOUT)
    assert child.returncode == 130, err
    assert printed.decode() + rest == "partial words \n"
    assert "Traceback" not in err
    messages = served.call(lambda s: s.scoped("a1").list_messages(thread.id))
    reply = messages.items[-1]
    assert (reply.role, reply.status, reply.content) == (
        "assistant",
        "stopped",
        "partial words ",
    )


def test_the_app_with_remote_gets_the_mirrored_remote_backend_from_its_factory(
    cli: Run,
    served: ThreadedStack,
    remote_env: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import asyncio

    from tenex_tui.core.models import BackendInfo
    from tenex_tui.ui.app import TenexApp

    seen: list[BackendInfo] = []

    def fake_run(app: TenexApp) -> None:
        # The factory runs inside the app's loop; here, inside this one.
        async def use() -> None:
            from tenex_tui.remote.mirror import MirroredBackend

            backend = await app._backend_factory()
            try:
                assert isinstance(backend, MirroredBackend)
                seen.append(await backend.info())
            finally:
                await backend.aclose()

        asyncio.run(use())

    monkeypatch.setattr(TenexApp, "run", fake_run)
    result = cli("--remote")
    assert result.code == 0, result.err
    assert [(i.kind, i.workspace, i.online) for i in seen] == [("remote", "Acme", True)]
