"""Pilot tests of the knowledge browser (F2) and the leads tab (F3): list, page, filter,
search the text, show (sanitised), add a file by path, remove after confirming — on the
real engine."""

from __future__ import annotations

import io
from pathlib import Path

from rich.console import Console
from textual.pilot import Pilot
from textual.widgets import Input, OptionList, Static

from tenex_tui.engine.engine import LocalEngine
from tenex_tui.ui.app import TenexApp
from tenex_tui.ui.screens.knowledge import BROWSER_PAGE, KnowledgeScreen
from tenex_tui.ui.screens.modals import ConfirmModal
from tenex_tui.ui.screens.pickers import FilePickerModal
from tests.ui.harness import make_app, ready, wait_until


async def _type(pilot: Pilot[None], text: str) -> None:
    for char in text:
        await pilot.press("space" if char == " " else char)


async def _browser(pilot: Pilot[None], key: str = "f2") -> KnowledgeScreen:
    app = pilot.app
    await pilot.press(key)
    await wait_until(pilot, lambda: isinstance(app.screen, KnowledgeScreen), "browser")
    screen = app.screen
    assert isinstance(screen, KnowledgeScreen)
    return screen


def _shown_text(screen: KnowledgeScreen, widget_id: str) -> str:
    static = screen.query_one(widget_id, Static)
    console = Console(width=120, record=True, color_system=None, file=io.StringIO())
    console.print(static.content)  # type: ignore[arg-type]
    return console.export_text()


def _notes(app: TenexApp) -> list[str]:
    return [str(n.message) for n in app._notifications]


async def test_f2_lists_documents_and_enter_shows_one_sanitised(
    engine: LocalEngine,
) -> None:
    await engine.add_knowledge("Older doc", "old text")
    doc = await engine.add_knowledge(
        "Battlecard: Globex",
        "Globex competes on price.\x1b]52;c;ZXZpbA==\x07 [b]not markup[/b]",
        media_type="text/markdown",
        source="battlecards/globex.md",
    )
    async with make_app(engine).run_test(size=(120, 36)) as pilot:
        await ready(pilot)
        screen = await _browser(pilot)
        await wait_until(pilot, lambda: len(screen.docs) == 2, "the documents")
        assert [d.title for d in screen.docs] == ["Battlecard: Globex", "Older doc"]
        assert isinstance(screen.focused, OptionList)
        await pilot.press("enter")
        await wait_until(pilot, lambda: screen.shown is not None, "the document")
        assert screen.shown is not None and screen.shown.id == doc.id
        text = _shown_text(screen, "#kb-doc")
        assert "Globex competes on price." in text
        assert "[b]not markup[/b]" in text
        assert "\x1b" not in text and "\x07" not in text
        assert "battlecards/globex.md" in text
        await pilot.press("escape")
        await wait_until(pilot, lambda: pilot.app.screen is not screen, "back")


async def test_typing_filters_titles_and_enter_searches_the_text(
    engine: LocalEngine,
) -> None:
    await engine.add_knowledge("Pricing FAQ", "Team costs 29 dollars per seat.")
    await engine.add_knowledge("Brand voice", "Short sentences. No exclamation marks.")
    async with make_app(engine).run_test(size=(120, 36)) as pilot:
        await ready(pilot)
        screen = await _browser(pilot)
        await wait_until(pilot, lambda: len(screen.docs) == 2, "the documents")
        await pilot.press("slash")
        assert screen.focused is screen.query_one("#kb-search", Input)
        await _type(pilot, "voice")
        await wait_until(
            pilot,
            lambda: [d.title for d in screen.docs] == ["Brand voice"],
            "the title filter",
        )
        screen.query_one("#kb-search", Input).value = "exclamation"
        await pilot.press("enter")
        await wait_until(pilot, lambda: bool(screen.hits), "the passages")
        assert screen.hits[0].title == "Brand voice"
        await pilot.press("enter")
        await wait_until(pilot, lambda: screen.shown is not None, "the document")
        assert "Matched in passage 1" in _shown_text(screen, "#kb-doc")
        await pilot.press("escape")  # clears the search first
        await wait_until(pilot, lambda: len(screen.docs) == 2, "the full list")
        assert not screen.hits and pilot.app.screen is screen


async def test_the_list_pages_through_the_cursor(engine: LocalEngine) -> None:
    for index in range(BROWSER_PAGE + 7):
        await engine.add_knowledge(f"Doc {index:03}", f"text number {index}")
    async with make_app(engine).run_test(size=(120, 36)) as pilot:
        await ready(pilot)
        screen = await _browser(pilot)
        await wait_until(pilot, lambda: len(screen.docs) == BROWSER_PAGE, "a page")
        await pilot.press("end")
        await wait_until(
            pilot, lambda: len(screen.docs) == BROWSER_PAGE + 7, "the next page"
        )
        assert len({d.id for d in screen.docs}) == BROWSER_PAGE + 7


async def test_a_adds_a_file_read_off_the_loop_and_d_removes_after_asking(
    engine: LocalEngine, tmp_path: Path
) -> None:
    guide = tmp_path / "Style guide.md"
    guide.write_text("# Style\n\nUse the active voice.\n", encoding="utf-8")
    async with make_app(engine).run_test(size=(120, 36)) as pilot:
        app = await ready(pilot)
        screen = await _browser(pilot)
        await wait_until(pilot, lambda: bool(screen.query_one("#kb-list")), "list")
        await pilot.press("a")
        await wait_until(
            pilot, lambda: isinstance(app.screen, FilePickerModal), "the picker"
        )
        app.screen.query_one("#path", Input).value = str(guide)
        await pilot.press("enter")
        await wait_until(pilot, lambda: len(screen.docs) == 1, "the new document")
        stored = (await engine.list_knowledge()).items
        assert [(d.title, d.media_type, d.source) for d in stored] == [
            ("Style guide", "text/markdown", str(guide))
        ]
        await wait_until(pilot, lambda: screen.shown is not None, "shown")
        assert "Use the active voice." in _shown_text(screen, "#kb-doc")
        screen.query_one("#kb-list", OptionList).focus()
        await pilot.press("d")
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmModal), "ask")
        await pilot.press("escape")  # not removed
        await wait_until(pilot, lambda: app.screen is screen, "back")
        assert len((await engine.list_knowledge()).items) == 1
        await pilot.press("d")
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmModal), "ask")
        await pilot.press("enter")
        await wait_until(pilot, lambda: not screen.docs, "removed")
        assert (await engine.list_knowledge()).items == []
        assert any("Removed “Style guide”" in note for note in _notes(app))


async def test_a_file_that_cannot_be_added_is_explained(
    engine: LocalEngine, tmp_path: Path
) -> None:
    binary = tmp_path / "logo.png"
    binary.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 8)
    async with make_app(engine).run_test(size=(120, 36)) as pilot:
        app = await ready(pilot)
        screen = await _browser(pilot)
        screen.add_document(binary)
        await wait_until(
            pilot,
            lambda: any("logo.png" in n and "binary" in n for n in _notes(app)),
            "the refusal",
        )
        assert (await engine.list_knowledge()).items == []


async def test_f3_lists_leads_filters_them_and_shows_their_fields(
    engine: LocalEngine,
) -> None:
    await engine.import_leads(
        [
            {"name": "Dana Whitfield", "company": "Acme", "seats": 25},
            {"name": "Lee Park", "company": "Initech", "note": "\x1b[2J wiped?"},
        ]
    )
    async with make_app(engine).run_test(size=(120, 36)) as pilot:
        await ready(pilot)
        screen = await _browser(pilot, "f3")
        assert screen.tab == "leads"
        await wait_until(pilot, lambda: len(screen.leads) == 2, "the leads")
        screen.query_one("#lead-filter", Input).focus()
        await _type(pilot, "lee")
        await wait_until(
            pilot,
            lambda: [lead.name for lead in screen.leads] == ["Lee Park"],
            "filter",
        )
        await pilot.press("enter")  # back to the list
        await pilot.press("enter")  # show the lead
        await wait_until(pilot, lambda: screen.shown is not None, "the lead")
        text = _shown_text(screen, "#lead-detail")
        assert "Lee Park" in text and "Initech" in text and "company" in text
        assert "\x1b" not in text
        await pilot.press("f2")
        assert screen.tab == "knowledge"


async def test_the_palette_opens_the_browser_and_attachments(
    engine: LocalEngine,
) -> None:
    async with make_app(engine).run_test() as pilot:
        app = await ready(pilot)
        titles = {command.title for command in app.get_system_commands(app.screen)}
        for expected in (
            "Knowledge browser",
            "Leads",
            "Attach a file",
            "Attach a knowledge document",
            "Attach a lead",
        ):
            assert expected in titles
        assert "Sync now" not in titles  # a local workspace has nothing to sync
