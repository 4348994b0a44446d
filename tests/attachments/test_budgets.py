"""T52: the per-message count, size and text budgets, with a per-file summary."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tenex_tui.attachments import (
    AttachmentLimits,
    AttachmentsRefused,
    load_attachment,
    load_attachments,
    load_attachments_async,
)
from tenex_tui.core.errors import AttachmentError
from tenex_tui.core.payloads import SendMessageBody

Write = Callable[[str, bytes | str], Path]


def test_a_hundred_files_are_refused_before_any_is_read(
    write: Write, monkeypatch: pytest.MonkeyPatch
) -> None:
    paths = [write(f"f{i}.txt", "x") for i in range(100)]
    from tenex_tui.attachments import loader

    monkeypatch.setattr(loader, "_load_one", lambda *a: pytest.fail("a file was read"))

    with pytest.raises(AttachmentsRefused) as caught:
        load_attachments(paths)

    assert str(caught.value) == (
        "100 files were given; at most 10 can be attached to one message"
    )


def test_files_past_the_message_size_budget_are_listed_one_by_one(write: Write) -> None:
    limits = AttachmentLimits(max_file_bytes=1000, max_message_bytes=2048)
    paths = [
        write("a.txt", "a" * 900),
        write("b.txt", "b" * 900),
        write("c.txt", "c" * 900),
        write("d.bin", b"\x00\x01" * 10),
        write("e.txt", "e" * 900),
    ]

    with pytest.raises(AttachmentsRefused) as caught:
        load_attachments(paths, limits=limits)

    error = caught.value
    assert isinstance(error, AttachmentError)
    assert [name for name, _ in error.problems] == ["c.txt", "d.bin", "e.txt"]
    assert str(error) == (
        "3 of 5 files could not be attached:\n"
        "- c.txt (900 bytes) takes the message to 2.7 KB; the limit per message is 2 KB\n"
        "- d.bin (20 bytes) takes the message to 2.7 KB; the limit per message is 2 KB\n"
        "- e.txt (900 bytes) takes the message to 3.6 KB; the limit per message is 2 KB"
    )


def test_each_refused_file_gets_its_own_sentence(write: Write, files: Path) -> None:
    paths = [
        write("ok.txt", "fine"),
        write("img.txt", b"\x89PNG\r\n\x1a\n" + bytes(40)),
        files / "missing.md",
    ]

    with pytest.raises(AttachmentsRefused) as caught:
        load_attachments(paths)

    assert str(caught.value) == (
        "2 of 3 files could not be attached:\n"
        "- img.txt looks like a binary file (image/png); only text, PDF and DOCX can be attached\n"
        "- missing.md was not found"
    )


def test_a_single_file_message_gives_just_its_sentence(files: Path) -> None:
    with pytest.raises(AttachmentsRefused, match=r"^gone\.txt was not found$"):
        load_attachments([files / "gone.txt"])


def test_text_over_the_file_budget_is_cut_explicitly_never_silently(
    write: Write,
) -> None:
    limits = AttachmentLimits(max_file_chars=10)

    loaded = load_attachment(write("long.txt", "0123456789abcdef"), limits=limits)

    assert loaded.truncated
    assert (
        loaded.text
        == "0123456789\n\n[truncated: showing the first 10 of 16 characters]"
    )


def test_the_message_text_budget_is_shared_in_order(write: Write) -> None:
    limits = AttachmentLimits(max_file_chars=10, max_message_chars=15)
    paths = [write("a.txt", "a" * 8), write("b.txt", "b" * 12)]

    first, second = load_attachments(paths, limits=limits)

    assert (first.text, first.truncated) == ("a" * 8, False)
    assert second.truncated
    assert (
        second.text == "b" * 7 + "\n\n[truncated: showing the first 7 of 12 characters]"
    )


def test_a_file_with_no_text_budget_left_is_refused(write: Write) -> None:
    limits = AttachmentLimits(max_file_chars=10, max_message_chars=10)
    paths = [write("a.txt", "a" * 10), write("b.txt", "b")]

    with pytest.raises(AttachmentsRefused) as caught:
        load_attachments(paths, limits=limits)

    assert caught.value.problems == (
        (
            "b.txt",
            "b.txt does not fit: the files before it use the message's text budget "
            "of 10 characters",
        ),
    )


def test_the_same_file_twice_is_two_attachments(write: Write) -> None:
    path = write("twice.txt", "same")
    assert [a.text for a in load_attachments([path, path])] == ["same", "same"]


async def test_loading_off_the_event_loop_gives_the_same_result(write: Write) -> None:
    path = write("async.md", "# async")

    loaded = await load_attachments_async([path])

    assert [a.text for a in loaded] == ["# async"]


def test_a_loaded_attachment_goes_into_a_send_body_without_its_warnings(
    write: Write,
) -> None:
    loaded = load_attachment(write("w.txt", b"caf\xc3\xa9 \xff byte"))
    assert loaded.warnings

    body = SendMessageBody(content="see file", attachments=[loaded])
    wire = body.model_dump(mode="json")

    assert wire["attachments"][0] == {
        "name": "w.txt",
        "kind": "file",
        "media_type": "text/plain",
        "size": 12,
        "sha256": loaded.sha256,
        "text": "café \ufffd byte",
        "truncated": False,
    }
    assert (
        SendMessageBody.model_validate(wire).attachments[0].text == "café \ufffd byte"
    )
