"""Full-text search (FTS5) over message content and thread titles (knowledge chunks:
`store_knowledge.py`).

User input is never FTS5 query syntax: every whitespace-separated word becomes a quoted
phrase (inner quotes doubled), so `fox" AND` or `NEAR(` search for those words instead
of raising (FACTS.md). FTS tables hold no scope of their own; every query joins back to
the base table and filters on its `workspace_id` (and `user_id` for chats).

Cost: a page ranks at most `RANK_WINDOW` matches of each kind, whatever the size of
the database (`SearchMixin.search` says what that means for the order). Over 1,000,000
messages the old plan took 20 s and more; this one takes 5-15 ms (benchmarks/README.md):

- The FTS5 table drives every statement (`CROSS JOIN` pins it outside), walking a
  word's postings newest first, each joined back to its row by primary key for the
  scope. Without it SQLite may walk every row of the scope and run the MATCH per row.
- bm25 is computed for the tier's matches only, and words too common to rank by are
  left out of it: its idf reads every posting of each word it scores (~25 ns each,
  17 ms for a word in 700,000 messages) before it ranks a single row.
- Snippets are made for the page only: a second pass over the same stretch of postings
  picks the page's rows out by rowid (a MATCH with `rowid = ?` costs ~0.2 ms a row on
  a common word; the pass, ~1 ms a page).
- `total` comes free when the first tier holds every match; beyond that it is None
  (best-effort, as the contract allows): counting in scope costs a join per match.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from tenex_tui.core.errors import InvalidCursor, InvalidRequest
from tenex_tui.core.models import Page, SearchHit, clamp_limit
from tenex_tui.engine.store_base import Scope, StoreBase

RANK_WINDOW = 1_000
"""Matches of each kind (messages, titles) ranked together at most: one tier.

bm25 and the scope join cost 3-7 µs a match on a 2-core box, so a tier costs 5-10 ms
whatever the word, and any word in fewer than 1,000 messages is ranked exactly."""

HIGHLIGHT_OPEN = "«"
HIGHLIGHT_CLOSE = "»"

PROBE = 64
"""Newest matches of each word looked at to tell how common it is."""

COMMON_SHARE = 8
"""A word in more than one message in this many is too common to score (idf < 2,
against ~7 for a word in one message in a thousand)."""

_NO_CEILING = 2**63 - 1
"""The ceiling of the first tier: every rowid."""

_THREAD, _MESSAGE = 0, 1
"""Kinds of hit; on equal scores a title sorts before a message."""


def fts_phrases(q: str) -> list[str]:
    """Each whitespace-separated word of user text as a quoted FTS5 phrase.

    Raises:
        InvalidRequest: When the text has no words.
    """
    words = q.split()
    if not words:
        raise InvalidRequest("Search for at least one word.")
    return ['"' + word.replace('"', '""') + '"' for word in words]


def fts_query(q: str) -> str:
    """Turn user text into an FTS5 query that matches all its words.

    Raises:
        InvalidRequest: When the text has no words.
    """
    return " ".join(fts_phrases(q))


def _kind_sql(template: str, kind: int) -> str:
    fts, base = (
        ("messages_fts", "messages") if kind == _MESSAGE else ("threads_fts", "threads")
    )
    return template.format(fts=fts, base=base)


# Statements over either kind: `{fts}` is the FTS5 table, `{base}` the table it indexes
# (both kinds carry `num`, `workspace_id` and `user_id`). `CROSS JOIN` keeps the FTS5
# table outside: SQLite would otherwise walk every row of the scope and run the MATCH
# once per row.

_PROBE = """
    SELECT {fts}.rowid FROM {fts} CROSS JOIN {base} b ON b.num = {fts}.rowid
    WHERE {fts} MATCH :match AND b.workspace_id = :ws AND b.user_id = :user
    ORDER BY {fts}.rowid DESC LIMIT :probe"""
"""The newest matches of one word, whose spread of rowids tells how common it is."""

_WINDOW_SCORED = """
    SELECT {fts}.rowid, bm25({fts}) FROM {fts} CROSS JOIN {base} b ON b.num = {fts}.rowid
    WHERE {fts} MATCH :match AND {fts}.rowid <= :ceiling
        AND b.workspace_id = :ws AND b.user_id = :user
    ORDER BY {fts}.rowid DESC LIMIT :window"""
"""A tier's matches with their bm25 score (lower is better), newest first."""

_WINDOW = """
    SELECT {fts}.rowid FROM {fts} CROSS JOIN {base} b ON b.num = {fts}.rowid
    WHERE {fts} MATCH :match AND {fts}.rowid <= :ceiling
        AND b.workspace_id = :ws AND b.user_id = :user
    ORDER BY {fts}.rowid DESC LIMIT :window"""
"""A tier's matches without a score (for a query with common words)."""

# The range bounds the FTS5 scan to the postings the window walked; the unary `+` keeps
# SQLite from handing the rowid list to FTS5 as equality constraints (one seek per
# rowid, ~0.2 ms each on a common word), so the list is checked as a filter and the
# function in the result runs for the listed rows only.
_LISTED = """{fts} MATCH :match AND {fts}.rowid BETWEEN :low AND :high
    AND +{fts}.rowid IN (SELECT value FROM json_each(:nums))
    AND b.workspace_id = :ws AND b.user_id = :user"""

_SCORES = (
    """SELECT {fts}.rowid, bm25({fts}) FROM {fts}
    CROSS JOIN {base} b ON b.num = {fts}.rowid WHERE """
    + _LISTED
)
"""bm25 of the listed rows for the informative words alone."""

_DETAILS = {
    _MESSAGE: f"""
        SELECT b.num AS num, b.thread_id AS thread_id, b.id AS message_id,
            t.title AS thread_title, b.role AS role, b.created_at AS created_at,
            snippet(messages_fts, 0, '{HIGHLIGHT_OPEN}', '{HIGHLIGHT_CLOSE}', '…', 16)
                AS snippet
        FROM messages_fts CROSS JOIN messages b ON b.num = messages_fts.rowid
        JOIN threads t ON t.workspace_id = b.workspace_id AND t.id = b.thread_id
        WHERE """
    + _LISTED.format(fts="messages_fts"),
    _THREAD: f"""
        SELECT b.num AS num, b.id AS thread_id, NULL AS message_id,
            b.title AS thread_title, NULL AS role, b.created_at AS created_at,
            highlight(threads_fts, 0, '{HIGHLIGHT_OPEN}', '{HIGHLIGHT_CLOSE}')
                AS snippet
        FROM threads_fts CROSS JOIN threads b ON b.num = threads_fts.rowid
        WHERE """
    + _LISTED.format(fts="threads_fts"),
}
"""The page's rows of one kind with their snippets (titles: highlighted whole)."""


@dataclass(frozen=True)
class _Plan:
    """How one query is ranked (fixed by its first page, carried by its cursors)."""

    match: str
    """Every word: what a hit must contain."""
    ranked: str | None
    """The informative words, scored by bm25; None: no word is (newest first)."""
    common: tuple[int, ...]
    """Indexes of the words too common to score."""


@dataclass(frozen=True)
class _Tier:
    """Where one tier starts: the highest rowid of each kind in it (None: none left)."""

    messages: int | None
    threads: int | None

    def ceiling(self, kind: int) -> int | None:
        return self.messages if kind == _MESSAGE else self.threads


@dataclass(frozen=True)
class _Ranked:
    """One tier's matches, best first, and where the next tier starts (None: last)."""

    hits: list[tuple[float, int, int]]
    """(score, kind, -rowid): sorting these is the tier's order."""
    next: _Tier | None


_FIRST_TIER = _Tier(messages=_NO_CEILING, threads=_NO_CEILING)


class SearchMixin(StoreBase):
    """Search queries."""

    def _rows(self, sql: str, params: dict[str, Any]) -> list[tuple[Any, ...]]:
        cursor = self.conn.cursor()
        cursor.row_factory = None  # plain tuples: up to a thousand rows a statement
        rows: list[tuple[Any, ...]] = cursor.execute(sql, params).fetchall()
        return rows

    def _plan(self, params: dict[str, Any], phrases: Sequence[str]) -> _Plan:
        """Split the words into informative ones and ones too common to score.

        bm25's idf costs a pass over every posting of each word (~25 ns a posting:
        17 ms for a word in 70% of 1,000,000 messages, before any row is ranked), and
        a word in that many rows barely moves the order (FTS5 gives a word in over half
        of the rows no weight at all). The newest `PROBE` matches of each word tell
        how common it is in the scope: spread over fewer than `COMMON_SHARE` times as
        many rowids, it is common.
        """
        common: list[int] = []
        for index, phrase in enumerate(phrases):
            rows = self._rows(
                _kind_sql(_PROBE, _MESSAGE),
                {**params, "match": phrase, "probe": PROBE},
            )
            span = rows[0][0] - rows[-1][0] + 1 if rows else 0
            if len(rows) == PROBE and span < PROBE * COMMON_SHARE:
                common.append(index)
        return self._plan_of(phrases, tuple(common))

    @staticmethod
    def _plan_of(phrases: Sequence[str], common: tuple[int, ...]) -> _Plan:
        informative = [p for i, p in enumerate(phrases) if i not in common]
        return _Plan(
            match=" ".join(phrases),
            ranked=" ".join(informative) if informative else None,
            common=common,
        )

    def _rank(self, params: dict[str, Any], plan: _Plan, tier: _Tier) -> _Ranked:
        hits: list[tuple[float, int, int]] = []
        following: dict[int, int | None] = {_MESSAGE: None, _THREAD: None}
        for kind in (_MESSAGE, _THREAD):
            ceiling = tier.ceiling(kind)
            if ceiling is None:
                continue
            window = {
                **params,
                "match": plan.match,
                "ceiling": ceiling,
                "window": RANK_WINDOW + 1,
            }
            scored: list[tuple[int, float]]
            if plan.common:
                nums = [r[0] for r in self._rows(_kind_sql(_WINDOW, kind), window)]
                if len(nums) > RANK_WINDOW:
                    # The extra row proves the next tier is not empty: its ceiling.
                    following[kind] = nums.pop()
                scores = self._scores(params, plan, kind, nums)
                scored = [(num, scores.get(num, 0.0)) for num in nums]
            else:
                scored = [
                    (r[0], r[1])
                    for r in self._rows(_kind_sql(_WINDOW_SCORED, kind), window)
                ]
                if len(scored) > RANK_WINDOW:
                    following[kind] = scored.pop()[0]
            hits.extend((score, kind, -num) for num, score in scored)
        hits.sort()
        more = following[_MESSAGE] is not None or following[_THREAD] is not None
        return _Ranked(
            hits=hits,
            next=_Tier(following[_MESSAGE], following[_THREAD]) if more else None,
        )

    def _scores(
        self, params: dict[str, Any], plan: _Plan, kind: int, nums: Sequence[int]
    ) -> dict[int, float]:
        """bm25 of the informative words for the listed rows (none: every row 0)."""
        if plan.ranked is None or not nums:
            return {}
        rows = self._rows(
            _kind_sql(_SCORES, kind),
            {
                **params,
                "match": plan.ranked,
                "low": min(nums),
                "high": max(nums),
                "nums": json.dumps(nums),
            },
        )
        return {int(r[0]): float(r[1]) for r in rows}

    def _details(
        self,
        params: dict[str, Any],
        plan: _Plan,
        page: Sequence[tuple[float, int, int]],
    ) -> list[SearchHit]:
        found: dict[tuple[int, int], SearchHit] = {}
        for kind, sql in _DETAILS.items():
            nums = [-negated for _, hit_kind, negated in page if hit_kind == kind]
            if not nums:
                continue
            rows = self.conn.execute(
                sql,
                {
                    **params,
                    "match": plan.match,
                    "low": min(nums),
                    "high": max(nums),
                    "nums": json.dumps(nums),
                },
            ).fetchall()
            for r in rows:
                found[(kind, r["num"])] = SearchHit(
                    thread_id=r["thread_id"],
                    message_id=r["message_id"],
                    thread_title=r["thread_title"],
                    role=r["role"],
                    snippet=r["snippet"] or "",
                    created_at=r["created_at"],
                )
        # A row deleted since it was ranked (by another process) is left out.
        return [
            found[(kind, -negated)]
            for _, kind, negated in page
            if (kind, -negated) in found
        ]

    def search(
        self, scope: Scope, q: str, *, limit: int | None, cursor: str | None
    ) -> Page[SearchHit]:
        """Matches of every word in the scope's messages and thread titles, best first.

        "Best" is bm25 relevance (FTS5's, with its statistics over the whole index)
        within a tier: the newest `RANK_WINDOW` matching messages and the newest
        `RANK_WINDOW` matching titles, ranked together (on a tie a title comes first,
        then the newer). The first tier holds the newest matches; once a page reaches
        the end of a tier, the next older one follows. So a query with fewer than
        `RANK_WINDOW` matches of each kind is ranked exactly, and a frequent word
        shows its best recent matches first rather than its best ever (ranking every
        match costs ~1.5 µs each: 300 ms for 220,000).

        Words found in more than one message in `COMMON_SHARE` (see `_plan`) must
        still match but are left out of the score; a query of only such words lists
        its matches newest first, titles before messages in each tier.

        Each cursor carries its tier and plan, so a later page ranks exactly the
        matches its first page ranked, even when messages arrived in between. `total`
        is exact when the first tier holds every match, else None (best-effort).

        Raises:
            InvalidRequest: When the query has no words or `limit` is below 1.
            InvalidCursor: When the cursor is not one of this query's.
        """
        phrases = fts_phrases(q)
        try:
            size = clamp_limit(limit)
        except ValueError as exc:
            raise InvalidRequest(str(exc)) from None
        filters = {"q": q, "limit": size}
        params: dict[str, Any] = {"ws": scope.workspace_id, "user": scope.user_id}
        total: int | None
        if cursor is None:
            plan = self._plan(params, phrases)
            tier, offset, total = _FIRST_TIER, 0, None
        else:
            common, tier, offset, total = self._position(
                scope, filters, cursor, len(phrases)
            )
            plan = self._plan_of(phrases, common)
        ranked = self._rank(params, plan, tier)
        if cursor is None:
            if ranked.next is None:
                total = len(ranked.hits)
            # Pin the first tier to what it holds now: later pages leave out what
            # arrives meanwhile instead of shifting every rank by it.
            tier = _Tier(
                messages=_top(ranked.hits, _MESSAGE), threads=_top(ranked.hits, _THREAD)
            )
        page: list[tuple[float, int, int]] = []
        resume: tuple[_Tier, int] | None = (tier, offset)
        # Every tier after the first holds at least one hit (`_rank`'s extra row), so
        # a page spans at most `size` + 1 tiers (two, in practice).
        for _ in range(size + 1):
            taken = ranked.hits[offset : offset + size - len(page)]
            page.extend(taken)
            offset += len(taken)
            if offset < len(ranked.hits):
                resume = (tier, offset)  # more in this tier
                break
            if ranked.next is None:
                resume = None  # the last tier is used up
                break
            resume = (ranked.next, 0)
            if len(page) == size:
                break
            tier, offset = ranked.next, 0
            ranked = self._rank(params, plan, tier)
        next_cursor = None
        if resume is not None:
            next_cursor = self.signer.encode(
                "search",
                scope.pair,
                filters,
                {
                    "common": list(plan.common),
                    "messages": resume[0].messages,
                    "threads": resume[0].threads,
                    "offset": resume[1],
                    "total": total,
                },
            )
        return Page[SearchHit](
            items=self._details(params, plan, page),
            next_cursor=next_cursor,
            total=total,
        )

    def _position(
        self, scope: Scope, filters: dict[str, Any], cursor: str, words: int
    ) -> tuple[tuple[int, ...], _Tier, int, int | None]:
        position = self.signer.decode(cursor, "search", scope.pair, filters)
        try:
            common = tuple(_int(i) for i in position["common"])
            tier = _Tier(
                messages=_optional_int(position["messages"]),
                threads=_optional_int(position["threads"]),
            )
            offset = _int(position["offset"])
            total = _optional_int(position.get("total"))
        except (KeyError, TypeError, ValueError):
            raise InvalidCursor("The cursor is not valid for this search.") from None
        if offset < 0 or any(not 0 <= i < words for i in common):
            raise InvalidCursor("The cursor is not valid for this search.")
        return common, tier, offset, total


def _top(hits: Sequence[tuple[float, int, int]], kind: int) -> int | None:
    """The highest rowid of one kind among a tier's hits (None: it has none)."""
    return max((-negated for _, k, negated in hits if k == kind), default=None)


def _int(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError("not an integer")
    return value


def _optional_int(value: object) -> int | None:
    return None if value is None else _int(value)
