"""The whole CLI against the real engine and a loopback OpenAI-compatible server.

new → send → show → search → export → backup → rename/pin/archive/list → delete, each
step through `main()` exactly as a script would call `tenex-tui`.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from tenex_tui.core.events import StreamEvent
from tenex_tui.core.models import Message, Page, SearchHit, Thread
from tests.cli.conftest import Run
from tests.support.fake_llm import FakeLLMServer, Script, tool_fragment


def _new_thread(cli: Run, *options: str) -> Thread:
    result = cli("threads", "new", "--json", *options)
    assert result.code == 0, result.err
    return Thread.model_validate_json(result.out)


def _messages(cli: Run, thread_id: str) -> list[Message]:
    result = cli("threads", "show", thread_id, "--json")
    assert result.code == 0, result.err
    return [Message.model_validate(m) for m in json.loads(result.out)["messages"]]


def _list(cli: Run, *options: str) -> Page[Thread]:
    result = cli("threads", "list", "--json", *options)
    assert result.code == 0, result.err
    return Page[Thread].model_validate_json(result.out)


def test_the_full_flow(cli: Run, llm: FakeLLMServer, tmp_path: Path) -> None:
    # new: plain output is the id alone, so scripts can capture it.
    plain = cli("threads", "new", "--title", "Launch plan")
    assert (
        plain.code == 0 and plain.out.startswith("thr_") and plain.out.count("\n") == 1
    )
    thread_id = plain.out.strip()

    # send: the reply streams to stdout.
    llm.enqueue(Script.reply("The launch is on Monday."))
    sent = cli("send", thread_id, "When is the launch?")
    assert (sent.code, sent.out) == (0, "The launch is on Monday.\n"), sent.err
    body = llm.chat_requests[0].body
    assert body["model"] == "fake-model" and body["stream"] is True
    assert body["messages"][-1] == {"role": "user", "content": "When is the launch?"}

    # show: both messages, complete, in order.
    messages = _messages(cli, thread_id)
    assert [(m.role, m.content, m.status) for m in messages] == [
        ("user", "When is the launch?", "complete"),
        ("assistant", "The launch is on Monday.", "complete"),
    ]
    shown = cli("threads", "show", thread_id)
    assert shown.out.startswith("Launch plan\n" + thread_id)
    assert "── user · " in shown.out and "The launch is on Monday." in shown.out

    # search
    found = cli("search", "monday", "--json")
    assert found.code == 0, found.err
    hits = Page[SearchHit].model_validate_json(found.out).items
    assert [(h.thread_id, h.message_id) for h in hits] == [(thread_id, messages[1].id)]
    table = cli("search", "monday")
    assert table.out.startswith(f"{thread_id}  {messages[1].id}  assistant\n")

    # export, to stdout and to files
    markdown = cli("export", thread_id)
    assert markdown.out.startswith("# Launch plan\n")
    assert "The launch is on Monday." in markdown.out
    out_json = tmp_path / "export.json"
    exported = cli("export", thread_id, "--format", "json", "--output", str(out_json))
    assert exported.code == 0 and exported.out == ""
    document = json.loads(out_json.read_text(encoding="utf-8"))
    assert document["thread"]["id"] == thread_id
    assert [m["id"] for m in document["messages"]] == [m.id for m in messages]
    assert out_json.stat().st_mode & 0o777 == 0o600

    # backup: a database that another home can open.
    other_home = tmp_path / "restored"
    other_home.mkdir()
    backed = cli("backup", str(other_home / "tenex.db"))
    assert backed.code == 0, backed.err
    restored = cli("--home", str(other_home), "threads", "list", "--json")
    assert [t.id for t in Page[Thread].model_validate_json(restored.out).items] == [
        thread_id
    ]
    again = cli("backup", str(other_home / "tenex.db"))
    assert again.code == 1 and "--force" in again.err
    assert cli("backup", str(other_home / "tenex.db"), "--force").code == 0

    # rename, pin, archive, and the list filters
    second = _new_thread(cli, "--title", "Budget", "--system-prompt", "Be terse")
    assert second.system_prompt == "Be terse"
    renamed = cli("threads", "rename", second.id, "Budget 2027")
    assert renamed.out == f"renamed {second.id}: Budget 2027\n"
    assert cli("threads", "pin", second.id).code == 0
    assert [t.id for t in _list(cli).items] == [second.id, thread_id]
    assert [t.id for t in _list(cli, "--pinned").items] == [second.id]
    assert [t.id for t in _list(cli, "--query", "launch").items] == [thread_id]
    assert cli("threads", "archive", thread_id).out.startswith("archived ")
    assert [t.id for t in _list(cli).items] == [second.id]
    assert [t.id for t in _list(cli, "--archived").items] == [thread_id]
    assert {t.id for t in _list(cli, "--all").items} == {thread_id, second.id}
    assert cli("threads", "unarchive", thread_id).code == 0
    assert cli("threads", "unpin", second.id).code == 0
    assert not any(t.pinned for t in _list(cli).items)
    page = _list(cli, "--limit", "1")
    assert len(page.items) == 1 and page.next_cursor
    rest = _list(cli, "--limit", "1", "--cursor", page.next_cursor)
    assert {page.items[0].id, rest.items[0].id} == {thread_id, second.id}
    table = cli("threads", "list")
    assert table.out.splitlines()[0].split() == ["ID", "FLAGS", "UPDATED", "TITLE"]
    assert len(table.out.splitlines()) == 3

    # delete (stdin is not a terminal under pytest: no question)
    deleted = cli("threads", "delete", thread_id)
    assert deleted.code == 0 and deleted.out.startswith(f"deleted {thread_id}")
    assert [t.id for t in _list(cli, "--all").items] == [second.id]
    gone = cli("threads", "show", thread_id)
    assert gone.code == 1 and gone.out == ""
    assert gone.err.startswith("tenex-tui: ") and gone.err.count("\n") == 1


def test_send_json_prints_one_wire_event_per_line(cli: Run, llm: FakeLLMServer) -> None:
    thread = _new_thread(cli)
    llm.enqueue(Script.reply("one two three"))
    result = cli("send", thread.id, "count", "--json")
    assert result.code == 0, result.err
    events = [StreamEvent.model_validate_json(line) for line in result.out.splitlines()]
    assert events[0].type == "message.started"
    assert events[-1].type == "message.completed"
    assert (
        "".join(e.delta for e in events if e.type == "message.delta") == "one two three"
    )
    assert {e.message_id for e in events} == {events[0].message_id}


def test_a_failed_reply_exits_1_with_the_reason(cli: Run, llm: FakeLLMServer) -> None:
    thread = _new_thread(cli)
    llm.enqueue(
        Script.http_error(
            400, "This model does not exist.", type="invalid_request_error"
        )
    )
    result = cli("send", thread.id, "hello")
    assert result.code == 1
    assert "does not exist" in result.err
    assert result.err.count("\n") == 1
    assert _messages(cli, thread.id)[-1].status == "error"


def test_an_error_mid_stream_keeps_the_partial_text(
    cli: Run, llm: FakeLLMServer
) -> None:
    thread = _new_thread(cli)
    llm.enqueue(
        Script.reply("alpha beta gamma", error_after=3, error_message="overloaded")
    )
    result = cli("send", thread.id, "go")
    assert result.code == 1
    assert result.out == "alpha beta \n"
    assert "overloaded" in result.err


def test_tool_calls_are_noted_on_stderr(cli: Run, llm: FakeLLMServer) -> None:
    thread = _new_thread(cli)
    llm.enqueue(
        Script.text(
            "Let me look.",
            tool_fragment(0, id="call_1", name="lookup", arguments='{"q": '),
            tool_fragment(0, arguments='"fox"}'),
            finish_reason="tool_calls",
        )
    )
    result = cli("send", thread.id, "find the fox")
    assert result.out.startswith("Let me look.")
    assert "[tool] lookup" in result.err


def test_send_to_an_unknown_thread_exits_1(cli: Run, llm: FakeLLMServer) -> None:
    _new_thread(cli)
    result = cli("send", "thr_nope", "hello")
    assert result.code == 1
    assert result.err.startswith("tenex-tui: ")
    assert llm.chat_request_count == 0


def test_models_lists_the_provider_models(cli: Run, llm: FakeLLMServer) -> None:
    llm.models = ["alpha", "fake-model", "zeta"]
    result = cli("models")
    assert result.code == 0, result.err
    assert result.out.splitlines() == ["  alpha", "* fake-model", "  zeta"]
    as_json = json.loads(cli("models", "--json").out)
    assert as_json == {
        "provider": "env",
        "default": "fake-model",
        "items": ["alpha", "fake-model", "zeta"],
    }


def test_a_named_provider_from_config_is_used(
    cli: Run,
    fake_llm_in_thread: FakeLLMServer,
    tenex_home: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fake_llm_in_thread.required_api_key = "sk-local-0123456789"
    tenex_home.mkdir(parents=True)
    (tenex_home / "config.toml").write_text(
        'provider = "local"\n'
        "[providers.local]\n"
        f'base_url = "{fake_llm_in_thread.base_url}"\n'
        'api_key_env = "LOCAL_KEY"\n'
        'models = ["listed-first"]\n',
        encoding="utf-8",
    )
    monkeypatch.setenv("LOCAL_KEY", "sk-local-0123456789")
    thread = _new_thread(cli)
    fake_llm_in_thread.enqueue(Script.reply("configured"))
    result = cli("send", thread.id, "hi")
    assert (result.code, result.out) == (0, "configured\n"), result.err
    request = fake_llm_in_thread.chat_requests[0]
    assert request.body["model"] == "listed-first"
    assert request.headers["authorization"] == "Bearer sk-local-0123456789"
    flagged = cli("--model", "other", "send", thread.id, "again")
    assert flagged.code == 0
    assert fake_llm_in_thread.chat_requests[1].body["model"] == "other"


def test_a_thread_model_wins_over_the_default(cli: Run, llm: FakeLLMServer) -> None:
    thread = _new_thread(cli, "--model", "special")
    assert thread.model == "special"
    llm.enqueue(Script.reply("ok"))
    assert cli("send", thread.id, "hi").code == 0
    assert llm.chat_requests[0].body["model"] == "special"


def test_a_corrupt_database_names_the_path_and_the_next_step(
    cli: Run, tenex_home: Path
) -> None:
    tenex_home.mkdir(parents=True)
    database = tenex_home / "tenex.db"
    database.write_bytes(b"this is not a database, just garbage bytes" * 200)
    result = cli("threads", "list")
    assert result.code == 1
    assert str(database) in result.err
    assert f"sqlite3 {database} .recover" in result.err
    assert result.err.count("\n") == 1
    assert database.read_bytes().startswith(b"this is not a database")


def test_the_backup_is_a_consistent_sqlite_file(cli: Run, tmp_path: Path) -> None:
    _new_thread(cli, "--title", "keep me")
    dest = tmp_path / "copy.db"
    assert cli("backup", str(dest)).code == 0
    with sqlite3.connect(dest) as db:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
