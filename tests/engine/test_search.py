"""Full-text search: safe quoting, titles and messages, paging, snippets."""

from __future__ import annotations

import pytest

from tenex_tui.core.errors import InvalidCursor, InvalidRequest
from tenex_tui.engine.engine import LocalEngine
from tenex_tui.engine.store_search import fts_query
from tests.engine.conftest import collect, within
from tests.support.scripted_llm import ScriptedLLM


async def test_finds_messages_and_titles_naming_thread_and_message(
    engine: LocalEngine, llm: ScriptedLLM
) -> None:
    thread = await engine.create_thread(title="Pricing for Acme")
    llm.enqueue("Acme pays per seat.")
    events = await collect(engine.send_message(thread.id, "How does Acme pay?"))
    page = await engine.search("acme")
    assert page.total == 3
    kinds = {(hit.thread_id, hit.message_id) for hit in page.items}
    assert (thread.id, None) in kinds
    assert (thread.id, events[0].message_id) in kinds
    assert events[0].user_message is not None
    assert (thread.id, events[0].user_message.id) in kinds
    for hit in page.items:
        assert "«" in hit.snippet and "»" in hit.snippet
        assert "[" not in hit.snippet
        assert hit.thread_title == "Pricing for Acme"


async def test_all_words_must_match(engine: LocalEngine, llm: ScriptedLLM) -> None:
    thread = await engine.create_thread(title="t")
    llm.enqueue("the quick brown fox")
    await collect(engine.send_message(thread.id, "tell me"))
    assert len((await engine.search("quick fox")).items) == 1
    assert (await engine.search("quick zebra")).items == []


@pytest.mark.parametrize(
    "query",
    [
        'fox" AND',
        "NEAR(",
        "a OR",
        '"',
        "*",
        "fox:",
        "-fox",
        "^x",
        "(",
        "col:val",
        "AND",
    ],
)
async def test_query_syntax_is_never_interpreted(
    engine: LocalEngine, query: str
) -> None:
    page = await engine.search(query)
    assert page.items == []


async def test_quoting_matches_the_literal_words(engine: LocalEngine) -> None:
    await engine.create_thread(title="fox AND hound")
    page = await engine.search('fox" AND')
    assert [h.thread_title for h in page.items] == ["fox AND hound"]
    assert fts_query('fox" AND') == '"fox""" "AND"'


@pytest.mark.parametrize("query", ["", "   ", "\n\t"])
async def test_empty_query_is_invalid(engine: LocalEngine, query: str) -> None:
    with pytest.raises(InvalidRequest):
        await engine.search(query)


async def test_streaming_replies_are_indexed_once_finished(
    engine: LocalEngine, llm: ScriptedLLM
) -> None:
    thread = await engine.create_thread(title="t")
    reply = llm.enqueue("x" * 5000, " zebra", hold_at=(1,))
    stream = engine.send_message(thread.id, "go")
    await within(anext(stream))
    await within(reply.held(1).wait())
    assert (await engine.search("zebra")).items == []
    reply.release(1)
    await collect(stream)
    assert len((await engine.search("zebra")).items) == 1


async def test_renamed_titles_are_searchable(engine: LocalEngine) -> None:
    thread = await engine.create_thread(title="alpha")
    await engine.update_thread(thread.id, title="omega")
    assert (await engine.search("alpha")).items == []
    assert [h.thread_id for h in (await engine.search("omega")).items] == [thread.id]


async def test_search_pages_by_cursor_without_duplicates(engine: LocalEngine) -> None:
    for i in range(7):
        await engine.create_thread(title=f"report {i}")
    seen: list[str] = []
    cursor = None
    for _ in range(10):
        page = await engine.search("report", limit=3, cursor=cursor)
        assert page.total == 7
        seen.extend(h.thread_id for h in page.items)
        cursor = page.next_cursor
        if cursor is None:
            break
    assert len(seen) == len(set(seen)) == 7
    first = await engine.search("report", limit=3)
    with pytest.raises(InvalidCursor):
        await engine.search("other", limit=3, cursor=first.next_cursor)
    with pytest.raises(InvalidCursor):
        await engine.search("report", limit=4, cursor=first.next_cursor)


async def test_best_match_comes_first(engine: LocalEngine) -> None:
    await engine.create_thread(title="budget meeting notes and other things entirely")
    best = await engine.create_thread(title="budget budget budget")
    page = await engine.search("budget")
    assert page.items[0].thread_id == best.id
