"""The knowledge and lead operations of `LocalEngine` (see `ChatBackend`).

Documents and leads belong to the view's workspace (every user of it shares them).
The CPU work of adding (hashing and chunking up to a million characters, checking ten
thousand lead records) runs off the event loop; the SQL runs on the DB thread.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from typing import Any

from tenex_tui.core.models import KnowledgeDoc, KnowledgeHit, Lead, Page
from tenex_tui.engine.engine_core import EngineView
from tenex_tui.engine.knowledge import prepare_document
from tenex_tui.engine.leads import validate_records


class KnowledgeOperations(EngineView):
    """Brand knowledge documents and leads."""

    async def list_knowledge(
        self,
        *,
        limit: int | None = None,
        cursor: str | None = None,
        q: str | None = None,
    ) -> Page[KnowledgeDoc]:
        """The workspace's documents, newest first (see `ChatBackend.list_knowledge`)."""
        return await self._run(
            self._core.store.list_knowledge,
            self._scope,
            limit=limit,
            cursor=cursor,
            q=q,
        )

    async def get_knowledge(
        self, doc_id: str, *, with_text: bool = False
    ) -> KnowledgeDoc:
        """One document (see `ChatBackend.get_knowledge`)."""
        return await self._run(
            self._core.store.get_knowledge, self._scope, doc_id, with_text=with_text
        )

    async def add_knowledge(
        self,
        title: str,
        text: str,
        *,
        media_type: str = "text/plain",
        source: str | None = None,
    ) -> KnowledgeDoc:
        """Store and index a document (see `ChatBackend.add_knowledge`)."""
        prepared = await asyncio.to_thread(
            prepare_document, title, text, media_type=media_type, source=source
        )
        return await self._run(self._core.store.add_knowledge, self._scope, prepared)

    async def remove_knowledge(self, doc_id: str) -> None:
        """Delete a document (see `ChatBackend.remove_knowledge`)."""
        await self._run(self._core.store.remove_knowledge, self._scope, doc_id)

    async def search_knowledge(
        self, q: str, limit: int | None = None
    ) -> list[KnowledgeHit]:
        """The best chunks for `q` (see `ChatBackend.search_knowledge`)."""
        return await self._run(
            self._core.store.search_knowledge, self._scope, q, limit=limit
        )

    async def import_leads(self, records: Sequence[Mapping[str, Any]]) -> list[Lead]:
        """Import lead records (see `ChatBackend.import_leads`)."""
        clean = await asyncio.to_thread(validate_records, list(records))
        return await self._run(self._core.store.import_leads, self._scope, clean)

    async def list_leads(
        self,
        *,
        limit: int | None = None,
        cursor: str | None = None,
        q: str | None = None,
    ) -> Page[Lead]:
        """The workspace's leads, newest first (see `ChatBackend.list_leads`)."""
        return await self._run(
            self._core.store.list_leads, self._scope, limit=limit, cursor=cursor, q=q
        )

    async def get_lead(self, lead_id: str) -> Lead:
        """One lead (see `ChatBackend.get_lead`)."""
        return await self._run(self._core.store.get_lead, self._scope, lead_id)
