"""Unit tests of the composer's attachments (budgets, one lead, what a send carries),
the chips drawn for them and for stored messages, and the agent in a sidebar row."""

from __future__ import annotations

import io
from datetime import UTC, datetime

from rich.console import Console
from rich.style import Style

from tenex_tui.attachments.limits import AttachmentLimits
from tenex_tui.attachments.loader import LoadedAttachment
from tenex_tui.core.models import Attachment, KnowledgeDoc, Lead, Message, Thread
from tenex_tui.ui.pending import (
    MAX_KNOWLEDGE_PER_MESSAGE,
    PendingAttachment,
    add_attachment,
    human_size,
    refusal,
    send_parts,
    short_type,
)
from tenex_tui.ui.widgets.attachment_chips import (
    PENDING_NOTE,
    ChipRow,
    is_pending,
    message_extras,
    pending_chip,
)
from tenex_tui.ui.widgets.thread_rows import (
    COMPONENTS,
    RowPalette,
    ThreadRow,
    draw_thread_row,
)

NOW = datetime(2026, 1, 15, 12, 0, tzinfo=UTC)
STYLES = {"meta": Style(), "warning": Style(), "error": Style()}


def _file(
    name: str, text: str = "x", size: int = 10, sha: str = "s"
) -> PendingAttachment:
    return PendingAttachment.from_file(
        LoadedAttachment(name=name, size=size, text=text, sha256=sha + name)
    )


def _doc(doc_id: str, title: str = "Doc") -> PendingAttachment:
    return PendingAttachment.from_knowledge(
        KnowledgeDoc(id=doc_id, title=title, size=5, created_at=NOW)
    )


def _lead(lead_id: str, name: str) -> PendingAttachment:
    return PendingAttachment.from_lead(Lead(id=lead_id, name=name, created_at=NOW))


def test_files_are_refused_past_the_message_budgets_in_plain_sentences() -> None:
    limits = AttachmentLimits(max_files=2, max_message_bytes=100, max_message_chars=8)
    one = _file("a.txt", text="abc", size=40)
    assert refusal([], one, limits) is None
    two = _file("b.txt", text="abc", size=40)
    assert refusal([one], two, limits) is None
    third = _file("c.txt", text="a", size=1)
    assert refusal([one, two], third, limits) == (
        "At most 2 files can be attached to one message."
    )
    big = _file("big.txt", text="a", size=70)
    sentence = refusal([one], big, limits)
    assert sentence is not None and sentence.startswith("big.txt (70 bytes) takes")
    assert "the limit per message is 100 bytes" in sentence
    wordy = _file("wordy.txt", text="123456", size=1)
    sentence = refusal([one], wordy, limits)
    assert sentence is not None and "text budget of 8 characters" in sentence
    again = _file("a.txt", text="abc", size=40)
    assert refusal([one], again, limits) == "a.txt is already attached."


def test_knowledge_is_attached_once_and_a_new_lead_replaces_the_old() -> None:
    limits = AttachmentLimits()
    doc = _doc("doc_1", "Pricing")
    assert refusal([doc], _doc("doc_1", "Pricing"), limits) == (
        "“Pricing” is already attached."
    )
    many = [_doc(f"doc_{i}") for i in range(MAX_KNOWLEDGE_PER_MESSAGE)]
    assert refusal(many, _doc("doc_x"), limits) is not None
    first, second = _lead("lead_1", "Dana"), _lead("lead_2", "Lee")
    assert refusal([first], second, limits) is None
    items, replaced = add_attachment([doc, first], second)
    assert items == [doc, second] and replaced == first
    items, replaced = add_attachment([doc], first)
    assert items == [doc, first] and replaced is None


def test_a_send_splits_chips_into_files_knowledge_ids_and_the_lead() -> None:
    one, two = _file("a.txt"), _file("b.txt")
    parts = send_parts([one, _doc("doc_1"), two, _lead("lead_9", "Dana")])
    assert [f.name for f in parts.files] == ["a.txt", "b.txt"]
    assert parts.knowledge == ("doc_1",)
    assert parts.lead == "lead_9"
    assert send_parts([]).lead is None


def test_chip_text_is_sanitised_and_marks_warnings() -> None:
    hostile = PendingAttachment.from_file(
        LoadedAttachment(
            name="\x1b]52;c;ZXZpbA==\x07[b]x[/b].md",
            media_type="text/markdown",
            size=2048,
            text="t",
            warnings=("x.md had 2 hidden characters removed",),
        )
    )
    chip = pending_chip(hostile, Style(), Style())
    assert "\x1b" not in chip.plain and "\x07" not in chip.plain
    assert "[b]x[/b].md" in chip.plain
    assert chip.plain.startswith(" ▤ ") and "· Markdown · 2 KB" in chip.plain
    assert chip.plain.rstrip().endswith("⚠")
    lead = pending_chip(_lead("lead_1", "Dana"), Style(), Style())
    assert lead.plain.strip() == "@ Dana · lead"
    row = ChipRow([chip, lead])
    assert "  @ Dana" in row.plain
    console = Console(width=30, record=True, color_system=None, file=io.StringIO())
    console.print(row)
    lines = console.export_text().splitlines()
    # Wrapped between the chips, never inside one; the wide one is cut with "…".
    assert len(lines) == 2 and lines[1].strip() == "@ Dana · lead"
    assert lines[0].rstrip().endswith("…")


def test_short_types_and_sizes() -> None:
    assert short_type("application/pdf") == "PDF"
    assert short_type("text/x-python") == "python"
    assert short_type("weird") == "weird"
    assert (human_size(12), human_size(2048), human_size(3 * 1024 * 1024)) == (
        "12 B",
        "2 KB",
        "3.0 MB",
    )


def _message(**fields: object) -> Message:
    base: dict[str, object] = {
        "id": "msg_1",
        "thread_id": "thr_1",
        "role": "user",
        "content": "hi",
        "created_at": NOW,
    }
    base.update(fields)
    return Message.model_validate(base)


def _plain(parts: list[object]) -> list[str]:
    return [getattr(part, "plain", "") for part in parts]


def test_a_message_shows_its_chips_and_says_when_one_was_cut() -> None:
    message = _message(
        attachments=[
            Attachment(
                id="att_1",
                name="deck.pdf",
                media_type="application/pdf",
                size=1_500_000,
                truncated=True,
            ),
            Attachment(id="att_2", kind="knowledge", name="FAQ", size=10),
        ]
    )
    lines = _plain(message_extras(message, STYLES))
    assert "▤ deck.pdf · PDF · 1.4 MB ⚠" in lines[0]
    assert "§ FAQ · knowledge" in lines[0]
    assert lines[1].startswith("⚠ cut to fit")
    assert message_extras(_message(), STYLES) == []


def test_an_offline_message_is_pending_until_sent_or_shows_why_not() -> None:
    waiting = _message(id="msg_local_0001")
    assert is_pending(waiting)
    assert _plain(message_extras(waiting, STYLES)) == [PENDING_NOTE]
    refused = _message(id="msg_local_0002", error="Not sent: the thread was deleted")
    assert not is_pending(refused)
    assert _plain(message_extras(refused, STYLES)) == [
        "✗ Not sent: the thread was deleted"
    ]
    assert not is_pending(_message(id="msg_0003"))
    assert not is_pending(_message(id="msg_local_0004", role="assistant"))


def _row(agent: str | None, title: str = "Short") -> ThreadRow:
    thread = Thread(
        id="thr_1",
        workspace_id="w",
        user_id="u",
        title=title,
        agent=agent,
        created_at=NOW,
        updated_at=NOW,
    )
    return ThreadRow.from_thread(thread)


def _draw(row: ThreadRow, width: int) -> str:
    palette = RowPalette(Style(), dict.fromkeys(COMPONENTS, Style()))
    strip = draw_thread_row(
        row.data(), width=width, when="5m", palette=palette, marked=False
    )
    return "".join(segment.text for segment in strip)


def test_a_sidebar_row_shows_the_threads_agent_when_there_is_room() -> None:
    assert "Short · lead-triage" in _draw(_row("lead-triage"), 36)
    assert "·" not in _draw(_row(None), 36)
    narrow = _draw(_row("lead-triage", "A much longer thread title"), 24)
    assert "lead-triage" not in narrow and "A much longer" in narrow
    hostile = _row("\x1b[31mred[0m-agent-with-a-long-slug")
    assert hostile.agent is not None and "\x1b" not in hostile.agent
    assert len(hostile.agent) <= 12
    fresher = _row("brand-writer")
    row = _row(None)
    row.update_from(fresher)
    assert row.agent == "brand-writer"
