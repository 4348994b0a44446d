"""The command line itself: commands, options, usage errors and exit statuses."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest

from tenex_tui import __version__
from tenex_tui.cli import COMMAND_MODULES, build_parser, main


def test_every_command_module_registers_its_commands() -> None:
    parser = build_parser()
    help_text = parser.format_help()
    for name in ("threads", "send", "search", "models", "export", "backup"):
        assert name in COMMAND_MODULES
        assert name in help_text
    for name in COMMAND_MODULES:
        module = importlib.import_module(f"tenex_tui.cli.cmd_{name}")
        assert callable(module.register)


@pytest.mark.parametrize(
    "argv",
    [
        [
            "threads",
            "list",
            "--archived",
            "--pinned",
            "--agent",
            "a",
            "--query",
            "q",
            "--limit",
            "5",
            "--cursor",
            "c",
            "--json",
        ],
        ["threads", "list", "--all"],
        [
            "threads",
            "new",
            "--title",
            "T",
            "--system-prompt",
            "S",
            "--agent",
            "a",
            "--model",
            "m",
            "--json",
        ],
        ["threads", "show", "thr_1", "--json", "--raw"],
        ["threads", "rename", "thr_1", "New title"],
        ["threads", "pin", "thr_1"],
        ["threads", "unpin", "thr_1"],
        ["threads", "archive", "thr_1"],
        ["threads", "unarchive", "thr_1"],
        ["threads", "delete", "thr_1", "--yes"],
        ["send", "thr_1", "hello", "--json"],
        ["send", "thr_1", "-"],
        ["send", "thr_1"],
        ["search", "fox", "--limit", "3", "--json"],
        ["models", "--json"],
        ["export", "thr_1", "--format", "json", "--output", "out.json", "--raw"],
        ["backup", "out.db", "--force"],
        ["--home", "/tmp/h", "--model", "m", "--provider", "p", "threads", "list"],
    ],
)
def test_the_contracted_command_lines_parse(argv: list[str]) -> None:
    args = build_parser().parse_args(argv)
    assert callable(args.handler)


def test_the_thread_model_option_does_not_clobber_the_global_model() -> None:
    args = build_parser().parse_args(
        ["--model", "global", "threads", "new", "--model", "per-thread"]
    )
    assert args.model == "global"
    assert args.thread_model == "per-thread"


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"tenex-tui {__version__}"


def test_there_is_no_api_key_flag(capsys: pytest.CaptureFixture[str]) -> None:
    """T44: keys come from the environment only, never from argv."""
    secret = "sk-CANARYflagvalue123456"
    assert main(["--api-key", secret, "threads", "list"]) == 2
    assert main(["threads", "list", f"--api-key={secret}"]) == 2
    err = capsys.readouterr().err
    assert err.count("there is no --api-key option") == 2
    assert "CANARY" not in err
    assert "--api-key" not in build_parser().format_help()
    for action in build_parser()._actions:
        assert not any("key" in option for option in action.option_strings)


@pytest.mark.parametrize(
    "argv",
    [
        ["threads", "list", "--archived", "--all"],
        ["threads", "list", "--limit", "0"],
        ["search", "x", "--limit", "many"],
        ["threads"],
        ["threads", "rename", "thr_1"],
        ["export", "thr_1", "--format", "pdf"],
        ["nope"],
    ],
)
def test_usage_errors_exit_2(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(argv) == 2
    assert "usage:" in capsys.readouterr().err


def test_usage_errors_never_echo_a_key(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["sk-CANARYpositional123456", "threads"]) == 2
    assert main(["threads", "list", "--limit", "tnx_test_CANARYSECRET1234"]) == 2
    err = capsys.readouterr().err
    assert "CANARY" not in err
    assert "sk-****" in err


def test_help_exits_0(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["threads", "list", "--help"]) == 0
    assert "--archived" in capsys.readouterr().out


def test_a_malformed_config_exits_2_naming_file_and_line(
    tenex_home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tenex_home.mkdir(parents=True)
    config = tenex_home / "config.toml"
    config.write_text('model = "m"\n[ui]\nshow_sidebar = \n', encoding="utf-8")
    assert main(["threads", "list"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == f"tenex-tui: {config} line 3: invalid TOML: Invalid value\n"


def test_a_wrong_type_exits_2_naming_the_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    home = tmp_path / "elsewhere"
    home.mkdir()
    (home / "config.toml").write_text("[ui]\nshow_sidebar = 3\n", encoding="utf-8")
    assert main(["--home", str(home), "search", "x"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"tenex-tui: {home / 'config.toml'} line 2: ui.show_sidebar:")
    assert err.count("\n") == 1


def test_an_unknown_provider_flag_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--provider", "nope", "threads", "list"]) == 2
    assert "unknown provider 'nope'" in capsys.readouterr().err


def test_send_without_a_model_exits_2_with_the_way_out(
    tenex_home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["send", "thr_1", "hello"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("tenex-tui: no model configured: set OPENAI_API_KEY, or ")
    assert "OPENAI_BASE_URL for a local Ollama/llama.cpp/LM Studio server" in err
    assert str(tenex_home / "config.toml") in err
    # Nothing was created: the check runs before the database is opened.
    assert not (tenex_home / "tenex.db").exists()


def test_send_with_an_empty_message_is_a_usage_error(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9/v1")
    assert main(["send", "thr_1", "   "]) == 2
    assert capsys.readouterr().err == "tenex-tui: the message is empty\n"


def test_backup_refuses_to_overwrite(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    dest = tmp_path / "existing.db"
    dest.write_bytes(b"precious")
    assert main(["backup", str(dest)]) == 1
    assert "exists; use --force" in capsys.readouterr().err
    assert dest.read_bytes() == b"precious"


def test_models_without_a_provider_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["models"]) == 2
    assert "no model configured" in capsys.readouterr().err


def test_plain_http_to_another_machine_warns_only_when_a_model_is_used(
    tenex_home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tenex_home.mkdir(parents=True)
    (tenex_home / "config.toml").write_text(
        '[providers.lan]\nbase_url = "http://192.168.1.20:8080/v1"\n', encoding="utf-8"
    )
    assert main(["threads", "list"]) == 0
    assert "plain HTTP" not in capsys.readouterr().err
    # The thread does not exist, so nothing reaches the (unreachable) LAN server.
    assert main(["send", "thr_missing", "hello"]) == 1
    err = capsys.readouterr().err.splitlines()
    assert err[0] == (
        "tenex-tui: warning: provider 'lan' uses plain HTTP to 192.168.1.20: prompts, "
        "replies and the key cross the network unencrypted"
    )
    assert err[1].startswith("tenex-tui: ") and "not found" in err[1]
