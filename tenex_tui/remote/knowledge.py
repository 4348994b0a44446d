"""The knowledge and lead operations of `RemoteBackend` (`/knowledge`, `/leads`).

A mixin over the client's own request helpers, so these routes follow exactly the
same transport policy (timeouts, retries, auth, size caps) and error mapping as the
chat routes. Writes carry an `Idempotency-Key`, so a retried add or import never
stores a document or a batch of leads twice.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import quote

import pydantic

from tenex_tui.core.models import KnowledgeDoc, KnowledgeHit, Lead, Page
from tenex_tui.core.payloads import AddKnowledgeBody, ImportLeadsBody

T = TypeVar("T")
B = TypeVar("B", bound=pydantic.BaseModel)


def _seg(value: str) -> str:
    return quote(value, safe="")


class KnowledgeClient:
    """Brand knowledge and leads over HTTP (mixed into `RemoteBackend`)."""

    if TYPE_CHECKING:
        # Provided by `RemoteBackend`; declared here so the mixin type-checks alone.
        async def _call(
            self,
            method: str,
            path: str,
            *,
            params: Mapping[str, str] | None = None,
            body: pydantic.BaseModel | None = None,
            idempotent_post: bool = False,
        ) -> Any: ...

        def _parse(self, model: type[T], data: Any, method: str, path: str) -> T: ...

        def _page(
            self, model: type[T], data: Any, method: str, path: str
        ) -> Page[T]: ...

        @staticmethod
        def _body(body_type: type[B], /, **fields: Any) -> B: ...

        @staticmethod
        def _params(**values: object) -> dict[str, str]: ...

    async def list_knowledge(
        self,
        *,
        limit: int | None = None,
        cursor: str | None = None,
        q: str | None = None,
    ) -> Page[KnowledgeDoc]:
        """The workspace's documents (`GET /knowledge`)."""
        params = self._params(limit=limit, cursor=cursor, q=q)
        data = await self._call("GET", "/knowledge", params=params)
        return self._page(KnowledgeDoc, data, "GET", "/knowledge")

    async def get_knowledge(
        self, doc_id: str, *, with_text: bool = False
    ) -> KnowledgeDoc:
        """One document (`GET /knowledge/{id}`, `?text=true` for its text)."""
        path = f"/knowledge/{_seg(doc_id)}"
        params = self._params(text=True) if with_text else None
        data = await self._call("GET", path, params=params)
        return self._parse(KnowledgeDoc, data, "GET", path)

    async def add_knowledge(
        self,
        title: str,
        text: str,
        *,
        media_type: str = "text/plain",
        source: str | None = None,
    ) -> KnowledgeDoc:
        """Add a document (`POST /knowledge`)."""
        body = self._body(
            AddKnowledgeBody,
            title=title,
            text=text,
            media_type=media_type,
            source=source,
        )
        data = await self._call("POST", "/knowledge", body=body, idempotent_post=True)
        return self._parse(KnowledgeDoc, data, "POST", "/knowledge")

    async def remove_knowledge(self, doc_id: str) -> None:
        """Delete a document (`DELETE /knowledge/{id}`)."""
        await self._call("DELETE", f"/knowledge/{_seg(doc_id)}")

    async def search_knowledge(
        self, q: str, limit: int | None = None
    ) -> list[KnowledgeHit]:
        """The best chunks for `q` (`GET /knowledge/search`)."""
        params = self._params(q=q, limit=limit)
        data = await self._call("GET", "/knowledge/search", params=params)
        page = self._page(KnowledgeHit, data, "GET", "/knowledge/search")
        return list(page.items)

    async def import_leads(self, records: Sequence[Mapping[str, Any]]) -> list[Lead]:
        """Import lead records (`POST /leads`)."""
        body = self._body(ImportLeadsBody, records=[dict(r) for r in records])
        data = await self._call("POST", "/leads", body=body, idempotent_post=True)
        return list(self._page(Lead, data, "POST", "/leads").items)

    async def list_leads(
        self,
        *,
        limit: int | None = None,
        cursor: str | None = None,
        q: str | None = None,
    ) -> Page[Lead]:
        """The workspace's leads (`GET /leads`)."""
        params = self._params(limit=limit, cursor=cursor, q=q)
        data = await self._call("GET", "/leads", params=params)
        return self._page(Lead, data, "GET", "/leads")

    async def get_lead(self, lead_id: str) -> Lead:
        """One lead (`GET /leads/{id}`)."""
        path = f"/leads/{_seg(lead_id)}"
        return self._parse(Lead, await self._call("GET", path), "GET", path)
