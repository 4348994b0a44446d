"""The knowledge and lead part of the `ChatBackend` contract, for `LocalEngine` and for
`RemoteBackend` → the project's own server: same results, same errors."""

from __future__ import annotations

import pytest

from tenex_tui.core.errors import InvalidCursor, InvalidRequest, NotFound
from tenex_tui.core.models import ThreadContext
from tests.contract.conftest import Env
from tests.contract.test_contract import drain

GLOBEX = "Globex competes on price and integrations. Onboarding takes weeks."
PRICING = "The Pro plan costs 49 dollars per seat per month."


async def test_documents_add_list_show_search_remove(env: Env) -> None:
    globex = await env.a1.add_knowledge(
        "Battlecard: Globex", GLOBEX, media_type="text/markdown", source="b/g.md"
    )
    pricing = await env.a1.add_knowledge("Pricing", PRICING)
    assert globex.id.startswith("doc_") and globex.chunk_count == 1
    assert (globex.media_type, globex.source, globex.text) == (
        "text/markdown",
        "b/g.md",
        None,
    )
    assert await env.a1.add_knowledge("Copy", GLOBEX) == globex
    page = await env.a1.list_knowledge(limit=1)
    assert [d.id for d in page.items] == [pricing.id] and page.total == 2
    rest = await env.a1.list_knowledge(limit=1, cursor=page.next_cursor)
    assert [d.id for d in rest.items] == [globex.id] and rest.next_cursor is None
    assert [d.id for d in (await env.a1.list_knowledge(q="glob")).items] == [globex.id]
    assert (await env.a1.get_knowledge(globex.id, with_text=True)).text == GLOBEX
    hits = await env.a1.search_knowledge("globex pricing", limit=5)
    assert hits[0].doc_id == globex.id and hits[0].title == "Battlecard: Globex"
    await env.a1.remove_knowledge(pricing.id)
    assert await env.a1.search_knowledge("seat") == []
    with pytest.raises(NotFound):
        await env.a1.get_knowledge(pricing.id)


async def test_knowledge_errors(env: Env) -> None:
    with pytest.raises(InvalidRequest):
        await env.a1.add_knowledge("   ", "text")
    with pytest.raises(InvalidRequest):
        await env.a1.add_knowledge("Empty", "  ")
    with pytest.raises(InvalidRequest):
        await env.a1.search_knowledge("?!")
    with pytest.raises(InvalidCursor):
        await env.a1.list_knowledge(cursor="not-a-cursor")
    with pytest.raises(NotFound):
        await env.a1.remove_knowledge("doc_missing")


async def test_leads_import_list_and_get(env: Env) -> None:
    records = [
        {"name": "Dana", "company": "Acme", "score": 7, "tags": ["sso"]},
        {"company": "Globex", "email": "lee@globex.test"},
    ]
    dana, globex = await env.a1.import_leads(records)
    assert (dana.name, globex.name) == ("Dana", "Globex")
    assert dana.fields == records[0]
    again = await env.a1.import_leads([records[0]])
    assert again == [dana]
    page = await env.a1.list_leads()
    assert [lead.id for lead in page.items] == [globex.id, dana.id]
    assert await env.a1.get_lead(dana.id) == dana
    with pytest.raises(InvalidRequest):
        await env.a1.import_leads([{"bad": float("nan")}])
    with pytest.raises(InvalidRequest):
        await env.a1.import_leads([])
    with pytest.raises(NotFound):
        await env.a1.get_lead("lead_missing")


async def test_a_workspace_shares_them_and_no_other_workspace_sees_them(
    env: Env,
) -> None:
    doc = await env.a1.add_knowledge("Battlecard: Globex", GLOBEX)
    (lead,) = await env.a1.import_leads([{"name": "Dana"}])
    # A colleague in the same workspace sees the same knowledge and leads.
    assert (await env.a2.get_knowledge(doc.id)).id == doc.id
    assert (await env.a2.get_lead(lead.id)).id == lead.id
    # Another workspace gets exactly the answer for a missing id.
    for foreign, missing in (
        (env.b1.get_knowledge(doc.id), env.b1.get_knowledge("doc_missing")),
        (env.b1.get_lead(lead.id), env.b1.get_lead("lead_missing")),
        (env.b1.remove_knowledge(doc.id), env.b1.remove_knowledge("doc_missing")),
    ):
        with pytest.raises(NotFound) as got:
            await foreign
        with pytest.raises(NotFound) as expected:
            await missing
        assert got.value.to_wire() == expected.value.to_wire()
    assert (await env.b1.list_knowledge()).items == []
    assert (await env.b1.list_leads()).items == []
    assert await env.b1.search_knowledge("globex") == []
    with pytest.raises(InvalidRequest):
        await env.b1.create_thread(context=ThreadContext(knowledge=[doc.id]))
    assert (await env.a1.get_knowledge(doc.id)).id == doc.id


async def test_a_message_carries_knowledge_and_a_lead(env: Env) -> None:
    doc = await env.a1.add_knowledge("Battlecard: Globex", GLOBEX)
    (lead,) = await env.a1.import_leads([{"name": "Dana"}])
    thread = await env.a1.create_thread(
        agent="lead-triage", context=ThreadContext(knowledge=[doc.id], lead=lead.id)
    )
    assert (thread.agent, thread.context.knowledge, thread.context.lead) == (
        "lead-triage",
        [doc.id],
        lead.id,
    )
    events = await drain(
        env.a1.send_message(thread.id, "triage", knowledge=[doc.id], lead=lead.id)
    )
    assert events[-1].type == "message.completed"
    user = (await env.a1.list_messages(thread.id)).items[0]
    assert [(a.kind, a.ref_id) for a in user.attachments] == [
        ("knowledge", doc.id),
        ("lead", lead.id),
    ]
    system = env.llm.turns[-1][0]
    assert system.role == "system"
    assert system.content.startswith("You help me triage inbound leads")
    assert GLOBEX in system.content
    # Another workspace cannot attach them, even to its own thread.
    theirs = await env.b1.create_thread()
    with pytest.raises(InvalidRequest):
        await drain(env.b1.send_message(theirs.id, "x", lead=lead.id))
    with pytest.raises(InvalidRequest):
        await drain(env.b1.send_message(theirs.id, "x", knowledge=[doc.id]))
