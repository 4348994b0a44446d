"""The operations of `MirroredBackend` that only the remote workspace can do.

Regenerating, editing, following or stopping a reply needs the remote's model and live
streams; models, brand knowledge and leads live on the remote (they are not mirrored).
While offline these raise `RemoteUnavailable` with a sentence saying why, instead of
waiting on a network that is not there.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any, Literal

from tenex_tui.core.errors import RemoteUnavailable
from tenex_tui.core.events import StreamEvent
from tenex_tui.core.models import KnowledgeDoc, KnowledgeHit, Lead, Message, Page
from tenex_tui.remote.client import RemoteBackend


def needs_remote(what: str) -> RemoteUnavailable:
    """The error of an operation tried offline that only the remote can do."""
    return RemoteUnavailable(
        f"Offline: {what} needs the remote workspace; it is not reachable right now."
    )


class RemoteOnlyOperations:
    """The remote's own operations, refused while offline (a base of `MirroredBackend`)."""

    _remote: RemoteBackend

    @property
    def offline(self) -> bool:
        """True when calls cannot reach the remote (the subclass decides)."""
        raise NotImplementedError

    def regenerate(
        self,
        thread_id: str,
        *,
        mode: Literal["regenerate", "continue"] = "regenerate",
        client_request_id: str | None = None,
    ) -> AsyncIterator[StreamEvent]:
        """Regenerate on the remote (it has the model); offline it raises."""
        if self.offline:
            return _raising(needs_remote("regenerating a reply"))
        return self._remote.regenerate(
            thread_id, mode=mode, client_request_id=client_request_id
        )

    async def edit_message(
        self, thread_id: str, message_id: str, content: str
    ) -> Message:
        """Edit on the remote; offline it raises."""
        if self.offline:
            raise needs_remote("editing a message")
        return await self._remote.edit_message(thread_id, message_id, content)

    def stream_events(
        self, thread_id: str, message_id: str, *, after: str | None = None
    ) -> AsyncIterator[StreamEvent]:
        """Resume a remote reply's stream; offline it raises."""
        if self.offline:
            return _raising(needs_remote("following a reply"))
        return self._remote.stream_events(thread_id, message_id, after=after)

    async def cancel_message(self, thread_id: str, message_id: str) -> Message:
        """Stop a remote reply; offline it raises."""
        if self.offline:
            raise needs_remote("stopping a reply")
        return await self._remote.cancel_message(thread_id, message_id)

    async def list_models(self) -> list[str]:
        """The remote's models (it runs them); offline it raises."""
        if self.offline:
            raise needs_remote("listing models")
        return await self._remote.list_models()

    async def list_knowledge(
        self,
        *,
        limit: int | None = None,
        cursor: str | None = None,
        q: str | None = None,
    ) -> Page[KnowledgeDoc]:
        """The remote's documents; offline it raises."""
        if self.offline:
            raise needs_remote("brand knowledge")
        return await self._remote.list_knowledge(limit=limit, cursor=cursor, q=q)

    async def get_knowledge(
        self, doc_id: str, *, with_text: bool = False
    ) -> KnowledgeDoc:
        """One remote document; offline it raises."""
        if self.offline:
            raise needs_remote("brand knowledge")
        return await self._remote.get_knowledge(doc_id, with_text=with_text)

    async def add_knowledge(
        self,
        title: str,
        text: str,
        *,
        media_type: str = "text/plain",
        source: str | None = None,
    ) -> KnowledgeDoc:
        """Add a remote document; offline it raises."""
        if self.offline:
            raise needs_remote("brand knowledge")
        return await self._remote.add_knowledge(
            title, text, media_type=media_type, source=source
        )

    async def remove_knowledge(self, doc_id: str) -> None:
        """Remove a remote document; offline it raises."""
        if self.offline:
            raise needs_remote("brand knowledge")
        await self._remote.remove_knowledge(doc_id)

    async def search_knowledge(
        self, q: str, limit: int | None = None
    ) -> list[KnowledgeHit]:
        """Search the remote's documents; offline it raises."""
        if self.offline:
            raise needs_remote("brand knowledge")
        return await self._remote.search_knowledge(q, limit)

    async def import_leads(self, records: Sequence[Mapping[str, Any]]) -> list[Lead]:
        """Import remote leads; offline it raises."""
        if self.offline:
            raise needs_remote("leads")
        return await self._remote.import_leads(records)

    async def list_leads(
        self,
        *,
        limit: int | None = None,
        cursor: str | None = None,
        q: str | None = None,
    ) -> Page[Lead]:
        """The remote's leads; offline it raises."""
        if self.offline:
            raise needs_remote("leads")
        return await self._remote.list_leads(limit=limit, cursor=cursor, q=q)

    async def get_lead(self, lead_id: str) -> Lead:
        """One remote lead; offline it raises."""
        if self.offline:
            raise needs_remote("leads")
        return await self._remote.get_lead(lead_id)


class _Raising:
    """A stream that fails on its first step, as a remote stream call does offline."""

    def __init__(self, error: Exception) -> None:
        self._error = error

    def __aiter__(self) -> _Raising:
        return self

    async def __anext__(self) -> StreamEvent:
        raise self._error


def _raising(error: Exception) -> AsyncIterator[StreamEvent]:
    return _Raising(error)
