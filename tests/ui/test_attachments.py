"""Pilot tests of attachments in the composer: files (picked, loaded off the event loop,
refused in plain sentences), knowledge documents and leads (pickers that filter as you
type), chips (removed by keyboard), and what a send carries — on the real engine."""

from __future__ import annotations

import io
from pathlib import Path

from rich.console import Console
from textual.app import App, ComposeResult
from textual.pilot import Pilot
from textual.widgets import Static

from tenex_tui.engine.engine import LocalEngine
from tenex_tui.ui.app import TenexApp
from tenex_tui.ui.screens.pickers import (
    FilePickerModal,
    RecordPickerModal,
    SafeDirectoryTree,
    complete_path,
)
from tenex_tui.ui.widgets.attachment_chips import AttachmentChips
from tenex_tui.ui.widgets.composer import Composer
from tenex_tui.ui.widgets.message_view import MessageView
from tests.support.scripted_llm import ScriptedLLM
from tests.ui.harness import make_app, ready, settle, shown, wait_until


async def _type(pilot: Pilot[None], text: str) -> None:
    for char in text:
        await pilot.press("space" if char == " " else char)


async def _open(pilot: Pilot[None], app: TenexApp, thread_id: str) -> None:
    app.chat.threads.select(thread_id)
    await pilot.press("enter")
    await shown(pilot, thread_id)
    await wait_until(pilot, lambda: isinstance(app.focused, Composer), "composer")


async def _attach_file(pilot: Pilot[None], app: TenexApp, path: Path) -> None:
    await pilot.press("ctrl+o")
    await wait_until(pilot, lambda: isinstance(app.screen, FilePickerModal), "picker")
    app.screen.query_one("#path").value = str(path)  # type: ignore[attr-defined]
    await pilot.press("enter")
    await wait_until(pilot, lambda: app.screen is app.chat, "the picker to close")


def _notes(app: TenexApp) -> list[str]:
    return [str(n.message) for n in app._notifications]


async def test_a_picked_file_becomes_a_chip_and_goes_with_the_next_message(
    engine: LocalEngine, llm: ScriptedLLM, tmp_path: Path
) -> None:
    thread = await engine.create_thread(title="Files")
    brief = tmp_path / "brief.md"
    brief.write_text("# Brief\n\nLaunch on **March 3**.\n", encoding="utf-8")
    llm.enqueue("Got it.")
    async with make_app(engine).run_test() as pilot:
        app = await ready(pilot)
        await _open(pilot, app, thread.id)
        await _type(pilot, "Read this")
        await _attach_file(pilot, app, brief)
        chips = app.chat.chips
        await wait_until(pilot, lambda: len(chips.items) == 1, "the chip")
        assert chips.display
        item = chips.items[0]
        assert (item.kind, item.name, item.media_type) == (
            "file",
            "brief.md",
            "text/markdown",
        )
        assert item.size == brief.stat().st_size
        assert app.chat.composer.text == "Read this"  # the draft is untouched
        assert isinstance(app.focused, Composer)
        await pilot.press("enter")
        await wait_until(pilot, lambda: len(_finished(app)) == 2, "the reply")
        await settle(pilot)
        stored = (await engine.list_messages(thread.id)).items[0]
        assert stored.content == "Read this"
        assert [(a.kind, a.name, a.media_type) for a in stored.attachments] == [
            ("file", "brief.md", "text/markdown")
        ]
        assert "March 3" in "".join(str(turn) for turn in llm.calls[-1].turns)
        assert not chips.items and not chips.display
        assert app.chat.composer.attachments == []


def _finished(app: TenexApp) -> list[MessageView]:
    return [view for view in app.chat.pane.views if isinstance(view, MessageView)]


async def test_a_refused_file_is_explained_in_a_sentence_and_the_draft_is_kept(
    engine: LocalEngine, tmp_path: Path
) -> None:
    thread = await engine.create_thread(title="Refusals")
    binary = tmp_path / "photo.bin"
    binary.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4)
    async with make_app(engine).run_test() as pilot:
        app = await ready(pilot)
        await _open(pilot, app, thread.id)
        await _type(pilot, "keep me")
        await _attach_file(pilot, app, binary)
        await wait_until(
            pilot,
            lambda: any("photo.bin" in note for note in _notes(app)),
            "the refusal",
        )
        refusal = next(note for note in _notes(app) if "photo.bin" in note)
        assert "binary" in refusal
        assert app.chat.composer.text == "keep me"
        assert app.chat.chips.items == []
        # A missing file too: one sentence naming it, nothing else changes.
        await _attach_file(pilot, app, tmp_path / "nope.txt")
        await wait_until(
            pilot, lambda: any("nope.txt" in n for n in _notes(app)), "missing"
        )
        assert app.chat.composer.text == "keep me"
        assert app.chat.chips.items == []


async def test_the_apps_own_database_is_refused_before_it_is_opened(
    engine: LocalEngine, tmp_path: Path
) -> None:
    # The CLI gives the app `Paths.own_files`; the loader refuses them by real path,
    # before opening (a second descriptor of the live database, once closed, would
    # drop this process's SQLite locks).
    thread = await engine.create_thread(title="Own files")
    database = tmp_path / "tenex.db"
    assert database.exists()

    async def factory() -> LocalEngine:
        return engine

    app = TenexApp(factory, own_backend=False, protected_paths=(database,))
    async with app.run_test() as pilot:
        await ready(pilot)
        await _open(pilot, app, thread.id)
        await _type(pilot, "keep me")
        await _attach_file(pilot, app, database)
        await wait_until(
            pilot, lambda: any("tenex.db" in n for n in _notes(app)), "the refusal"
        )
        refusal = next(note for note in _notes(app) if "tenex.db" in note)
        assert "one of tenex-tui's own files" in refusal
        assert app.chat.composer.text == "keep me"
        assert app.chat.chips.items == []
    assert (await engine.get_thread(thread.id)).title == "Own files"


async def test_knowledge_and_lead_pickers_filter_as_you_type_and_attach(
    engine: LocalEngine, llm: ScriptedLLM
) -> None:
    thread = await engine.create_thread(title="Context")
    await engine.add_knowledge("Pricing FAQ", "Team is $29 per seat.")
    doc = await engine.add_knowledge("Brand voice", "Short sentences.")
    (dana, lee) = await engine.import_leads(
        [
            {"name": "Dana Whitfield", "company": "Acme"},
            {"name": "Lee Park", "company": "Initech"},
        ]
    )
    llm.enqueue("Noted.")
    async with make_app(engine).run_test() as pilot:
        app = await ready(pilot)
        await _open(pilot, app, thread.id)
        await pilot.press("ctrl+g")
        await wait_until(
            pilot, lambda: isinstance(app.screen, RecordPickerModal), "knowledge"
        )
        picker = app.screen
        assert isinstance(picker, RecordPickerModal)
        await wait_until(pilot, lambda: len(picker.records) == 2, "both documents")
        await _type(pilot, "voice")
        await wait_until(
            pilot,
            lambda: [d.id for d in picker.records] == [doc.id],
            "the filtered list",
        )
        await pilot.press("enter")
        await wait_until(pilot, lambda: app.screen is app.chat, "picker closed")
        await pilot.press("ctrl+l")
        await wait_until(
            pilot, lambda: isinstance(app.screen, RecordPickerModal), "leads"
        )
        leads = app.screen
        assert isinstance(leads, RecordPickerModal)
        await wait_until(pilot, lambda: len(leads.records) == 2, "both leads")
        await pilot.press("down")  # the list is newest first: Lee, then Dana
        chosen = leads.records[1]
        await pilot.press("enter")
        await wait_until(pilot, lambda: app.screen is app.chat, "picker closed")
        chips = app.chat.chips
        assert [(c.kind, c.ref_id) for c in chips.items] == [
            ("knowledge", doc.id),
            ("lead", chosen.id),
        ]
        assert chosen.id in (dana.id, lee.id)
        await _type(pilot, "Who is this")
        await pilot.press("enter")
        await wait_until(pilot, lambda: len(_finished(app)) == 2, "the reply")
        await settle(pilot)
        stored = (await engine.list_messages(thread.id)).items[0]
        assert [(a.kind, a.ref_id) for a in stored.attachments] == [
            ("knowledge", doc.id),
            ("lead", chosen.id),
        ]


async def _pick_lead(pilot: Pilot[None], app: TenexApp, *, second: bool) -> None:
    await pilot.press("ctrl+l")
    await wait_until(pilot, lambda: isinstance(app.screen, RecordPickerModal), "leads")
    picker = app.screen
    assert isinstance(picker, RecordPickerModal)
    await wait_until(pilot, lambda: len(picker.records) == 2, "leads listed")
    if second:
        await pilot.press("down")
    await pilot.press("enter")
    await wait_until(pilot, lambda: app.screen is app.chat, "closed")


async def test_a_second_lead_replaces_the_first(engine: LocalEngine) -> None:
    thread = await engine.create_thread(title="Leads")
    await engine.import_leads([{"name": "One"}, {"name": "Two"}])
    async with make_app(engine).run_test() as pilot:
        app = await ready(pilot)
        await _open(pilot, app, thread.id)
        await _pick_lead(pilot, app, second=False)
        await _pick_lead(pilot, app, second=True)
        names = [c.name for c in app.chat.chips.items]
        assert names == ["One"]  # newest first: Two, then One replaced it
        assert any("replaces" in note for note in _notes(app))


async def test_the_focused_chip_is_removed_with_delete(
    engine: LocalEngine, tmp_path: Path
) -> None:
    thread = await engine.create_thread(title="Chips")
    first, second = tmp_path / "a.txt", tmp_path / "b.txt"
    first.write_text("alpha", encoding="utf-8")
    second.write_text("beta", encoding="utf-8")
    async with make_app(engine).run_test() as pilot:
        app = await ready(pilot)
        await _open(pilot, app, thread.id)
        chips = app.chat.chips
        await _attach_file(pilot, app, first)
        await wait_until(pilot, lambda: len(chips.items) == 1, "one chip")
        await _attach_file(pilot, app, second)
        await wait_until(pilot, lambda: len(chips.items) == 2, "two chips")
        await pilot.press("tab")
        assert isinstance(app.focused, AttachmentChips)
        await pilot.press("right", "delete")
        await wait_until(pilot, lambda: len(chips.items) == 1, "removed")
        assert [c.name for c in chips.items] == ["a.txt"]
        assert [c.name for c in app.chat.composer.attachments] == ["a.txt"]
        await pilot.press("delete")
        await wait_until(pilot, lambda: not chips.items, "all removed")
        assert not chips.display
        assert isinstance(app.focused, Composer)


async def test_attachments_stay_with_their_threads_draft(
    engine: LocalEngine, tmp_path: Path
) -> None:
    other = await engine.create_thread(title="Other")
    thread = await engine.create_thread(title="Mine")
    notes = tmp_path / "notes.txt"
    notes.write_text("hello", encoding="utf-8")
    async with make_app(engine).run_test() as pilot:
        app = await ready(pilot)
        await _open(pilot, app, thread.id)
        await _attach_file(pilot, app, notes)
        await wait_until(pilot, lambda: len(app.chat.chips.items) == 1, "chip")
        app.chat.show_thread(other.id, focus_composer=True)
        await shown(pilot, other.id)
        assert app.chat.chips.items == [] and not app.chat.chips.display
        app.chat.show_thread(thread.id, focus_composer=True)
        await shown(pilot, thread.id)
        assert [c.name for c in app.chat.chips.items] == ["notes.txt"]


async def test_a_send_that_fails_gives_back_the_text_and_the_attachments(
    engine_no_model: LocalEngine, tmp_path: Path
) -> None:
    thread = await engine_no_model.create_thread(title="No model")
    notes = tmp_path / "notes.txt"
    notes.write_text("hello", encoding="utf-8")
    async with make_app(engine_no_model).run_test() as pilot:
        app = await ready(pilot)
        await _open(pilot, app, thread.id)
        await _attach_file(pilot, app, notes)
        await wait_until(pilot, lambda: len(app.chat.chips.items) == 1, "chip")
        await _type(pilot, "please")
        await pilot.press("enter")
        await wait_until(pilot, lambda: app.chat.composer.text == "please", "restore")
        await settle(pilot)
        assert [c.name for c in app.chat.chips.items] == ["notes.txt"]
        assert not (await engine_no_model.list_messages(thread.id)).items


async def test_chips_on_a_sent_message_name_each_attachment(
    engine: LocalEngine, llm: ScriptedLLM
) -> None:
    thread = await engine.create_thread(title="History")
    doc = await engine.add_knowledge("Pricing FAQ", "Team is $29 per seat.")
    (lead,) = await engine.import_leads([{"name": "Dana Whitfield"}])
    llm.enqueue("ok")
    async for _ in engine.send_message(
        thread.id, "context", knowledge=[doc.id], lead=lead.id
    ):
        pass
    async with make_app(engine).run_test() as pilot:
        app = await ready(pilot)
        await shown(pilot, thread.id)
        view = _finished(app)[0]
        rendered = _plain(view)
        assert "§ Pricing FAQ · knowledge" in rendered
        assert "@ Dana Whitfield · lead" in rendered


def _plain(view: MessageView) -> str:
    console = Console(width=100, record=True, color_system=None, file=io.StringIO())
    console.print(view.render())
    return console.export_text()


# --- the file picker on its own -------------------------------------------------------


class PickerApp(App[None]):
    """Hosts a file picker and records its answer."""

    def __init__(self, cwd: Path) -> None:
        super().__init__()
        self.cwd = cwd
        self.answer: Path | str | None = "unanswered"

    def compose(self) -> ComposeResult:
        yield Static("host")

    def on_mount(self) -> None:
        def done(path: Path | None) -> None:
            self.answer = path

        self.push_screen(FilePickerModal(cwd=self.cwd), done)


def test_paths_complete_from_the_folder_entries(tmp_path: Path) -> None:
    (tmp_path / "reports").mkdir()
    (tmp_path / "readme.md").write_text("x", encoding="utf-8")
    (tmp_path / ".hidden").write_text("x", encoding="utf-8")
    assert complete_path("rea", tmp_path) == "readme.md"
    assert complete_path("rep", tmp_path) == "reports/"
    assert complete_path("re", tmp_path) == "readme.md"  # by name: readme < reports
    assert complete_path("readme.md", tmp_path) is None  # nothing more to add
    assert complete_path("h", tmp_path) is None
    assert complete_path(".h", tmp_path) == ".hidden"  # dot-files when asked for
    assert complete_path(f"{tmp_path}/rep", tmp_path) == f"{tmp_path}/reports/"
    assert complete_path("missing/x", tmp_path) is None


async def test_the_picker_completes_with_tab_and_picks_with_enter(
    tmp_path: Path,
) -> None:
    (tmp_path / "quarterly-report.md").write_text("x", encoding="utf-8")
    app = PickerApp(tmp_path)
    async with app.run_test() as pilot:
        await wait_until(pilot, lambda: isinstance(app.screen, FilePickerModal), "up")
        await _type(pilot, "quar")
        box = app.screen.query_one("#path")
        await wait_until(
            pilot,
            lambda: getattr(box, "_suggestion", "") == "quarterly-report.md",
            "the completion",
        )
        await pilot.press("tab")
        assert box.value == "quarterly-report.md"  # type: ignore[attr-defined]
        await pilot.press("enter")
        await wait_until(pilot, lambda: app.answer != "unanswered", "the answer")
        assert app.answer == tmp_path / "quarterly-report.md"


async def test_the_picker_tree_picks_a_file_and_shows_names_as_typed(
    tmp_path: Path,
) -> None:
    odd = tmp_path / "[@click=app.quit]notes.txt"
    odd.write_text("x", encoding="utf-8")
    app = PickerApp(tmp_path)
    async with app.run_test() as pilot:
        await wait_until(pilot, lambda: isinstance(app.screen, FilePickerModal), "up")
        tree = app.screen.query_one("#tree", SafeDirectoryTree)
        await wait_until(pilot, lambda: bool(tree.root.children), "the tree")
        label = tree.root.children[0].label
        assert label.plain == "[@click=app.quit]notes.txt"  # not parsed as markup
        await pilot.press("down")  # from the path box into the tree
        assert app.focused is tree
        await pilot.press("down", "enter")
        await wait_until(pilot, lambda: app.answer != "unanswered", "the answer")
        assert app.answer == odd
        assert app.is_running  # the "action" in the name did not quit the app


async def test_escape_closes_the_picker_without_an_answer(tmp_path: Path) -> None:
    app = PickerApp(tmp_path)
    async with app.run_test() as pilot:
        await wait_until(pilot, lambda: isinstance(app.screen, FilePickerModal), "up")
        await pilot.press("escape")
        await wait_until(pilot, lambda: app.answer != "unanswered", "the answer")
        assert app.answer is None
