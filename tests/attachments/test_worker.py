"""The parser child process: limits, kills, and a protocol that cannot be spoofed."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import pytest

from tenex_tui.attachments import AttachmentLimits
from tenex_tui.attachments.limits import MIB
from tenex_tui.attachments.worker import _decode_reply, run_parser
from tenex_tui.core.errors import AttachmentError

HOGS = "tests.attachments.hogs"


def test_a_child_that_never_answers_is_killed_at_the_timeout() -> None:
    limits = AttachmentLimits(parser_timeout=0.5)

    with pytest.raises(AttachmentError) as caught:
        run_parser("sleep", b"", name="report.pdf", limits=limits, module=HOGS)  # type: ignore[arg-type]

    assert str(caught.value) == "report.pdf took too long to read (over 0.5 s)"


def test_the_memory_limit_applies_inside_the_child() -> None:
    limits = AttachmentLimits(parser_memory_bytes=256 * MIB)

    with pytest.raises(AttachmentError) as caught:
        run_parser("allocate", b"", name="big.pdf", limits=limits, module=HOGS)  # type: ignore[arg-type]

    assert str(caught.value) == "big.pdf needs too much memory to read (over 256 MB)"


@pytest.mark.parametrize("kind", ["garbage", "crash"])
def test_a_child_that_answers_badly_or_dies_gives_a_plain_sentence(kind: str) -> None:
    with pytest.raises(AttachmentError) as caught:
        run_parser(kind, b"", name="x.docx", limits=AttachmentLimits(), module=HOGS)  # type: ignore[arg-type]

    assert (
        str(caught.value)
        == "x.docx could not be read (the reader stopped unexpectedly)"
    )


def test_the_child_reads_the_payload_from_stdin_and_limits_from_argv() -> None:
    payload = b"%PDF-1.4 snapshot bytes" * 1000

    result = run_parser(
        "payload", payload, name="p.pdf", limits=AttachmentLimits(), module=HOGS
    )  # type: ignore[arg-type]

    assert result.text == hashlib.sha256(payload).hexdigest()
    config = json.loads(result.warnings[0].split(" --config ", 1)[1])
    assert config["memory_bytes"] == 512 * MIB
    assert config["text_cap"] == 200_000
    assert config["soft_seconds"] == pytest.approx(8.0)


def test_the_child_gets_no_secrets_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-not-for-children")
    monkeypatch.setenv("TENEX_API_KEY", "tnx_abc_secret")

    result = run_parser(
        "env",  # type: ignore[arg-type]
        b"",
        name="e.pdf",
        limits=AttachmentLimits(),
        module=HOGS,
    )

    names = set(json.loads(result.text))
    assert "PYTHONPATH" in names
    assert not names & {"OPENAI_API_KEY", "TENEX_API_KEY", "TENEX_HOME"}


def test_the_real_worker_refuses_an_unknown_kind() -> None:
    with pytest.raises(AttachmentError, match=r"^x is of an unknown kind$"):
        run_parser("exe", b"", name="x", limits=AttachmentLimits())  # type: ignore[arg-type]


def test_the_worker_module_runs_from_any_directory(tmp_path: Path) -> None:
    config = json.dumps(
        {
            "text_cap": 100,
            "soft_seconds": 5,
            "memory_bytes": 512 * MIB,
            "cpu_seconds": 10,
            "zip_max_unpacked_bytes": 50 * MIB,
            "zip_max_entries": 1000,
            "zip_max_ratio": 100,
            "zip_max_directory_bytes": MIB,
        }
    )
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "tenex_tui.attachments.worker",
            "html",
            "--config",
            config,
        ],
        input=b"<p>hi <b>there</b></p>",
        capture_output=True,
        cwd=tmp_path,
        timeout=30,
        check=True,
    )
    assert json.loads(out.stdout) == {
        "ok": True,
        "text": "hi there",
        "total_chars": 8,
        "hidden": 0,
        "warnings": [],
        "note": None,
    }


@pytest.mark.parametrize(
    ("out", "code", "expected"),
    [
        (
            b'{"ok": true, "text": 5}',
            0,
            "x.pdf could not be read (the reader answered badly)",
        ),
        (b'{"ok": false, "code": "damaged"}', 0, "x.pdf could not be read"),
        (b'{"ok": false, "reason": "is encrypted"}', 0, "x.pdf is encrypted"),
        (
            b'{"ok": true, "text": "t", "total_chars": 1}',
            1,
            "x.pdf could not be read (the reader stopped unexpectedly)",
        ),
        (b"", -24, "x.pdf took too long to read (over 10 s)"),
        (b"\xff\xfe", 0, "x.pdf could not be read (the reader stopped unexpectedly)"),
    ],
)
def test_replies_are_validated_before_use(out: bytes, code: int, expected: str) -> None:
    with pytest.raises(AttachmentError) as caught:
        _decode_reply(out, code, name="x.pdf", limits=AttachmentLimits())
    assert str(caught.value) == expected
