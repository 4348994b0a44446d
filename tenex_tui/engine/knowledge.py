"""Brand knowledge: documents split into chunks for the FTS5 index, and search queries.

A document is stored once (`knowledge_docs`) and as consecutive chunks
(`knowledge_chunks`, indexed by `knowledge_chunks_fts`). Chunks are cut at the most
natural boundary near `CHUNK_TARGET` characters (a blank line, else a line end, else a
sentence end, else a space) and never overlap, so joining them gives back the exact
text: the store keeps no second copy, and a document attached to a message is rebuilt
from its chunks. Chunks of about a thousand characters keep a search hit small enough
to hand to a model several at a time, and large enough to carry a whole paragraph.

Search takes the user's (or the model's) words, never FTS5 syntax: each word becomes a
quoted phrase, common English words are dropped (they match nearly every chunk), and
the phrases are OR-ed, so bm25 ranks chunks that match more and rarer words first. A
model asking for "Globex pricing and integrations" gets the chunks about Globex's
pricing, not only the ones that contain all four words. The store bounds the ranking's
cost on words that are common in the corpus itself (`store_knowledge._search_plan`).

Everything here is pure and synchronous; the SQL is in `store_knowledge.py`.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from tenex_tui.core.errors import InvalidRequest
from tenex_tui.core.payloads import MAX_KNOWLEDGE_CHARS, MAX_TITLE_CHARS

CHUNK_TARGET = 1000
"""Characters a chunk aims for."""
CHUNK_LIMIT = 1600
"""Characters a chunk never exceeds."""
MAX_MEDIA_TYPE_CHARS = 100
MAX_SOURCE_CHARS = 1000
MAX_QUERY_WORDS = 16
"""Words of a search query used at most (the rest are ignored)."""
MAX_QUERY_CHARS = 1000
"""Longest search query accepted."""
DEFAULT_SEARCH_LIMIT = 8
MAX_SEARCH_LIMIT = 50

# Separators in order of preference; a chunk ends just after one of them.
_BREAKS = ("\n\n", "\n", ". ", "? ", "! ", "; ", ", ", " ")

# Words that match most English chunks and say little about a topic. Dropped from
# queries unless the query has nothing else.
_STOP_WORDS = """a about above after again against all am an and any are as at be because been
    before being below between both but by can could did do does doing down during each
    few for from further had has have having he her here hers him his how i if in into
    is it its itself just me more most my no nor not now of off on once only or other
    our ours out over own same she should so some such than that the their theirs them
    then there these they this those through to too under until up very was we were
    what when where which while who whom why will with would you your yours"""
STOP_WORDS: frozenset[str] = frozenset(_STOP_WORDS.split())

_WORD = re.compile(r"\w+", re.UNICODE)


@dataclass(frozen=True)
class PreparedDocument:
    """A document checked and split, ready for the store."""

    title: str
    text: str
    media_type: str
    source: str | None
    sha256: str
    size: int
    """Bytes of the text in UTF-8."""
    chunks: tuple[str, ...]


def _break_at(window: str, minimum: int) -> int:
    """Where to end a chunk inside `window`: just after the best separator."""
    for separator in _BREAKS:
        position = window.rfind(separator, minimum)
        if position != -1:
            return position + len(separator)
    return len(window)


def chunk_text(
    text: str, *, target: int = CHUNK_TARGET, limit: int = CHUNK_LIMIT
) -> list[str]:
    """Split text into consecutive chunks at natural boundaries.

    Args:
        text: The document's text.
        target: Characters a chunk aims for; a chunk is at least half of it unless the
            text ends first.
        limit: Characters a chunk never exceeds.

    Returns:
        Chunks whose concatenation is exactly `text` (empty for empty text).

    Raises:
        ValueError: When `limit` is smaller than `target` or `target` is below 2.
    """
    if target < 2 or limit < target:
        raise ValueError("chunk sizes need 2 <= target <= limit")
    chunks: list[str] = []
    start = 0
    while len(text) - start > limit:
        window = text[start : start + limit]
        cut = _break_at(window, target // 2)
        chunks.append(window[:cut])
        start += cut
    if start < len(text):
        chunks.append(text[start:])
    return chunks


def _visible(text: str) -> bool:
    return any(not ch.isspace() for ch in text)


def prepare_document(
    title: str,
    text: str,
    *,
    media_type: str = "text/plain",
    source: str | None = None,
) -> PreparedDocument:
    """Check a document's fields and split its text into chunks.

    Args:
        title: At most 200 characters, with some visible text.
        text: At most `MAX_KNOWLEDGE_CHARS` characters, with some visible text.
        media_type: At most 100 characters (`text/plain` when empty).
        source: At most 1000 characters, or None.

    Returns:
        The document with its digest, size and chunks.

    Raises:
        InvalidRequest: When a field is empty or too long.
    """
    if len(title) > MAX_TITLE_CHARS:
        raise InvalidRequest(f"A title is at most {MAX_TITLE_CHARS} characters.")
    if not _visible(title):
        raise InvalidRequest("A knowledge document needs a title with visible text.")
    if len(text) > MAX_KNOWLEDGE_CHARS:
        raise InvalidRequest(
            f"A knowledge document is at most {MAX_KNOWLEDGE_CHARS:,} characters; "
            f"this one has {len(text):,}."
        )
    if not _visible(text):
        raise InvalidRequest(f"The document {title!r} has no text.")
    media_type = media_type.strip() or "text/plain"
    if len(media_type) > MAX_MEDIA_TYPE_CHARS:
        raise InvalidRequest(
            f"A media type is at most {MAX_MEDIA_TYPE_CHARS} characters."
        )
    if source is not None and len(source) > MAX_SOURCE_CHARS:
        raise InvalidRequest(f"A source is at most {MAX_SOURCE_CHARS} characters.")
    encoded = text.encode("utf-8", "surrogatepass")
    return PreparedDocument(
        title=title,
        text=text,
        media_type=media_type,
        source=source,
        sha256=hashlib.sha256(encoded).hexdigest(),
        size=len(encoded),
        chunks=tuple(chunk_text(text)),
    )


def search_terms(q: str) -> list[str]:
    """The words of a search query that are worth looking for.

    Common English words are dropped unless nothing else is left; duplicates are
    dropped; at most `MAX_QUERY_WORDS` words are kept.

    Raises:
        InvalidRequest: When the query is too long or has no words.
    """
    if len(q) > MAX_QUERY_CHARS:
        raise InvalidRequest(f"A search is at most {MAX_QUERY_CHARS} characters.")
    words: list[str] = []
    for word in _WORD.findall(q.casefold()):
        if word not in words:
            words.append(word)
    if not words:
        raise InvalidRequest("Search for at least one word.")
    meaningful = [w for w in words if w not in STOP_WORDS]
    return (meaningful or words)[:MAX_QUERY_WORDS]


def fts_any(words: list[str]) -> str:
    """An FTS5 query matching any of the words, each as a quoted phrase."""
    return " OR ".join('"' + word.replace('"', '""') + '"' for word in words)


def fts_all(words: list[str]) -> str:
    """An FTS5 query matching all of the words, each as a quoted phrase."""
    return " AND ".join('"' + word.replace('"', '""') + '"' for word in words)


def search_limit(limit: int | None) -> int:
    """Apply the search's page rules: default 8, at most 50.

    Raises:
        InvalidRequest: When the limit is below 1.
    """
    if limit is None:
        return DEFAULT_SEARCH_LIMIT
    if limit < 1:
        raise InvalidRequest("limit must be at least 1")
    return min(limit, MAX_SEARCH_LIMIT)
