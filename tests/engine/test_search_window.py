"""Search at scale: ranked windows (tiers), common words, stable cursors, scoped plans.

The search ranks at most `RANK_WINDOW` matches of each kind per tier (the newest
first), so these tests shrink the window to a few rows and check the order against
bm25 computed over every match, directly in SQLite.
"""

from __future__ import annotations

import random
import re

import pytest

from tenex_tui.core.errors import InvalidCursor
from tenex_tui.core.models import Page, SearchHit
from tenex_tui.engine import store_search
from tenex_tui.engine.engine import LocalEngine
from tests.engine.test_isolation import (
    BOUND_WORKSPACE,
    INSERT_WITH_WORKSPACE,
    SCOPED_TABLES,
)

FTS_TABLE = re.compile(r"\b(messages_fts|threads_fts)\b")


async def _add_messages(engine: LocalEngine, thread_id: str, texts: list[str]) -> None:
    """Store finished messages straight through the engine's connection (fast)."""
    scope = engine._scope

    def insert() -> None:
        connection = engine._core.db.connection
        assert connection is not None
        with connection.write() as conn:
            start = conn.execute(
                "SELECT coalesce(max(num), 0) FROM messages WHERE workspace_id = ?",
                (scope.workspace_id,),
            ).fetchone()[0]
            seq = conn.execute(
                "SELECT coalesce(max(seq), 0) FROM messages "
                "WHERE workspace_id = ? AND thread_id = ?",
                (scope.workspace_id, thread_id),
            ).fetchone()[0]
            for offset, text in enumerate(texts, start=1):
                conn.execute(
                    "INSERT INTO messages (workspace_id, id, thread_id, user_id, seq, "
                    "role, content, status, created_at) "
                    "VALUES (?, ?, ?, ?, ?, 'user', ?, 'complete', ?)",
                    (
                        scope.workspace_id,
                        f"msg_{scope.user_id}_{start + offset}",
                        thread_id,
                        scope.user_id,
                        seq + offset,
                        text,
                        f"2026-01-01T00:00:{offset % 60:02d}Z",
                    ),
                )

    await engine._core.db.run(insert)


async def _every_page(
    engine: LocalEngine, q: str, limit: int
) -> tuple[list[Page[SearchHit]], list[str]]:
    pages: list[Page[SearchHit]] = []
    cursor = None
    for _ in range(200):  # bounded: far more pages than any test makes
        page = await engine.search(q, limit=limit, cursor=cursor)
        pages.append(page)
        cursor = page.next_cursor
        if cursor is None:
            break
    assert cursor is None
    ids: list[str] = []
    for page in pages:
        ids.extend(hit.message_id or hit.thread_id for hit in page.items)
    return pages, ids


async def _ranked_by_sqlite(engine: LocalEngine, match: str) -> list[tuple[str, float]]:
    """Every message of the engine's scope matching, as (id, bm25), newest first."""
    scope = engine._scope

    def read() -> list[tuple[str, float]]:
        connection = engine._core.db.connection
        assert connection is not None
        rows = connection.conn.execute(
            "SELECT m.id, bm25(messages_fts) FROM messages_fts "
            "CROSS JOIN messages m ON m.num = messages_fts.rowid "
            "WHERE messages_fts MATCH ? AND m.workspace_id = ? AND m.user_id = ? "
            "ORDER BY m.num DESC",
            (match, scope.workspace_id, scope.user_id),
        ).fetchall()
        return [(r[0], r[1]) for r in rows]

    return await engine._core.db.run(read)


def _corpus(seed: int, n: int, word: str, share: float) -> list[str]:
    rng = random.Random(seed)
    filler = ["alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf"]
    texts = []
    for _ in range(n):
        words = rng.choices(filler, k=rng.randint(3, 30))
        if rng.random() < share:
            for _ in range(rng.randint(1, 4)):
                words.insert(rng.randrange(len(words) + 1), word)
        texts.append(" ".join(words))
    return texts


async def test_fewer_matches_than_the_window_are_ranked_exactly(
    engine: LocalEngine,
) -> None:
    thread = await engine.create_thread(title="orchard")
    await _add_messages(engine, thread.id, _corpus(1, 80, "kiwi", 0.4))
    expected = await _ranked_by_sqlite(engine, '"kiwi"')
    assert 20 < len(expected) < store_search.RANK_WINDOW
    pages, ids = await _every_page(engine, "kiwi", limit=7)
    # Ties keep the newer first, as the store's order does.
    newest_first = {mid: n for n, (mid, _) in enumerate(expected)}
    by_score = sorted(expected, key=lambda e: (e[1], newest_first[e[0]]))
    assert ids == [mid for mid, _ in by_score]
    assert pages[0].total == len(expected)
    assert all(page.items for page in pages)  # the last page is never empty


@pytest.mark.parametrize("limit", [1, 4, 5, 50])
async def test_tiers_walk_back_in_time_each_ranked_by_bm25(
    engine: LocalEngine, monkeypatch: pytest.MonkeyPatch, limit: int
) -> None:
    monkeypatch.setattr(store_search, "RANK_WINDOW", 5)
    thread = await engine.create_thread(title="orchard")
    texts = _corpus(2, 60, "kiwi", 0.3)
    if sum("kiwi" in t for t in texts) % 5 == 0:
        texts.append("kiwi at last")  # so that the last tier is a partial one
    await _add_messages(engine, thread.id, texts)
    expected = await _ranked_by_sqlite(engine, '"kiwi"')
    assert len(expected) > 15 and len(expected) % 5 != 0
    pages, ids = await _every_page(engine, "kiwi", limit=limit)
    assert sorted(ids) == sorted(mid for mid, _ in expected)  # each exactly once
    for start in range(0, len(expected), 5):
        tier = expected[start : start + 5]  # the next five newest
        best = sorted(tier, key=lambda e: (e[1], expected.index(e)))
        assert ids[start : start + 5] == [mid for mid, _ in best]
    assert pages[0].total is None  # more than one tier: best-effort
    assert all(page.items for page in pages)
    assert [len(p.items) for p in pages[:-1]] == [limit] * (len(pages) - 1)


async def test_later_pages_rank_the_same_matches_when_messages_arrive(
    engine: LocalEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(store_search, "RANK_WINDOW", 4)
    thread = await engine.create_thread(title="orchard")
    await _add_messages(engine, thread.id, [f"kiwi note {i}" for i in range(10)])
    before = [mid for mid, _ in await _ranked_by_sqlite(engine, '"kiwi"')]
    first = await engine.search("kiwi", limit=3)
    # Better matches arrive between the pages.
    await _add_messages(engine, thread.id, ["kiwi kiwi kiwi"] * 3)
    seen = [hit.message_id for hit in first.items]
    cursor = first.next_cursor
    for _ in range(20):
        if cursor is None:
            break
        page = await engine.search("kiwi", limit=3, cursor=cursor)
        seen.extend(hit.message_id for hit in page.items)
        cursor = page.next_cursor
    assert cursor is None
    assert sorted(str(s) for s in seen) == sorted(before)
    fresh = await engine.search("kiwi", limit=3)
    assert [hit.snippet for hit in fresh.items] == ["«kiwi» «kiwi» «kiwi»"] * 3


async def test_common_words_must_match_but_only_the_others_score(
    engine: LocalEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A word in more than half of the newest messages counts as common here.
    monkeypatch.setattr(store_search, "PROBE", 4)
    monkeypatch.setattr(store_search, "COMMON_SHARE", 2)
    thread = await engine.create_thread(title="the orchard")
    texts = _corpus(3, 40, "kiwi", 0.25)
    texts = [f"the {t}" if i % 5 else t for i, t in enumerate(texts)]
    await _add_messages(engine, thread.id, texts)
    everything = await _ranked_by_sqlite(engine, '"the"')
    both = await _ranked_by_sqlite(engine, '"the" "kiwi"')
    kiwi = dict(await _ranked_by_sqlite(engine, '"kiwi"'))

    # Only common words: the title, then every message newest first.
    _, ids = await _every_page(engine, "the", limit=9)
    assert ids == [thread.id] + [mid for mid, _ in everything]

    # A common and an informative word: both must match, the informative one ranks.
    _, ids = await _every_page(engine, "the kiwi", limit=9)
    order = {mid: n for n, (mid, _) in enumerate(both)}
    assert ids == sorted(order, key=lambda mid: (kiwi[mid], order[mid]))

    # The same word when it is not common is ranked by bm25, as before.
    monkeypatch.setattr(store_search, "COMMON_SHARE", 1)
    _, ids = await _every_page(engine, "the", limit=50)
    newest = {mid: n for n, (mid, _) in enumerate(everything)}
    assert [i for i in ids if i != thread.id] == [
        mid for mid, _ in sorted(everything, key=lambda e: (e[1], newest[e[0]]))
    ]


async def test_other_scopes_never_take_a_tiers_places(
    engine: LocalEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(store_search, "RANK_WINDOW", 3)
    mine = await engine.create_thread(title="mine")
    await _add_messages(engine, mine.id, ["kiwi one", "kiwi two"])
    neighbours = [
        engine.for_scope("ws_other", "usr_local"),
        engine.for_scope(engine._scope.workspace_id, "usr_other"),
    ]
    titles: list[str] = []
    for other in neighbours:
        await other.ensure_scope(other._scope.workspace_id, other._scope.user_id)
        theirs = await other.create_thread(title="theirs kiwi")
        titles.append(theirs.id)
        await _add_messages(other, theirs.id, ["kiwi kiwi kiwi"] * 10)
    page = await engine.search("kiwi", limit=50)
    assert {hit.snippet for hit in page.items} == {"«kiwi» one", "«kiwi» two"}
    assert page.total == 2 and page.next_cursor is None
    for other, title in zip(neighbours, titles, strict=True):
        _, ids = await _every_page(other, "kiwi", limit=4)
        theirs_only = {mid for mid, _ in await _ranked_by_sqlite(other, '"kiwi"')}
        assert len(theirs_only) == 10
        assert len(ids) == 11  # their ten messages and their title
        assert set(ids) - theirs_only == {title}


async def test_a_cursor_must_carry_this_searchs_plan(engine: LocalEngine) -> None:
    thread = await engine.create_thread(title="t")
    await _add_messages(engine, thread.id, ["kiwi"] * 5)
    store = engine._core.store
    scope = engine._scope
    filters = {"q": "kiwi", "limit": 2}
    positions: list[dict[str, object]] = [
        {"offset": 2, "total": 5},  # the format before tiers
        {"common": [3], "messages": None, "threads": None, "offset": 0},
        {"common": [], "messages": "9", "threads": None, "offset": 0},
        {"common": [], "messages": 9, "threads": None, "offset": -1},
    ]
    for position in positions:
        cursor = store.signer.encode("search", scope.pair, filters, position)
        with pytest.raises(InvalidCursor):
            await engine.search("kiwi", limit=2, cursor=cursor)
    good = store.signer.encode(
        "search",
        scope.pair,
        filters,
        {"common": [], "messages": 2**62, "threads": None, "offset": 4, "total": 5},
    )
    page = await engine.search("kiwi", limit=2, cursor=good)
    assert len(page.items) == 1 and page.next_cursor is None


async def test_the_index_drives_every_search_statement_and_binds_the_workspace(
    engine: LocalEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """T56 for every path of the search, and no plan that probes FTS once a row."""
    monkeypatch.setattr(store_search, "RANK_WINDOW", 3)
    monkeypatch.setattr(store_search, "PROBE", 4)
    monkeypatch.setattr(store_search, "COMMON_SHARE", 2)
    thread = await engine.create_thread(title="the kiwi orchard")
    await _add_messages(engine, thread.id, _corpus(4, 30, "kiwi", 0.2))
    await _add_messages(engine, thread.id, [f"the {t}" for t in _corpus(5, 30, "", 0)])
    statements: list[str] = []

    def trace(on: bool) -> None:
        connection = engine._core.db.connection
        assert connection is not None
        connection.conn.set_trace_callback(statements.append if on else None)

    await engine._core.db.run(trace, True)
    try:
        for q in ("kiwi", "the", "the kiwi", "orchard"):
            await _every_page(engine, q, limit=4)
    finally:
        await engine._core.db.run(trace, False)

    def plan(sql: str) -> list[str]:
        connection = engine._core.db.connection
        assert connection is not None
        rows = connection.conn.execute("EXPLAIN QUERY PLAN " + sql).fetchall()
        return [str(r[3]) for r in rows]

    searched = [s for s in statements if FTS_TABLE.search(s)]
    assert len(searched) > 20
    # Every kind of statement ran: probes, windows with and without bm25, the bm25
    # of listed rows (a common and an informative word), snippets and highlights.
    for part in ("LIMIT 4", "bm25(messages_fts)", "snippet(", "highlight("):
        assert any(part in s for s in searched), part
    assert any("bm25" in s and "json_each" in s for s in searched)
    for sql in searched:
        assert SCOPED_TABLES.search(sql)
        assert BOUND_WORKSPACE.search(sql) or INSERT_WITH_WORKSPACE.search(sql), sql
        steps = [
            s
            for s in await engine._core.db.run(plan, sql)
            if "SCAN" in s or "SEARCH" in s
        ]
        fts = FTS_TABLE.search(sql)
        assert fts is not None
        # The FTS5 table is the outer loop; rows are then found by primary key.
        assert steps[0].startswith(f"SCAN {fts.group(1)} VIRTUAL TABLE"), (sql, steps)
        assert any("b USING INTEGER PRIMARY KEY" in s for s in steps), (sql, steps)
