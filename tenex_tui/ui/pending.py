"""What the composer holds before a send: files, knowledge documents and a lead.

A `PendingAttachment` is one chip under the composer. A file chip carries the text the
attachment loader already extracted (the snapshot taken when the user picked it, so a
file changed afterwards is sent as it was, T54); a knowledge or lead chip carries only
the id, and the backend resolves it when the message is sent.

The per-message budgets are the loader's (`AttachmentLimits`): the composer loads one
file at a time, so it applies the message's count, size and text budgets itself, with
the same sentences the loader uses.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from tenex_tui.attachments.limits import AttachmentLimits, format_limit, format_size
from tenex_tui.core.models import KnowledgeDoc, Lead
from tenex_tui.core.payloads import AttachmentInput
from tenex_tui.core.text import sanitize_line

if TYPE_CHECKING:
    from tenex_tui.attachments.loader import LoadedAttachment

AttachmentKind = Literal["file", "knowledge", "lead"]

MAX_KNOWLEDGE_PER_MESSAGE = 10
"""Knowledge documents one message may carry (the engine budgets their text)."""


@dataclass(frozen=True, slots=True)
class PendingAttachment:
    """One chip under the composer, ready to go with the next message."""

    kind: AttachmentKind
    """A file, a knowledge document or a lead."""
    name: str
    """Display name, sanitised to one line."""
    media_type: str
    """The detected type (`text/markdown`, `application/pdf`, …)."""
    size: int
    """Bytes of the original file or document."""
    truncated: bool = False
    """The loader cut the text at its budget."""
    warnings: tuple[str, ...] = ()
    """What the loader changed or left out, in sentences (untrusted: sanitise)."""
    file: AttachmentInput | None = None
    """For a file: the extracted text and its metadata, as sent."""
    ref_id: str | None = None
    """For a knowledge document or a lead: its id."""

    @property
    def text_chars(self) -> int:
        """Characters of extracted text this chip adds to the message."""
        return len(self.file.text) if self.file is not None else 0

    @classmethod
    def from_file(cls, loaded: LoadedAttachment) -> PendingAttachment:
        """A chip for a file the loader read."""
        return cls(
            kind="file",
            name=sanitize_line(loaded.name, max_chars=80),
            media_type=loaded.media_type,
            size=loaded.size,
            truncated=loaded.truncated,
            warnings=tuple(loaded.warnings),
            file=loaded,
        )

    @classmethod
    def from_knowledge(cls, doc: KnowledgeDoc) -> PendingAttachment:
        """A chip for a knowledge document."""
        return cls(
            kind="knowledge",
            name=sanitize_line(doc.title, max_chars=80),
            media_type=doc.media_type,
            size=doc.size,
            ref_id=doc.id,
        )

    @classmethod
    def from_lead(cls, lead: Lead) -> PendingAttachment:
        """A chip for a lead."""
        return cls(
            kind="lead",
            name=sanitize_line(lead.name, max_chars=80),
            media_type="application/json",
            size=0,
            ref_id=lead.id,
        )


@dataclass(frozen=True, slots=True)
class SendParts:
    """The attachments of a message as `send_message` takes them."""

    files: tuple[AttachmentInput, ...] = ()
    knowledge: tuple[str, ...] = ()
    lead: str | None = None


def send_parts(attachments: Sequence[PendingAttachment]) -> SendParts:
    """Split the chips into files, knowledge ids and the lead, in order."""
    files = tuple(a.file for a in attachments if a.kind == "file" and a.file)
    knowledge = tuple(
        a.ref_id for a in attachments if a.kind == "knowledge" and a.ref_id
    )
    leads = [a.ref_id for a in attachments if a.kind == "lead" and a.ref_id]
    return SendParts(
        files=files, knowledge=knowledge, lead=leads[-1] if leads else None
    )


def refusal(
    existing: Sequence[PendingAttachment],
    new: PendingAttachment,
    limits: AttachmentLimits,
) -> str | None:
    """Why `new` cannot join the message's attachments, or None when it fits.

    A lead is never refused here: a message carries one lead, and a new one replaces
    the old (see `add_attachment`).
    """
    if new.kind == "knowledge":
        if any(a.kind == "knowledge" and a.ref_id == new.ref_id for a in existing):
            return f"“{new.name}” is already attached."
        count = sum(1 for a in existing if a.kind == "knowledge")
        if count >= MAX_KNOWLEDGE_PER_MESSAGE:
            return (
                f"At most {MAX_KNOWLEDGE_PER_MESSAGE} knowledge documents can be "
                "attached to one message."
            )
        return None
    if new.kind != "file" or new.file is None:
        return None
    files = [a for a in existing if a.kind == "file" and a.file is not None]
    digest = new.file.sha256
    if digest is not None and any(
        a.file is not None and a.file.sha256 == digest and a.name == new.name
        for a in files
    ):
        return f"{new.name} is already attached."
    if len(files) >= limits.max_files:
        return f"At most {limits.max_files} files can be attached to one message."
    total = sum(a.size for a in files) + new.size
    if total > limits.max_message_bytes:
        return (
            f"{new.name} ({format_size(new.size)}) takes the message to "
            f"{format_size(total)}; the limit per message is "
            f"{format_limit(limits.max_message_bytes)}."
        )
    chars = sum(a.text_chars for a in files) + new.text_chars
    if chars > limits.max_message_chars:
        return (
            f"{new.name} does not fit: the files before it use the message's text "
            f"budget of {limits.max_message_chars:,} characters."
        )
    return None


def add_attachment(
    existing: Sequence[PendingAttachment], new: PendingAttachment
) -> tuple[list[PendingAttachment], PendingAttachment | None]:
    """The chips after adding `new` (already checked with `refusal`).

    Returns:
        The new list, and the lead it replaced (a message carries one lead), if any.
    """
    if new.kind != "lead":
        return [*existing, new], None
    replaced = next((a for a in existing if a.kind == "lead"), None)
    kept = [a for a in existing if a.kind != "lead"]
    return [*kept, new], replaced


_SHORT_TYPES = {
    "text/plain": "text",
    "text/markdown": "Markdown",
    "text/html": "HTML",
    "text/csv": "CSV",
    "text/tab-separated-values": "TSV",
    "application/json": "JSON",
    "application/x-ndjson": "JSON lines",
    "application/pdf": "PDF",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document": "DOCX",
}


def short_type(media_type: str) -> str:
    """A media type as people say it: `PDF`, `Markdown`, `python`."""
    known = _SHORT_TYPES.get(media_type)
    if known is not None:
        return known
    subtype = media_type.rpartition("/")[2].removeprefix("x-")
    return sanitize_line(subtype, max_chars=16) or "file"


def human_size(size: int) -> str:
    """`512 B`, `12 KB`, `1.2 MB`: a size for a chip (short, not a sentence)."""
    if size < 1024:
        return f"{size} B"
    if size < 1024 * 1024:
        return f"{size / 1024:.0f} KB"
    return f"{size / 1024 / 1024:.1f} MB"


def protected_paths(app: object) -> tuple[Path, ...]:
    """The files an app refuses to read as attachments (`TenexApp.protected_paths`:
    tenex-tui's own database and secrets); none for an app that names none."""
    found = getattr(app, "protected_paths", ())
    return tuple(Path(path) for path in found)
