"""Brand knowledge and leads in the store: documents, chunks (FTS5), lead records.

Both belong to a workspace, not to a user: every statement binds `workspace_id` and
none binds `user_id`, so the users of one workspace share them and no other workspace
can read, list, find or delete them (an id of another workspace is `NotFound`, exactly
like a missing one).

- A document is one `knowledge_docs` row plus its chunks (`knowledge.chunk_text`);
  the FTS5 index follows the chunks through m007's triggers, and deleting the document
  cascades to them. Adding text the workspace already has returns the first document.
- A lead is one `leads` row whose `fields` are the imported record verbatim (JSON);
  importing an identical record again returns the lead already stored (m009's
  `record_hash`).
- `resolve_context` and `thread_context` turn document and lead ids into the text the
  prompt carries, under a character budget, each marked truncated when it was cut.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from typing import Any

from tenex_tui.core.errors import InvalidCursor, InvalidRequest, NotFound
from tenex_tui.core.models import (
    Attachment,
    KnowledgeDoc,
    KnowledgeHit,
    Lead,
    Page,
    ThreadContext,
    clamp_limit,
)
from tenex_tui.engine.knowledge import (
    PreparedDocument,
    fts_all,
    fts_any,
    search_limit,
    search_terms,
)
from tenex_tui.engine.leads import guess_name, record_hash
from tenex_tui.engine.prompt import AttachmentText
from tenex_tui.engine.store_base import Scope, StoreBase, dumps

DOC_NOT_FOUND = "knowledge document not found"
LEAD_NOT_FOUND = "lead not found"
COUNT_CAP = 10_000
"""Rows counted at most for a list's `total` (beyond it: None)."""
MAX_CONTEXT_CHARS = 100_000
"""Characters of knowledge and lead text given to the model with one message, or
with every message of a thread (its context), in all."""
SEARCH_OVERFETCH = 4
"""How many times `limit` the ranked FTS subquery fetches before the workspace filter;
when the filter leaves fewer than `limit` hits, the query runs again unbounded."""
RANK_BUDGET = 6_000
"""Chunks one ranked query may score at most (see `KnowledgeMixin._search_plan`).

bm25 costs ~2-3 µs a chunk of ~1,000 characters (it reads the chunk's length and every
position of each phrase in it) on a 2-core box, so 6,000 leaves half of issue 4's 30 ms
for the counts, bm25's idf (a pass over every posting of each word) and a loaded
machine: 10,000 measured 43 ms p95 under load."""

_DOC_COLUMNS = "id, title, media_type, size, chunk_count, source, sha256, created_at"


def _doc(row: sqlite3.Row, text: str | None = None) -> KnowledgeDoc:
    return KnowledgeDoc(
        id=row["id"],
        title=row["title"],
        media_type=row["media_type"],
        size=row["size"],
        chunk_count=row["chunk_count"],
        source=row["source"],
        sha256=row["sha256"],
        created_at=row["created_at"],
        text=text,
    )


def _lead(row: sqlite3.Row) -> Lead:
    return Lead(
        id=row["id"],
        name=row["name"],
        fields=json.loads(row["fields"] or "{}"),
        created_at=row["created_at"],
    )


def _like(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def lead_text(lead: Lead) -> str:
    """A lead as the model sees it: its id, name and fields as indented JSON."""
    return json.dumps(
        {"id": lead.id, "name": lead.name, "fields": lead.fields},
        indent=2,
        ensure_ascii=False,
    )


class KnowledgeMixin(StoreBase):
    """Knowledge documents, their search index, and leads."""

    def _ensure_workspace(self, scope: Scope) -> None:
        self.conn.execute(
            "INSERT OR IGNORE INTO workspaces (id, name, created_at) VALUES (?, '', ?)",
            (scope.workspace_id, self.now()),
        )

    # -- documents -------------------------------------------------------------------

    def add_knowledge(self, scope: Scope, doc: PreparedDocument) -> KnowledgeDoc:
        """Store a prepared document and its chunks (or find the same text stored).

        Returns:
            The document, without its text.
        """
        with self.sc.write() as conn:
            existing = conn.execute(
                f"SELECT {_DOC_COLUMNS} FROM knowledge_docs "
                "WHERE workspace_id = ? AND sha256 = ? ORDER BY num LIMIT 1",
                (scope.workspace_id, doc.sha256),
            ).fetchone()
            if existing is not None:
                return _doc(existing)
            self._ensure_workspace(scope)
            doc_id = self.clock.new_id("doc")
            conn.execute(
                """INSERT INTO knowledge_docs (workspace_id, id, title, media_type, size,
                    chunk_count, source, sha256, created_at)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)""",
                (
                    scope.workspace_id,
                    doc_id,
                    doc.title,
                    doc.media_type,
                    doc.size,
                    len(doc.chunks),
                    doc.source,
                    doc.sha256,
                    self.now(),
                ),
            )
            conn.executemany(
                "INSERT INTO knowledge_chunks (workspace_id, doc_id, chunk, text) "
                "VALUES (?, ?, ?, ?)",
                [
                    (scope.workspace_id, doc_id, index, text)
                    for index, text in enumerate(doc.chunks)
                ],
            )
            return self.get_knowledge(scope, doc_id)

    def _doc_row(self, scope: Scope, doc_id: str) -> sqlite3.Row:
        row: sqlite3.Row | None = self.conn.execute(
            f"SELECT {_DOC_COLUMNS} FROM knowledge_docs "
            "WHERE workspace_id = ? AND id = ?",
            (scope.workspace_id, doc_id),
        ).fetchone()
        if row is None:
            raise NotFound(DOC_NOT_FOUND)
        return row

    def _doc_text(self, scope: Scope, doc_id: str) -> str:
        rows = self.conn.execute(
            "SELECT text FROM knowledge_chunks WHERE workspace_id = ? AND doc_id = ? "
            "ORDER BY chunk",
            (scope.workspace_id, doc_id),
        ).fetchall()
        return "".join(r["text"] for r in rows)

    def get_knowledge(
        self, scope: Scope, doc_id: str, *, with_text: bool = False
    ) -> KnowledgeDoc:
        """One document of the workspace, with its text when asked.

        Raises:
            NotFound: When it is not in the workspace.
        """
        row = self._doc_row(scope, doc_id)
        return _doc(row, self._doc_text(scope, doc_id) if with_text else None)

    def remove_knowledge(self, scope: Scope, doc_id: str) -> None:
        """Delete a document and (by cascade) its chunks and their index entries.

        Raises:
            NotFound: When it is not in the workspace.
        """
        with self.sc.write() as conn:
            deleted = conn.execute(
                "DELETE FROM knowledge_docs WHERE workspace_id = ? AND id = ?",
                (scope.workspace_id, doc_id),
            ).rowcount
            if not deleted:
                raise NotFound(DOC_NOT_FOUND)

    def _page(
        self,
        scope: Scope,
        *,
        kind: str,
        table: str,
        columns: str,
        title_column: str,
        limit: int | None,
        cursor: str | None,
        q: str | None,
    ) -> tuple[list[sqlite3.Row], str | None, int | None]:
        try:
            size = clamp_limit(limit)
        except ValueError as exc:
            raise InvalidRequest(str(exc)) from None
        q = q or None
        filters = {"q": q, "limit": size}
        where = ["workspace_id = ?"]
        params: list[Any] = [scope.workspace_id]
        if q is not None:
            where.append(f"{title_column} LIKE ? ESCAPE '\\'")
            params.append(_like(q))
        total: int | None
        if cursor is None:
            row = self.conn.execute(
                f"SELECT count(*) AS n FROM (SELECT 1 FROM {table} "
                f"WHERE {' AND '.join(where)} LIMIT {COUNT_CAP + 1})",
                params,
            ).fetchone()
            total = int(row["n"]) if row["n"] <= COUNT_CAP else None
        else:
            position = self.signer.decode(cursor, kind, scope.pair, filters)
            try:
                after = int(position["num"])
                total = position.get("total")
            except (KeyError, TypeError, ValueError):
                raise InvalidCursor("The cursor is not valid for this list.") from None
            where.append("num < ?")
            params.append(after)
        rows = self.conn.execute(
            f"SELECT num, {columns} FROM {table} WHERE {' AND '.join(where)} "
            "ORDER BY num DESC LIMIT ?",
            (*params, size + 1),
        ).fetchall()
        next_cursor = None
        if len(rows) > size:
            rows = rows[:size]
            next_cursor = self.signer.encode(
                kind, scope.pair, filters, {"num": rows[-1]["num"], "total": total}
            )
        return rows, next_cursor, total

    def list_knowledge(
        self, scope: Scope, *, limit: int | None, cursor: str | None, q: str | None
    ) -> Page[KnowledgeDoc]:
        """One page of the workspace's documents, newest first.

        Raises:
            InvalidRequest: When `limit` is below 1.
            InvalidCursor: When the cursor is not one of this list's.
        """
        rows, next_cursor, total = self._page(
            scope,
            kind="knowledge",
            table="knowledge_docs",
            columns=_DOC_COLUMNS,
            title_column="title",
            limit=limit,
            cursor=cursor,
            q=q,
        )
        return Page[KnowledgeDoc](
            items=[_doc(r) for r in rows], next_cursor=next_cursor, total=total
        )

    # -- search ----------------------------------------------------------------------

    def _matches(self, match: str, cap: int) -> int:
        """How many chunks (any workspace) match, counted up to `cap` + 1."""
        row = self.conn.execute(
            "SELECT count(*) AS n FROM (SELECT 1 FROM knowledge_chunks_fts "
            "WHERE knowledge_chunks_fts MATCH ? LIMIT ?)",
            (match, cap + 1),
        ).fetchone()
        return int(row["n"])

    def _window_floor(self, match: str) -> int | None:
        """The rowid above which the newest `RANK_BUDGET` matching chunks lie."""
        row = self.conn.execute(
            "SELECT rowid FROM knowledge_chunks_fts WHERE knowledge_chunks_fts "
            "MATCH ? ORDER BY rowid DESC LIMIT 1 OFFSET ?",
            (match, RANK_BUDGET - 1),
        ).fetchone()
        return None if row is None else int(row[0])

    def _search_plan(self, words: Sequence[str]) -> list[tuple[str, int | None]]:
        """The ranked queries to run, best first: (FTS5 query, lowest rowid or None).

        bm25 costs a few microseconds per matching chunk, so no query ranks more than
        about `RANK_BUDGET` chunks (30 ms p95 over 200,000 chunks, issue 4):

        - Informative words (together matching at most `RANK_BUDGET` chunks, rarest
          first) are ranked exactly: first the chunks that also hold one of the
          common words, then the others.
        - Common words alone (a query of only those, or to fill up): chunks holding
          all of them when those are few enough, else the best of the newest
          `RANK_BUDGET` chunks holding any. A word in that many chunks says little
          about which chunk is best; recent documents are the likelier reference.
        """
        counts = {word: self._matches(fts_any([word]), RANK_BUDGET) for word in words}
        informative: list[str] = []
        used = 0
        for word in sorted(words, key=lambda w: counts[w]):
            if used + counts[word] <= RANK_BUDGET:
                informative.append(word)
                used += counts[word]
        common = [word for word in words if word not in informative]
        plan: list[tuple[str, int | None]] = []
        if informative:
            if common:
                plan.append((f"({fts_any(informative)}) AND ({fts_any(common)})", None))
            plan.append((fts_any(informative), None))
        if common:
            if len(common) > 1:
                every = fts_all(common)
                if self._matches(every, RANK_BUDGET) <= RANK_BUDGET:
                    plan.append((every, None))
            anyone = fts_any(common)
            plan.append((anyone, self._window_floor(anyone)))
        return plan

    def _ranked(
        self,
        scope: Scope,
        match: str,
        limit: int,
        floor: int | None,
        bound: int | None,
    ) -> list[sqlite3.Row]:
        # The best `bound` rows are ranked on the virtual table alone and only those
        # are joined and filtered by workspace. `ORDER BY bm25()` (SQLite's sorter,
        # keeping the best `bound`) rather than `ORDER BY rank` (FTS5's own sorter,
        # which runs a nested statement): the same order for a third less CPU (the
        # newest 6,000 chunks of a common word: ~11 ms against ~16 ms).
        where = "knowledge_chunks_fts MATCH :match"
        if floor is not None:
            where += " AND rowid >= :floor"
        inner = (
            "SELECT rowid, bm25(knowledge_chunks_fts) AS score "
            f"FROM knowledge_chunks_fts WHERE {where} ORDER BY score"
        )
        if bound is not None:
            inner += " LIMIT :bound"
        rows: list[sqlite3.Row] = self.conn.execute(
            f"""SELECT c.num, c.doc_id, d.title, c.chunk, c.text
            FROM ({inner}) AS best
            JOIN knowledge_chunks c ON c.num = best.rowid
            JOIN knowledge_docs d ON d.workspace_id = c.workspace_id AND d.id = c.doc_id
            WHERE c.workspace_id = :ws
            ORDER BY best.score, c.num LIMIT :limit""",
            {
                "match": match,
                "floor": floor,
                "bound": bound,
                "ws": scope.workspace_id,
                "limit": limit,
            },
        ).fetchall()
        if len(rows) < limit and bound is not None:
            # Other workspaces' chunks took the top places (or there are few hits):
            # rank every match of this (bounded) query.
            return self._ranked(scope, match, limit, floor, None)
        return rows

    def search_knowledge(
        self, scope: Scope, q: str, *, limit: int | None = None
    ) -> list[KnowledgeHit]:
        """The workspace's chunks that best match any of the query's words.

        See `_search_plan` for how the cost stays bounded on common words.

        Raises:
            InvalidRequest: When the query has no words or `limit` is below 1.
        """
        size = search_limit(limit)
        found: dict[int, sqlite3.Row] = {}
        for match, floor in self._search_plan(search_terms(q)):
            for row in self._ranked(scope, match, size, floor, size * SEARCH_OVERFETCH):
                found.setdefault(row["num"], row)
            if len(found) >= size:
                break
        return [
            KnowledgeHit(
                doc_id=r["doc_id"], title=r["title"], chunk=r["chunk"], text=r["text"]
            )
            for r in list(found.values())[:size]
        ]

    # -- leads -----------------------------------------------------------------------

    def import_leads(
        self, scope: Scope, records: Sequence[dict[str, Any]]
    ) -> list[Lead]:
        """Store validated records as leads (an identical record is stored once).

        Args:
            scope: The caller (its workspace owns the leads).
            records: Records already checked by `leads.validate_records`.

        Returns:
            One lead per record, in order.
        """
        leads: list[Lead] = []
        with self.sc.write() as conn:
            self._ensure_workspace(scope)
            for record in records:
                digest = record_hash(record)
                row = conn.execute(
                    "SELECT id, name, fields, created_at FROM leads "
                    "WHERE workspace_id = ? AND record_hash = ?",
                    (scope.workspace_id, digest),
                ).fetchone()
                if row is None:
                    lead_id = self.clock.new_id("lead")
                    conn.execute(
                        "INSERT INTO leads (workspace_id, id, name, fields, created_at, "
                        "record_hash) VALUES (?, ?, ?, ?, ?, ?)",
                        (
                            scope.workspace_id,
                            lead_id,
                            guess_name(record),
                            dumps(record),
                            self.now(),
                            digest,
                        ),
                    )
                    row = conn.execute(
                        "SELECT id, name, fields, created_at FROM leads "
                        "WHERE workspace_id = ? AND id = ?",
                        (scope.workspace_id, lead_id),
                    ).fetchone()
                leads.append(_lead(row))
        return leads

    def get_lead(self, scope: Scope, lead_id: str) -> Lead:
        """One lead of the workspace.

        Raises:
            NotFound: When it is not in the workspace.
        """
        row = self.conn.execute(
            "SELECT id, name, fields, created_at FROM leads "
            "WHERE workspace_id = ? AND id = ?",
            (scope.workspace_id, lead_id),
        ).fetchone()
        if row is None:
            raise NotFound(LEAD_NOT_FOUND)
        return _lead(row)

    def list_leads(
        self, scope: Scope, *, limit: int | None, cursor: str | None, q: str | None
    ) -> Page[Lead]:
        """One page of the workspace's leads, newest first.

        Raises:
            InvalidRequest: When `limit` is below 1.
            InvalidCursor: When the cursor is not one of this list's.
        """
        rows, next_cursor, total = self._page(
            scope,
            kind="leads",
            table="leads",
            columns="id, name, fields, created_at",
            title_column="name",
            limit=limit,
            cursor=cursor,
            q=q,
        )
        return Page[Lead](
            items=[_lead(r) for r in rows], next_cursor=next_cursor, total=total
        )

    # -- context for the prompt ------------------------------------------------------

    def _doc_block(self, scope: Scope, row: sqlite3.Row, budget: int) -> AttachmentText:
        text = self._doc_text(scope, row["id"])
        return AttachmentText(
            name=row["title"],
            text=text[:budget],
            kind="knowledge",
            media_type=row["media_type"],
            truncated=len(text) > budget,
        )

    @staticmethod
    def _lead_block(lead: Lead, budget: int) -> AttachmentText:
        text = lead_text(lead)
        return AttachmentText(
            name=lead.name,
            text=text[:budget],
            kind="lead",
            media_type="application/json",
            truncated=len(text) > budget,
        )

    def resolve_context(
        self, scope: Scope, knowledge: Sequence[str], lead: str | None
    ) -> list[tuple[Attachment, AttachmentText]]:
        """Knowledge documents and a lead attached to one message, with their text.

        Documents come first, then the lead; the lead's text is budgeted first (it is
        small and the message is usually about it), and the documents share what is
        left of `MAX_CONTEXT_CHARS`, in order.

        Raises:
            InvalidRequest: When one of them is not in the workspace, or a document
                is named twice.
        """
        if len(set(knowledge)) != len(knowledge):
            raise InvalidRequest("A knowledge document is attached twice.")
        found: list[tuple[Attachment, AttachmentText]] = []
        lead_pair: tuple[Attachment, AttachmentText] | None = None
        budget = MAX_CONTEXT_CHARS
        if lead is not None:
            try:
                record = self.get_lead(scope, lead)
            except NotFound:
                raise InvalidRequest(f"No lead {lead!r} in this workspace.") from None
            block = self._lead_block(record, budget)
            budget -= len(block.text)
            attachment = Attachment(
                id=self.clock.new_id("att"),
                kind="lead",
                name=record.name,
                media_type="application/json",
                size=len(lead_text(record).encode("utf-8", "surrogatepass")),
                truncated=block.truncated,
                ref_id=record.id,
            )
            lead_pair = (attachment, block)
        rows = []
        for doc_id in knowledge:
            try:
                rows.append(self._doc_row(scope, doc_id))
            except NotFound:
                raise InvalidRequest(
                    f"No knowledge document {doc_id!r} in this workspace."
                ) from None
        for row in rows:
            block = self._doc_block(scope, row, max(budget, 0))
            budget -= len(block.text)
            attachment = Attachment(
                id=self.clock.new_id("att"),
                kind="knowledge",
                name=row["title"],
                media_type=row["media_type"],
                size=row["size"],
                sha256=row["sha256"],
                truncated=block.truncated,
                ref_id=row["id"],
            )
            found.append((attachment, block))
        if lead_pair is not None:
            found.append(lead_pair)
        return found

    def thread_context(
        self, scope: Scope, context: ThreadContext
    ) -> list[AttachmentText]:
        """The text of a thread's context documents and lead, for its system prompt.

        Documents or a lead removed since the thread was created are left out (the
        thread keeps working without them). Same budget and order as
        `resolve_context`.
        """
        texts: list[AttachmentText] = []
        lead_block: AttachmentText | None = None
        budget = MAX_CONTEXT_CHARS
        if context.lead is not None:
            try:
                record = self.get_lead(scope, context.lead)
            except NotFound:
                record = None
            if record is not None:
                lead_block = self._lead_block(record, budget)
                budget -= len(lead_block.text)
        for doc_id in dict.fromkeys(context.knowledge):
            try:
                row = self._doc_row(scope, doc_id)
            except NotFound:
                continue
            block = self._doc_block(scope, row, max(budget, 0))
            budget -= len(block.text)
            texts.append(block)
        if lead_block is not None:
            texts.append(lead_block)
        return texts
