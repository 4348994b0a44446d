"""Snapshot tests of the workspace features: attachments, the knowledge browser, agents,
and a remote workspace that is offline.

The app is the production `TenexApp` on the deterministic demo workspace with its extras
(`demo_factory(..., extras=True)`: knowledge documents, leads, threads bound to agents,
a message with a file, a document and a lead attached). The remote one runs against the
project's own server on 127.0.0.1 (in a background thread) with the network cut.

Update with `pytest tests/snapshots --snapshot-update`, then *look* at the SVGs.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

import pytest
from textual.pilot import Pilot
from textual.widgets import Select

from tenex_tui.attachments import load_attachment
from tenex_tui.ui.app import TenexApp
from tenex_tui.ui.pending import PendingAttachment
from tenex_tui.ui.screens import workspace
from tenex_tui.ui.screens.knowledge import KnowledgeScreen
from tenex_tui.ui.screens.modals import NewThreadModal
from tenex_tui.ui.screens.pickers import FilePickerModal, RecordPickerModal
from tests.support.demo_workspace import (
    DEMO_NOW,
    REMOTE_NOW,
    DemoApp,
    demo_factory,
    freeze,
    offline_remote_factory,
    seed_remote,
    send_offline,
    until,
)
from tests.support.demo_workspace import ready as demo_ready
from tests.support.demo_workspace import show as demo_show
from tests.support.threaded_stack import ThreadedStack, threaded_stack

pytestmark = pytest.mark.snapshot

SnapCompare = Callable[..., bool]
RunBefore = Callable[[Pilot[None]], Awaitable[None]]

NORMAL = (120, 36)


def _app(tmp_path: Path) -> tuple[TenexApp, DemoApp]:
    factory, holder = demo_factory(tmp_path / "demo.db", extras=True)
    return TenexApp(factory, now=lambda: DEMO_NOW), holder


def _files(folder: Path) -> dict[str, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    brief = folder / "launch-brief.md"
    brief.write_text(
        "# Launch brief\n\nDrafts ships on March 3. Lead with the time saved.\n",
        encoding="utf-8",
    )
    # Unicode tag characters are invisible instructions: the loader strips them and
    # says so, and the chip carries a ⚠.
    tagged = folder / "competitors.txt"
    tagged.write_text(
        "Globex: cheaper, slower onboarding.\U000e0049\U000e0067\U000e006e\n",
        encoding="utf-8",
    )
    (folder / "notes").mkdir(exist_ok=True)
    (folder / "pricing.csv").write_text("plan,seat\nStarter,12\nTeam,29\n", "utf-8")
    return {"brief": brief, "tagged": tagged}


class TestAttachments:
    def test_chips_under_the_composer(
        self, snap_compare: SnapCompare, tmp_path: Path
    ) -> None:
        """You should see the pricing thread, your draft "Compare these with our
        pricing" in the composer, and under it four chips: ▤ launch-brief.md ·
        Markdown, ▤ competitors.txt · text ⚠, § Pricing FAQ · knowledge and
        @ Dana Whitfield · lead. The chips row has focus: the second chip is
        highlighted and its warning (hidden characters removed) is spelled out, with
        "Delete removes it"."""
        app, holder = _app(tmp_path)
        files = _files(tmp_path / "files")

        async def run_before(pilot: Pilot[None]) -> None:
            await demo_ready(pilot)
            assert holder.demo is not None
            app = await demo_show(pilot, holder.demo.pricing)
            chat = app.chat
            chat.composer.focus()
            chat.composer.set_text("Compare these with our pricing")
            for path in (files["brief"], files["tagged"]):
                chat.add_pending(PendingAttachment.from_file(load_attachment(path)))
            assert holder.engine is not None
            doc = await holder.engine.get_knowledge(holder.demo.docs[1])
            lead = await holder.engine.get_lead(holder.demo.leads[0])
            chat.add_pending(PendingAttachment.from_knowledge(doc))
            chat.add_pending(PendingAttachment.from_lead(lead))
            app.clear_notifications()
            await pilot.press("tab", "right")
            await pilot.pause()
            freeze(pilot)

        assert snap_compare(app, terminal_size=NORMAL, run_before=run_before)

    def test_file_picker(
        self, snap_compare: SnapCompare, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """You should see the "Attach a file" dialog: a path box with "l" typed and
        "launch-brief.md" offered in grey, the folder tree of "files" (a notes
        folder, then competitors.txt, launch-brief.md, pricing.csv), and the keys:
        Tab completes, Enter picks, ↓ the tree, Ctrl+G / Ctrl+L for the other
        kinds."""
        app, holder = _app(tmp_path)
        _files(tmp_path / "files")
        monkeypatch.chdir(tmp_path)

        async def run_before(pilot: Pilot[None]) -> None:
            await demo_ready(pilot)
            assert holder.demo is not None
            app = await demo_show(pilot, holder.demo.pricing)
            app.chat.files_root = Path("files")
            app.chat.composer.focus()
            await pilot.press("ctrl+o")
            await until(pilot, lambda: isinstance(app.screen, FilePickerModal))
            tree = app.screen.query_one("#tree")
            await until(pilot, lambda: len(tree.root.children) == 4)  # type: ignore[attr-defined]
            await pilot.press("l")
            box = app.screen.query_one("#path")
            await until(pilot, lambda: bool(getattr(box, "_suggestion", "")))
            await pilot.pause(0.1)
            freeze(pilot)

        assert snap_compare(app, terminal_size=NORMAL, run_before=run_before)

    def test_knowledge_picker(self, snap_compare: SnapCompare, tmp_path: Path) -> None:
        """You should see "Attach a knowledge document" with "faq" typed and the one
        matching document, Pricing FAQ (Markdown · size · chunks ·
        sales/pricing-faq.md), highlighted."""
        app, holder = _app(tmp_path)

        async def run_before(pilot: Pilot[None]) -> None:
            await demo_ready(pilot)
            assert holder.demo is not None
            app = await demo_show(pilot, holder.demo.pricing)
            app.chat.composer.focus()
            await pilot.press("ctrl+g")
            await until(pilot, lambda: isinstance(app.screen, RecordPickerModal))
            picker = app.screen
            assert isinstance(picker, RecordPickerModal)
            await pilot.press("f", "a", "q")
            await until(pilot, lambda: len(picker.records) == 1)
            await pilot.pause(0.1)
            freeze(pilot)

        assert snap_compare(app, terminal_size=NORMAL, run_before=run_before)

    def test_chips_on_a_message_and_the_agent(
        self, snap_compare: SnapCompare, tmp_path: Path
    ) -> None:
        """You should see the "Triage: Dana Whitfield (Acme Corp)" thread: the header
        says "lead-triage"; your message has three chips (▤ call-notes.md ·
        Markdown, § Pricing FAQ · knowledge, @ Dana Whitfield · lead); the reply shows
        its get_lead call and the triage. In the sidebar the thread's row ends with
        "· lead-triage", and "Launch email in our voice" with "· brand-writer"."""
        app, holder = _app(tmp_path)

        async def run_before(pilot: Pilot[None]) -> None:
            await demo_ready(pilot)
            assert holder.demo is not None
            await demo_show(pilot, holder.demo.triage)

        assert snap_compare(app, terminal_size=NORMAL, run_before=run_before)


class TestKnowledgeBrowser:
    def test_documents_with_one_shown(
        self, snap_compare: SnapCompare, tmp_path: Path
    ) -> None:
        """You should see the knowledge browser on its Knowledge tab: the four
        documents, newest first (Ideal customer profile, Pricing FAQ, Brand voice
        guide, Battlecard: Globex), each with its type, size and chunks, and on the
        right the second one, Pricing FAQ, with its source and text."""
        app, _ = _app(tmp_path)

        async def run_before(pilot: Pilot[None]) -> None:
            app = await demo_ready(pilot)
            await pilot.press("f2")
            await until(pilot, lambda: isinstance(app.screen, KnowledgeScreen))
            screen = app.screen
            assert isinstance(screen, KnowledgeScreen)
            await until(pilot, lambda: len(screen.docs) == 4)
            await pilot.press("down", "enter")
            await until(pilot, lambda: screen.shown is not None)
            await pilot.pause(0.1)
            freeze(pilot)

        assert snap_compare(app, terminal_size=NORMAL, run_before=run_before)

    def test_text_search(self, snap_compare: SnapCompare, tmp_path: Path) -> None:
        """You should see "price pricing" in the search box and the matching passages
        listed (Pricing FAQ and the Globex battlecard), the first one opened on the
        right under "Matched in passage 1"."""
        app, _ = _app(tmp_path)

        async def run_before(pilot: Pilot[None]) -> None:
            app = await demo_ready(pilot)
            await pilot.press("f2")
            await until(pilot, lambda: isinstance(app.screen, KnowledgeScreen))
            screen = app.screen
            assert isinstance(screen, KnowledgeScreen)
            await until(pilot, lambda: len(screen.docs) == 4)
            await pilot.press("slash")
            for key in "price pricing":
                await pilot.press("space" if key == " " else key)
            await pilot.press("enter")
            await until(pilot, lambda: bool(screen.hits))
            await pilot.press("enter")
            await until(pilot, lambda: screen.shown is not None)
            await pilot.pause(0.1)
            freeze(pilot)

        assert snap_compare(app, terminal_size=NORMAL, run_before=run_before)

    def test_leads(self, snap_compare: SnapCompare, tmp_path: Path) -> None:
        """You should see the Leads tab: four leads with their company, title and
        email, and Dana Whitfield's fields on the right (company, title, email,
        stage, seats)."""
        app, _ = _app(tmp_path)

        async def run_before(pilot: Pilot[None]) -> None:
            app = await demo_ready(pilot)
            await pilot.press("f3")
            await until(pilot, lambda: isinstance(app.screen, KnowledgeScreen))
            screen = app.screen
            assert isinstance(screen, KnowledgeScreen)
            await until(pilot, lambda: len(screen.leads) == 4)
            await pilot.press("end", "enter")
            await until(pilot, lambda: screen.shown is not None)
            await pilot.pause(0.1)
            freeze(pilot)

        assert snap_compare(app, terminal_size=NORMAL, run_before=run_before)


class TestAgents:
    def test_agent_picker_shows_level_and_description(
        self, snap_compare: SnapCompare, tmp_path: Path
    ) -> None:
        """You should see the New thread dialog with "Lead triage" chosen and, under
        the picker, what it is: "Lead triage · associate", its description (triage
        inbound leads: fit, urgency, next step) and its tools (search_knowledge,
        get_lead)."""
        app, _ = _app(tmp_path)

        async def run_before(pilot: Pilot[None]) -> None:
            app = await demo_ready(pilot)
            await pilot.press("n")
            await until(pilot, lambda: isinstance(app.screen, NewThreadModal))
            app.screen.query_one("#agent", Select).value = "lead-triage"
            await pilot.pause(0.2)
            freeze(pilot)

        assert snap_compare(app, terminal_size=NORMAL, run_before=run_before)


# --- a remote workspace, offline ---------------------------------------------------


@pytest.fixture
def served(tmp_path: Path) -> Iterator[ThreadedStack]:
    """The project's server over a real engine, in a background thread."""
    with threaded_stack(tmp_path / "server") as running:
        yield running


class TestRemote:
    def test_offline_header_and_a_pending_message(
        self,
        snap_compare: SnapCompare,
        served: ThreadedStack,
        tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        """You should see a remote workspace whose network is cut: the header says
        "Acme · offline · 1 pending · synced 4 min ago" (no "no model"), the banner
        says the workspace is shown as last synced and that what you send waits, and
        in "Q1 plan" your message "ship it" with "◷ pending — will send when online"
        under it — no error, no retry."""
        monkeypatch.setenv("TZ", "UTC")  # the banner names the sync in local time
        time.tzset()
        monkeypatch.setattr(workspace, "SYNC_FIRST_DELAY", 1e6)
        thread_id = served.call(lambda stack: seed_remote(stack.scoped("a1")))
        factory = offline_remote_factory(
            served.base_url, served.stack.keys["a1"], tmp_path / "mirror.db"
        )
        app = TenexApp(factory, now=lambda: REMOTE_NOW)

        async def run_before(pilot: Pilot[None]) -> None:
            await send_offline(pilot, thread_id, "ship it")

        try:
            assert snap_compare(app, terminal_size=NORMAL, run_before=run_before)
        finally:
            monkeypatch.undo()
            time.tzset()
