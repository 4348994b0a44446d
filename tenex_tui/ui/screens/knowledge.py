"""The knowledge browser: the workspace's brand documents and leads (F2 / F3).

Knowledge tab: the documents, newest first, a page at a time; typing filters titles,
Enter in the box searches the documents' text (`search_knowledge`) and lists the
matching passages; Enter on a document shows its text; `a` adds a file (read off the
event loop by the attachment loader, with the knowledge budget), `d` removes the
selected document after a confirmation. Leads tab: the leads, filtered by name, and the
selected lead's fields.

Everything shown comes from documents, files and imported records: it is built as
`Text` from sanitised strings (control sequences neutralised, no markup parsed).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar, Literal

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, VerticalScroll
from textual.screen import Screen
from textual.timer import Timer
from textual.widgets import Input, OptionList, Static, TabbedContent, TabPane
from textual.widgets.option_list import Option

from tenex_tui.core.backend import ChatBackend
from tenex_tui.core.errors import AttachmentError, TenexError
from tenex_tui.core.models import KnowledgeDoc, KnowledgeHit, Lead
from tenex_tui.core.payloads import MAX_KNOWLEDGE_CHARS
from tenex_tui.core.text import sanitize, sanitize_line
from tenex_tui.ui.format import display_error
from tenex_tui.ui.pending import human_size, protected_paths, short_type
from tenex_tui.ui.screens.modals import ConfirmModal
from tenex_tui.ui.screens.pickers import (
    FILTER_DEBOUNCE,
    FilePickerModal,
    knowledge_label,
    lead_label,
)
from tenex_tui.ui.widgets.key_footer import KeyFooter

if TYPE_CHECKING:
    from tenex_tui.attachments import LoadedAttachment

BROWSER_PAGE = 50
"""Documents or leads fetched per page."""
SHOWN_CHARS = 100_000
"""Characters of a document shown at once (the rest is named, not drawn)."""
SEARCH_HITS = 20
"""Passages a text search lists."""
KNOWLEDGE_FILE_BYTES = 20 * 1024 * 1024
"""Largest file added as a document (as `tenex-tui knowledge add`)."""

Tab = Literal["knowledge", "leads"]


def _load_document(path: Path, protected: tuple[Path, ...]) -> LoadedAttachment:
    # Imported here: the loader and its parsers matter only when a file is added.
    from tenex_tui.attachments import AttachmentLimits, load_attachment

    limits = AttachmentLimits(
        max_file_bytes=KNOWLEDGE_FILE_BYTES,
        max_file_chars=MAX_KNOWLEDGE_CHARS,
        protected_paths=protected,
    )
    return load_attachment(path, limits=limits)


def document_view(doc: KnowledgeDoc, *, hit: KnowledgeHit | None = None) -> Group:
    """A document: its title, what it is, then its text (sanitised, maybe cut)."""
    parts: list[RenderableType] = [
        Text(sanitize_line(doc.title, max_chars=200) or "(untitled)", "bold")
    ]
    meta = f"{short_type(doc.media_type)} · {human_size(doc.size)}"
    meta += f" · {doc.chunk_count} chunk{'s' if doc.chunk_count != 1 else ''}"
    if doc.source:
        meta += " · from " + sanitize_line(doc.source, max_chars=120)
    parts.append(Text(meta, "dim"))
    parts.append(Text(doc.id, "dim"))
    parts.append(Text(""))
    if hit is not None:
        parts.append(Text(f"Matched in passage {hit.chunk + 1}:", "bold"))
        parts.append(Text(sanitize(hit.text), "italic"))
        parts.append(Text(""))
    text = doc.text or ""
    parts.append(Text(sanitize(text[:SHOWN_CHARS])))
    if len(text) > SHOWN_CHARS:
        parts.append(
            Text(
                f"\n[showing the first {SHOWN_CHARS:,} of {len(text):,} characters]",
                "dim",
            )
        )
    return Group(*parts)


def _field_value(value: object) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, default=str)


def lead_view(lead: Lead) -> Group:
    """A lead: its name, then every field as `key  value` (data, never instructions)."""
    table = Table.grid(padding=(0, 2))
    table.add_column(style="bold", no_wrap=True)
    table.add_column()
    for key, value in lead.fields.items():
        table.add_row(
            Text(sanitize_line(str(key), max_chars=40)),
            Text(sanitize(_field_value(value)[:2000])),
        )
    return Group(
        Text(sanitize_line(lead.name, max_chars=200) or "(no name)", "bold"),
        Text(lead.id, "dim"),
        Text(""),
        table,
    )


def append_page(
    options: OptionList,
    labels: list[RenderableType],
    *,
    prefix: str,
    start: int,
    empty: str,
) -> None:
    """Add a page of rows (ids `<prefix>-<index>`) to a browser list; an empty list
    says `empty` instead, and a list without a highlight highlights its first row."""
    options.add_options(
        [Option(label, id=f"{prefix}-{start + i}") for i, label in enumerate(labels)]
    )
    if options.option_count == 0:
        options.add_option(Option(Text(empty, "dim"), disabled=True))
    elif options.highlighted is None:
        options.highlighted = 0


def hit_label(hit: KnowledgeHit) -> Text:
    """A passage that matched: its document and passage number, then a snippet."""
    label = Text()
    label.append(sanitize_line(hit.title, max_chars=60) or "(untitled)", "bold")
    label.append(f"  passage {hit.chunk + 1}", "dim")
    label.append("\n  " + sanitize_line(hit.text, max_chars=110), "dim")
    return label


class KnowledgeScreen(Screen[None]):
    """Browse, search, add and remove knowledge documents; list and show leads."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding(
            "escape",
            "back",
            "Back",
            id="knowledge.back",
            tooltip="Clear the search, else back to the threads",
        ),
        Binding(
            "f2",
            "tab('knowledge')",
            "Knowledge",
            id="knowledge.tab",
            tooltip="The knowledge documents",
        ),
        Binding("f3", "tab('leads')", "Leads", id="leads.tab", tooltip="The leads"),
        Binding(
            "a",
            "add_document",
            "Add",
            id="knowledge.add",
            tooltip="Add a file to the knowledge",
        ),
        Binding(
            "d,delete",
            "remove_document",
            "Remove",
            id="knowledge.remove",
            tooltip="Remove the selected document (asks first)",
        ),
        Binding(
            "slash",
            "search",
            "Search",
            id="knowledge.search",
            tooltip="Filter by title; Enter searches the text",
        ),
    ]

    def __init__(self, backend: ChatBackend, *, tab: Tab = "knowledge") -> None:
        super().__init__()
        self.backend = backend
        """Where the documents and leads live."""
        self._initial: Tab = tab
        self.docs: list[KnowledgeDoc] = []
        """The documents listed (one or more pages)."""
        self.hits: list[KnowledgeHit] = []
        """The passages of the last text search (listed instead of documents)."""
        self.leads: list[Lead] = []
        """The leads listed."""
        self.shown: KnowledgeDoc | Lead | None = None
        """The document (with its text) or lead on the right."""
        self._docs_cursor: str | None = None
        self._leads_cursor: str | None = None
        self._doc_query: str | None = None
        self._lead_query: str | None = None
        self._timer: Timer | None = None

    def compose(self) -> ComposeResult:
        with TabbedContent(initial=self._initial, id="kb-tabs"):
            with TabPane("Knowledge (F2)", id="knowledge"):
                yield Input(
                    placeholder="Filter titles as you type · Enter searches the text",
                    id="kb-search",
                )
                with Horizontal(classes="kb-columns"):
                    yield OptionList(id="kb-list", classes="kb-list")
                    with VerticalScroll(id="kb-view", classes="kb-view"):
                        yield Static(id="kb-doc", classes="kb-body")
            with TabPane("Leads (F3)", id="leads"):
                yield Input(placeholder="Filter leads by name", id="lead-filter")
                with Horizontal(classes="kb-columns"):
                    yield OptionList(id="lead-list", classes="kb-list")
                    with VerticalScroll(id="lead-view", classes="kb-view"):
                        yield Static(id="lead-detail", classes="kb-body")
        yield KeyFooter()

    def on_mount(self) -> None:
        self._hint_doc()
        self.query_one("#lead-detail", Static).update(
            Text("Choose a lead to see its fields.", "dim")
        )
        self.load_docs(None, None)
        self.load_leads(None, None)
        self._focus_list(self._initial)

    # --- tabs and focus ---------------------------------------------------------------

    @property
    def tab(self) -> Tab:
        """The tab shown."""
        active = self.query_one("#kb-tabs", TabbedContent).active
        return "leads" if active == "leads" else "knowledge"

    def action_tab(self, tab: str) -> None:
        """Show the knowledge or the leads tab."""
        chosen: Tab = "leads" if tab == "leads" else "knowledge"
        self.query_one("#kb-tabs", TabbedContent).active = chosen
        self._focus_list(chosen)

    @on(TabbedContent.TabActivated, "#kb-tabs")
    def tab_activated(self) -> None:
        self._focus_list(self.tab)
        self.refresh_bindings()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        # Adding and removing are for documents: hidden from the footer on Leads.
        if action in ("add_document", "remove_document") and self.is_mounted:
            return self.tab == "knowledge"
        return True

    def _focus_list(self, tab: Tab) -> None:
        list_id = "#lead-list" if tab == "leads" else "#kb-list"
        self.call_after_refresh(self.query_one(list_id, OptionList).focus)

    def action_back(self) -> None:
        """Esc: clear a search first; else back to the threads."""
        box_id = "#lead-filter" if self.tab == "leads" else "#kb-search"
        box = self.query_one(box_id, Input)
        if box.value or self.hits:
            box.value = ""
            self.hits = []
            if self.tab == "leads":
                self.load_leads(None, None)
            else:
                self.load_docs(None, None)
            self._focus_list(self.tab)
            return
        self.dismiss(None)

    def action_search(self) -> None:
        """Put the cursor in the tab's search box."""
        box_id = "#lead-filter" if self.tab == "leads" else "#kb-search"
        self.query_one(box_id, Input).focus()

    # --- documents --------------------------------------------------------------------

    def _hint_doc(self) -> None:
        self.query_one("#kb-doc", Static).update(
            Text(
                "Choose a document to read it.\n\n"
                "a adds a file (Markdown, text, HTML, PDF, DOCX, JSON, CSV) · "
                "d removes the selected document · / searches",
                "dim",
            )
        )

    @work(group="kb-docs", exclusive=True, exit_on_error=False)
    async def load_docs(self, query: str | None, cursor: str | None) -> None:
        """List a page of documents (the first of a new filter, or the next one)."""
        try:
            page = await self.backend.list_knowledge(
                limit=BROWSER_PAGE, cursor=cursor, q=query
            )
        except TenexError as error:
            self.notify(display_error(str(error)), severity="error", markup=False)
            return
        options = self.query_one("#kb-list", OptionList)
        if cursor is None:
            self.docs = []
            self.hits = []
            options.clear_options()
        start = len(self.docs)
        self.docs.extend(page.items)
        self._docs_cursor = page.next_cursor
        self._doc_query = query
        append_page(
            options,
            [knowledge_label(doc) for doc in page.items],
            prefix="doc",
            start=start,
            empty=(
                "No document title matches."
                if query
                else "No documents yet. Press a to add a file."
            ),
        )

    @work(group="kb-docs", exclusive=True, exit_on_error=False)
    async def search_text(self, query: str) -> None:
        """List the passages of every document that match `query`."""
        try:
            hits = await self.backend.search_knowledge(query, limit=SEARCH_HITS)
        except TenexError as error:
            self.notify(display_error(str(error)), severity="warning", markup=False)
            return
        self.hits = list(hits)
        options = self.query_one("#kb-list", OptionList)
        options.clear_options()
        options.add_options(
            [Option(hit_label(hit), id=f"hit-{i}") for i, hit in enumerate(self.hits)]
        )
        if not self.hits:
            options.add_option(
                Option(Text("No passage matches. Esc clears.", "dim"), disabled=True)
            )
        else:
            options.highlighted = 0
            options.focus()

    @on(Input.Changed, "#kb-search")
    def search_changed(self, event: Input.Changed) -> None:
        self._debounce(lambda: self.load_docs(event.value.strip() or None, None))

    @on(Input.Submitted, "#kb-search")
    def search_submitted(self, event: Input.Submitted) -> None:
        if self._timer is not None:
            self._timer.stop()
        if event.value.strip():
            self.search_text(event.value.strip())
        else:
            self._focus_list("knowledge")

    def _debounce(self, callback: Callable[[], object]) -> None:
        if self._timer is not None:
            self._timer.stop()
        self._timer = self.set_timer(FILTER_DEBOUNCE, callback)

    @on(OptionList.OptionHighlighted, "#kb-list")
    def doc_highlighted(self, event: OptionList.OptionHighlighted) -> None:
        index = event.option_index
        if (
            not self.hits
            and self._docs_cursor is not None
            and index >= len(self.docs) - 5
        ):
            cursor, self._docs_cursor = self._docs_cursor, None
            self.load_docs(self._doc_query, cursor)

    @on(OptionList.OptionSelected, "#kb-list")
    def doc_selected(self, event: OptionList.OptionSelected) -> None:
        option_id = event.option.id or ""
        kind, _, number = option_id.partition("-")
        if not number.isdigit():
            return
        index = int(number)
        if kind == "hit" and index < len(self.hits):
            hit = self.hits[index]
            self.show_document(hit.doc_id, hit)
        elif kind == "doc" and index < len(self.docs):
            self.show_document(self.docs[index].id, None)

    @work(group="kb-show", exclusive=True, exit_on_error=False)
    async def show_document(self, doc_id: str, hit: KnowledgeHit | None) -> None:
        """Fetch a document with its text and show it on the right."""
        try:
            doc = await self.backend.get_knowledge(doc_id, with_text=True)
        except TenexError as error:
            self.notify(display_error(str(error)), severity="error", markup=False)
            return
        self.shown = doc
        self.query_one("#kb-doc", Static).update(document_view(doc, hit=hit))
        view = self.query_one("#kb-view", VerticalScroll)
        view.scroll_home(animate=False)

    def _selected_doc(self) -> KnowledgeDoc | None:
        options = self.query_one("#kb-list", OptionList)
        index = options.highlighted
        if index is None:
            return None
        option_id = options.get_option_at_index(index).id or ""
        kind, _, number = option_id.partition("-")
        if not number.isdigit():
            return None
        if kind == "doc" and int(number) < len(self.docs):
            return self.docs[int(number)]
        if kind == "hit" and int(number) < len(self.hits):
            hit = self.hits[int(number)]
            return next((d for d in self.docs if d.id == hit.doc_id), None) or (
                self.shown
                if isinstance(self.shown, KnowledgeDoc) and self.shown.id == hit.doc_id
                else None
            )
        return None

    def action_remove_document(self) -> None:
        """Ask, then remove the selected document."""
        if self.tab != "knowledge":
            return
        doc = self._selected_doc()
        if doc is None:
            return
        body = Text("Remove ")
        body.append(sanitize_line(doc.title, max_chars=80) or "(untitled)", "bold")
        body.append(" from the knowledge?\n\nThreads that use it stop receiving it.")

        def confirmed(yes: bool | None) -> None:
            if yes:
                self.remove_document(doc)

        self.app.push_screen(
            ConfirmModal("Remove document?", body, confirm="Remove"), confirmed
        )

    @work(group="kb-write", exit_on_error=False)
    async def remove_document(self, doc: KnowledgeDoc) -> None:
        """Remove a document and list the rest."""
        try:
            await self.backend.remove_knowledge(doc.id)
        except TenexError as error:
            self.notify(display_error(str(error)), severity="error", markup=False)
            return
        title = sanitize_line(doc.title, max_chars=60)
        self.notify(f"Removed “{title}”.", markup=False)
        if isinstance(self.shown, KnowledgeDoc) and self.shown.id == doc.id:
            self.shown = None
            self._hint_doc()
        self.load_docs(self._doc_query, None)

    def action_add_document(self) -> None:
        """Pick a file and add it to the knowledge."""
        if self.tab != "knowledge":
            return

        def picked(path: Path | None) -> None:
            if path is not None:
                self.add_document(path)

        self.app.push_screen(
            FilePickerModal(
                title="Add a document to the knowledge",
                hint="Markdown, text, HTML, PDF, DOCX, JSON, CSV — up to 20 MB.",
            ),
            picked,
        )

    @work(group="kb-write", exit_on_error=False)
    async def add_document(self, path: Path) -> None:
        """Read a file off the event loop, then store it as a document."""
        name = sanitize_line(path.name, max_chars=60)
        self.notify(f"Reading {name}…", timeout=2, markup=False)
        try:
            loaded = await asyncio.to_thread(
                _load_document, path, protected_paths(self.app)
            )
        except AttachmentError as error:
            self.notify(
                display_error(str(error)),
                title="Not added",
                severity="error",
                markup=False,
            )
            return
        for warning in loaded.warnings[:3]:
            self.notify(display_error(warning), severity="warning", markup=False)
        title = (path.stem.strip() or path.name)[:200]
        try:
            doc = await self.backend.add_knowledge(
                title, loaded.text, media_type=loaded.media_type, source=str(path)
            )
        except TenexError as error:
            self.notify(
                display_error(str(error)),
                title="Not added",
                severity="error",
                markup=False,
            )
            return
        chunks = f"{doc.chunk_count} chunk{'s' if doc.chunk_count != 1 else ''}"
        shown_title = sanitize_line(doc.title, max_chars=60)
        self.notify(f"Added “{shown_title}” ({chunks}).", markup=False)
        self.query_one("#kb-search", Input).value = ""
        self.load_docs(None, None)
        self.show_document(doc.id, None)

    # --- leads ------------------------------------------------------------------------

    @work(group="kb-leads", exclusive=True, exit_on_error=False)
    async def load_leads(self, query: str | None, cursor: str | None) -> None:
        """List a page of leads."""
        try:
            page = await self.backend.list_leads(
                limit=BROWSER_PAGE, cursor=cursor, q=query
            )
        except TenexError as error:
            self.notify(display_error(str(error)), severity="error", markup=False)
            return
        options = self.query_one("#lead-list", OptionList)
        if cursor is None:
            self.leads = []
            options.clear_options()
        start = len(self.leads)
        self.leads.extend(page.items)
        self._leads_cursor = page.next_cursor
        self._lead_query = query
        append_page(
            options,
            [lead_label(lead) for lead in page.items],
            prefix="lead",
            start=start,
            empty=(
                "No lead name matches."
                if query
                else "No leads yet. Import some with `tenex-tui leads import FILE`."
            ),
        )

    @on(Input.Changed, "#lead-filter")
    def lead_filter_changed(self, event: Input.Changed) -> None:
        self._debounce(lambda: self.load_leads(event.value.strip() or None, None))

    @on(Input.Submitted, "#lead-filter")
    def lead_filter_submitted(self) -> None:
        self._focus_list("leads")

    @on(OptionList.OptionHighlighted, "#lead-list")
    def lead_highlighted(self, event: OptionList.OptionHighlighted) -> None:
        index = event.option_index
        if self._leads_cursor is not None and index >= len(self.leads) - 5:
            cursor, self._leads_cursor = self._leads_cursor, None
            self.load_leads(self._lead_query, cursor)

    @on(OptionList.OptionSelected, "#lead-list")
    def lead_selected(self, event: OptionList.OptionSelected) -> None:
        _, _, number = (event.option.id or "").partition("-")
        if number.isdigit() and int(number) < len(self.leads):
            self.show_lead(self.leads[int(number)].id)

    @work(group="kb-show", exclusive=True, exit_on_error=False)
    async def show_lead(self, lead_id: str) -> None:
        """Fetch a lead and show its fields."""
        try:
            lead = await self.backend.get_lead(lead_id)
        except TenexError as error:
            self.notify(display_error(str(error)), severity="error", markup=False)
            return
        self.shown = lead
        self.query_one("#lead-detail", Static).update(lead_view(lead))
