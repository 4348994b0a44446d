"""A deterministic demo workspace, built through the `ChatBackend` API.

Snapshot tests and `scripts/screenshots.py` render the real app on it. Every reply comes
from the scripted model (`ScriptedLLM`) and every timestamp from a `FixedClock`, so two
builds give the same threads, ids, texts and times; `DEMO_NOW` is the "now" the app is
given, so relative times ("3 h ago") are stable too.

What it holds (newest first in the sidebar):
- a pinned thread with a Markdown reply (heading, list, code, table, link);
- a thread with a tool call (`search_knowledge`) and an unread reply;
- a stopped reply, an interrupted reply, and a failed reply;
- a dozen ordinary threads over the past days, and three archived ones.

With `extras=True` (the screenshots, and the snapshots of the features that need them)
it also holds brand-knowledge documents, four leads, and two threads bound to agents,
one of them with a file, a document and a lead attached to its message.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from textual.pilot import Pilot
from textual.widgets import Input, TextArea

from tenex_tui.core.backend import ChatBackend
from tenex_tui.core.errors import ModelUnavailable
from tenex_tui.core.events import StreamEvent
from tenex_tui.core.payloads import AttachmentInput
from tenex_tui.core.secrets import Secret
from tenex_tui.engine.clock import FixedClock
from tenex_tui.engine.engine import LocalEngine
from tenex_tui.engine.llm import StreamBroken
from tenex_tui.ui.app import TenexApp
from tests.support.scripted_llm import ScriptedLLM, ToolFragment

DEMO_START = datetime(2026, 1, 12, 8, 30, tzinfo=UTC)
"""When the demo's oldest thread was created."""
DEMO_NOW = datetime(2026, 1, 15, 8, 5, tzinfo=UTC)
"""The "now" the app is given when it shows the demo."""

PRICING_REPLY = """Here is a tighter structure for the **pricing page**, based on what
converted best in the last two tests:

## Page outline

1. Headline that names the outcome, not the product
2. Three plans side by side — *Starter*, *Team*, *Scale*
3. A short FAQ that answers the objections from sales calls

| Plan    | Price / seat | Best for              |
|---------|-------------:|-----------------------|
| Starter |         $12  | Solo founders         |
| Team    |         $29  | Sales teams up to 25  |
| Scale   |     Talk to us | Multi-region orgs   |

A small helper to keep the plan data in one place:

```python
PLANS = {
    "starter": {"seat": 12, "min_seats": 1},
    "team": {"seat": 29, "min_seats": 3},
}

def monthly(plan: str, seats: int) -> int:
    info = PLANS[plan]
    return info["seat"] * max(seats, info["min_seats"])
```

See the [style guide](https://example.com/brand/pricing) for the tone of voice.
"""

EMAIL_REPLY = """Subject: Next steps after Tuesday's demo

Hi Dana,

Thanks again for the time on Tuesday. As promised, here is a summary of what we covered
and the two options for a pilot:

- **Option A** — 30-day pilot for the outbound team (8 seats)
- **Option B** — 60-day pilot including the CRM sync

Would Thursday at 10:00 work for a 20-minute call to pick one?

Best,
Sam
"""

GLOBEX_REPLY = """From the knowledge base, Globex positions itself on **price** and
**integrations**. Three points to use in the battlecard:

1. Their cheapest plan has no API access
2. Onboarding takes 3–4 weeks on average (ours: 5 days)
3. They do not offer a multi-region data residency option
"""

OTHER_TITLES = [
    "Renewal risk: Initech account",
    "Objection handling — security reviews",
    "Webinar abstract for March",
    "Cold outreach sequence v3",
    "Summarise the board memo",
    "ICP refresh for mid-market",
    "Translate the FAQ to German",
    "Discovery call notes — Umbrella",
    "Press release draft: Series B",
    "Job post: Account Executive",
    "Weekly pipeline review template",
    "Case study outline — Hooli",
]

ARCHIVED_TITLES = [
    "Old launch checklist (2025)",
    "Holiday campaign ideas",
    "Trade show booth copy",
]


@dataclass
class DemoWorkspace:
    """Ids of the demo's interesting threads, for tests to open."""

    pricing: str = ""
    """Pinned; a Markdown reply with a table and code."""
    email: str = ""
    """An unread reply."""
    globex: str = ""
    """A reply with a tool call."""
    stopped: str = ""
    """A reply the user stopped."""
    interrupted: str = ""
    """A reply cut by a dropped connection."""
    failed: str = ""
    """A reply that failed (model unreachable)."""
    others: list[str] = field(default_factory=list)
    """Ordinary threads."""
    archived: list[str] = field(default_factory=list)
    """Archived threads."""
    triage: str = ""
    """(extras) Bound to the lead-triage agent; its message carries attachments."""
    launch: str = ""
    """(extras) Bound to the brand-writer agent."""
    docs: list[str] = field(default_factory=list)
    """(extras) Knowledge document ids, newest last."""
    leads: list[str] = field(default_factory=list)
    """(extras) Lead ids, in import order."""


def demo_clock() -> FixedClock:
    """The clock the demo is built with (one second per engine call)."""
    return FixedClock(start=DEMO_START, step=timedelta(seconds=1))


async def open_demo_engine(
    path: Path, *, busy_timeout_ms: int = 5000
) -> tuple[LocalEngine, ScriptedLLM, FixedClock]:
    """Open a fresh engine on `path` with the scripted model and the demo clock."""
    llm = ScriptedLLM(default_model="gpt-4o-mini", models=("gpt-4o-mini",))
    clock = demo_clock()
    engine = await LocalEngine.open(
        path,
        llm=llm,
        clock=clock,
        workspace_name="Acme Sales",
        busy_timeout_ms=busy_timeout_ms,
    )
    return engine, llm, clock


def _chunks(text: str, size: int = 24) -> list[str]:
    return [text[i : i + size] for i in range(0, len(text), size)]


async def _drain(events: AsyncIterator[StreamEvent]) -> list[StreamEvent]:
    return [event async for event in events]


async def _stopped_reply(engine: LocalEngine, llm: ScriptedLLM, thread_id: str) -> None:
    reply = llm.enqueue(
        "Here are five hooks for the post:\n\n1. Most teams lose deals ",
        "in the follow-up, not the demo.\n2. ",
        "What if your CRM wrote the first draft?",
        hold_at=(2,),
    )
    stream = engine.send_message(
        thread_id, "Draft a LinkedIn post about our AI follow-ups"
    )
    task = asyncio.ensure_future(_drain(stream))
    await asyncio.wait_for(reply.held(2).wait(), 5)
    page = await engine.list_messages(thread_id, order="desc", limit=1)
    await engine.cancel_message(thread_id, page.items[0].id)
    reply.release(2)
    await asyncio.wait_for(task, 5)


async def build_demo(
    engine: LocalEngine, llm: ScriptedLLM, clock: FixedClock
) -> DemoWorkspace:
    """Fill an empty engine with the demo threads (deterministic)."""
    demo = DemoWorkspace()
    for title in ARCHIVED_TITLES:
        thread = await engine.create_thread(title=title)
        await engine.update_thread(thread.id, archived=True)
        demo.archived.append(thread.id)
        clock.advance(timedelta(hours=2))
    for index, title in enumerate(OTHER_TITLES):
        thread = await engine.create_thread(title=title)
        llm.enqueue(*_chunks(f"Sure — here is a first pass at “{title}”."))
        await _drain(engine.send_message(thread.id, f"Help me with: {title}"))
        await engine.mark_read(thread.id)
        demo.others.append(thread.id)
        clock.advance(timedelta(hours=4 + index % 3))

    failed = await engine.create_thread(title="Churn analysis SQL")
    llm.enqueue(
        error=ModelUnavailable(
            "Could not reach the model at http://localhost:11434/v1 (connection refused)."
        )
    )
    await _drain(
        engine.send_message(failed.id, "Write a query for monthly churn by plan")
    )
    await engine.mark_read(failed.id)
    demo.failed = failed.id
    clock.advance(timedelta(hours=2))

    interrupted = await engine.create_thread(title="Onboarding checklist for new reps")
    llm.enqueue(
        "Week one:\n\n- Shadow three discovery calls\n",
        "- Set up the CRM and email sequences\n",
        error=StreamBroken("The connection to the model dropped mid-reply."),
        error_at=2,
    )
    await _drain(engine.send_message(interrupted.id, "Make an onboarding checklist"))
    await engine.mark_read(interrupted.id)
    demo.interrupted = interrupted.id
    clock.advance(timedelta(hours=1))

    stopped = await engine.create_thread(title="LinkedIn post: AI follow-ups")
    await _stopped_reply(engine, llm, stopped.id)
    await engine.mark_read(stopped.id)
    demo.stopped = stopped.id
    clock.advance(timedelta(minutes=50))

    await engine.add_knowledge(
        "Battlecard: Globex",
        "Globex competes on price and integrations. Their cheapest plan has no API "
        "access. Onboarding takes three to four weeks. No multi-region data residency.",
        source="battlecards/globex.md",
    )
    globex = await engine.create_thread(title="Competitor analysis: Globex")
    # Round one asks for a tool; the engine runs it and asks the model again (round two).
    llm.enqueue(
        ToolFragment(0, "call_kb_1", "search_knowledge", '{"query": "Globex pricing'),
        ToolFragment(0, arguments=' integrations", "limit": 3}'),
    )
    continuation = llm.enqueue(*_chunks(GLOBEX_REPLY))
    await _drain(engine.send_message(globex.id, "How does Globex compare to us?"))
    if continuation in llm.replies:  # an engine that does not run tools
        llm.replies.remove(continuation)
    await engine.mark_read(globex.id)
    demo.globex = globex.id
    clock.advance(timedelta(minutes=40))

    email = await engine.create_thread(title="Follow-up email for Acme Corp")
    llm.enqueue(*_chunks(EMAIL_REPLY))
    await _drain(
        engine.send_message(email.id, "Write a follow-up email to Dana after the demo")
    )
    demo.email = email.id  # left unread on purpose
    clock.advance(timedelta(minutes=25))

    pricing = await engine.create_thread(title="Q3 pricing page rewrite")
    llm.enqueue(*_chunks(PRICING_REPLY))
    await _drain(
        engine.send_message(
            pricing.id, "Restructure our pricing page; we have three plans."
        )
    )
    await engine.mark_read(pricing.id)
    await engine.update_thread(pricing.id, pinned=True)
    demo.pricing = pricing.id
    return demo


KNOWLEDGE_DOCS = [
    (
        "Brand voice guide",
        "text/markdown",
        "brand/voice.md",
        "# Brand voice\n\nWe sound like a sharp colleague, not a brochure. Short "
        "sentences. Concrete numbers. No exclamation marks.\n\n## Words we use\n\n"
        "- follow-up, pipeline, reply rate\n- 'you' more than 'we'\n",
    ),
    (
        "Pricing FAQ",
        "text/markdown",
        "sales/pricing-faq.md",
        "# Pricing FAQ\n\nStarter is $12 per seat, Team $29 (three seats minimum), "
        "Scale on request. Annual plans get two months free. Pilots run 30 or 60 days "
        "and convert at the Team price.\n",
    ),
    (
        "Ideal customer profile",
        "text/plain",
        "sales/icp.txt",
        "Mid-market B2B software companies, 50 to 500 employees, an outbound team of "
        "5 or more reps, a CRM in place, and a sales cycle under 90 days.",
    ),
]

LEADS = [
    {
        "name": "Dana Whitfield",
        "company": "Acme Corp",
        "title": "VP Sales",
        "email": "dana@acme.example",
        "stage": "demo done",
        "seats": 25,
    },
    {
        "name": "Lee Park",
        "company": "Initech",
        "title": "Head of RevOps",
        "email": "lee@initech.example",
        "stage": "inbound",
        "seats": 8,
    },
    {
        "name": "Priya Nair",
        "company": "Umbrella",
        "title": "Sales Director",
        "email": "priya@umbrella.example",
        "stage": "discovery",
        "seats": 60,
    },
    {
        "name": "Marco Rossi",
        "company": "Hooli",
        "title": "Founder",
        "email": "marco@hooli.example",
        "stage": "inbound",
        "seats": 3,
    },
]

CALL_NOTES = """# Call notes — Acme Corp, Jan 13

- 25 reps, HubSpot, replies handled by hand today
- Dana wants the pilot before the March kickoff
- Security review needs the SOC 2 report
"""

TRIAGE_REPLY = """**Fit: strong.** Acme Corp matches the ideal customer profile: 25 reps, a
CRM in place, a short cycle.

- **Urgency:** high — Dana wants the pilot before the March kickoff.
- **Offer:** the 60-day pilot with the CRM sync, then Team at $29 per seat.
- **Next step:** send the SOC 2 report today and propose Thursday 10:00.
"""

LAUNCH_REPLY = """Subject: Your follow-ups, written before you ask

You close deals in the follow-up, not the demo. Our new drafts land in your inbox
minutes after each call, in your words, ready to send.
"""


async def build_extras(
    engine: LocalEngine, llm: ScriptedLLM, clock: FixedClock, demo: DemoWorkspace
) -> None:
    """Add knowledge, leads and agent-bound threads (after `build_demo`)."""
    for title, media_type, source, text in KNOWLEDGE_DOCS:
        doc = await engine.add_knowledge(
            title, text, media_type=media_type, source=source
        )
        demo.docs.append(doc.id)
    leads = await engine.import_leads(LEADS)
    demo.leads = [lead.id for lead in leads]
    clock.advance(timedelta(minutes=5))

    launch = await engine.create_thread(
        title="Launch email in our voice", agent="brand-writer"
    )
    llm.enqueue(*_chunks(LAUNCH_REPLY))
    await _drain(engine.send_message(launch.id, "Write the launch email for Drafts"))
    await engine.mark_read(launch.id)
    demo.launch = launch.id
    clock.advance(timedelta(minutes=3))

    triage = await engine.create_thread(
        title="Triage: Dana Whitfield (Acme Corp)", agent="lead-triage"
    )
    notes = AttachmentInput(
        name="call-notes.md",
        media_type="text/markdown",
        size=len(CALL_NOTES.encode()),
        text=CALL_NOTES,
    )
    llm.enqueue(
        ToolFragment(0, "call_lead_1", "get_lead", f'{{"lead_id": "{leads[0].id}"}}'),
    )
    continuation = llm.enqueue(*_chunks(TRIAGE_REPLY))
    await _drain(
        engine.send_message(
            triage.id,
            "Triage this lead with my call notes.",
            attachments=[notes],
            knowledge=[demo.docs[1]],
            lead=leads[0].id,
        )
    )
    if continuation in llm.replies:  # an engine that does not run tools
        llm.replies.remove(continuation)
    await engine.mark_read(triage.id)
    demo.triage = triage.id


@dataclass
class DemoApp:
    """What a demo app's factory built, filled in once the app opened it."""

    demo: DemoWorkspace | None = None
    """The demo's thread ids (None for an empty workspace)."""
    llm: ScriptedLLM | None = None
    """The scripted model (None: no model configured)."""
    engine: LocalEngine | None = None
    """The engine the app uses."""


def demo_factory(
    path: Path,
    *,
    with_model: bool = True,
    empty: bool = False,
    extras: bool = False,
    busy_timeout_ms: int = 5000,
) -> tuple[Callable[[], Awaitable[LocalEngine]], DemoApp]:
    """A backend factory that opens a fresh engine on `path` and builds the demo.

    It runs inside the app's own event loop (snapshot tests run the app with
    `App.run`), which is where the engine must live.

    Args:
        path: Where the database goes (a fresh file).
        with_model: False to open the engine without a model (the no-model panel).
        empty: True for an empty workspace.
        extras: Also add knowledge, leads and agent-bound threads (`build_extras`).
        busy_timeout_ms: How long a write waits for another process's lock.
    """
    holder = DemoApp()

    async def factory() -> LocalEngine:
        engine, llm, clock = await open_demo_engine(
            path, busy_timeout_ms=busy_timeout_ms
        )
        if not empty:
            holder.demo = await build_demo(engine, llm, clock)
            if extras:
                await build_extras(engine, llm, clock, holder.demo)
        if not with_model:
            await engine.aclose()
            engine = await LocalEngine.open(
                path, clock=clock, workspace_name="Acme Sales"
            )
        holder.engine = engine
        holder.llm = llm if with_model else None
        return engine

    return factory, holder


async def until(
    pilot: Pilot[Any], predicate: Callable[[], bool], seconds: float = 10
) -> None:
    """Let the app run until `predicate()` holds (fails after `seconds`)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError("the demo app did not get there in time")
        await pilot.pause(0.02)


def freeze(pilot: Pilot[Any]) -> None:
    """Stop cursors blinking (every screen), so screenshots are deterministic."""
    for screen in pilot.app.screen_stack:
        for widget in screen.query("Input, TextArea"):
            if isinstance(widget, Input | TextArea):
                widget.cursor_blink = False


async def ready(pilot: Pilot[Any]) -> TenexApp:
    """Wait until the demo is built, the threads are listed and the header is filled."""
    app = pilot.app
    assert isinstance(app, TenexApp)
    await until(
        pilot, lambda: app.backend is not None and app.chat.threads.fully_loaded
    )
    await until(pilot, lambda: app.chat.info is not None)
    await app.workers.wait_for_complete()
    await pilot.pause()
    freeze(pilot)
    return app


async def show(pilot: Pilot[Any], thread_id: str) -> TenexApp:
    """Select a thread in the sidebar and wait until the pane shows it."""
    app = await ready(pilot)
    app.chat.threads.select(thread_id)
    await until(
        pilot,
        lambda: (
            app.chat.thread is not None
            and app.chat.thread.id == thread_id
            and app.chat.pane.thread_id == thread_id
        ),
    )
    await app.workers.wait_for_complete()
    await pilot.pause()
    freeze(pilot)
    return app


# --- a remote workspace that went offline ------------------------------------------

REMOTE_NOW = datetime(2026, 1, 15, 9, 35, tzinfo=UTC)
"""The "now" of an app on the offline remote demo: five minutes after the mirror's
engine clock (`FixedClock`'s default start) recorded the sync."""


async def seed_remote(engine: LocalEngine) -> str:
    """Two threads on the server, as user a1 sees them; returns the newest's id."""
    await engine.create_thread(title="Older remote thread")
    thread = await engine.create_thread(title="Q1 plan")
    return thread.id


def offline_remote_factory(
    base_url: str, key: Secret, path: Path
) -> Callable[[], Awaitable[ChatBackend]]:
    """A backend factory for the app: a `MirroredBackend` on a served workspace,
    synced once into a fresh mirror at `path`, then cut off from the network.

    Args:
        base_url: The served API (`…/api/v1/chat`'s base).
        key: The key of user a1.
        path: Where the mirror's database goes.
    """
    # Imported here: only the remote demo needs the remote client and the test
    # transport that cuts the network.
    import random

    from tenex_tui.remote.client import RemoteBackend
    from tenex_tui.remote.http import RetryPolicy
    from tenex_tui.remote.mirror import MirroredBackend
    from tenex_tui.remote.sse import ResumePolicy
    from tests.remote.fault_transport import FaultTransport
    from tests.remote.sync_helpers import Clock, service_for

    async def factory() -> ChatBackend:
        transport = FaultTransport()
        engine = await LocalEngine.open(path, clock=FixedClock())
        remote = RemoteBackend(
            base_url,
            key,
            transport=transport,
            retry=RetryPolicy(max_retries=0, base_delay=0.01, max_delay=0.02),
            resume=ResumePolicy(max_attempts=1, base_delay=0.01, max_delay=0.02),
            rng=random.Random(7),
        )
        service = service_for(remote, engine, clock=Clock())
        await service.sync()
        transport.offline = True
        return await MirroredBackend.open(
            service, on_close=engine.aclose, probe_interval=1e9
        )

    return factory


async def send_offline(pilot: Pilot[Any], thread_id: str, text: str) -> TenexApp:
    """Open a thread of the offline remote demo and send `text` (it waits, pending)."""
    app = await ready(pilot)
    app.chat.threads.select(thread_id)
    await pilot.press("enter")
    await until(pilot, lambda: app.chat.composer.has_focus)
    for key in text:
        await pilot.press("space" if key == " " else key)
    await pilot.press("enter")
    header = app.chat.query_one("#header")
    await until(
        pilot, lambda: getattr(getattr(header, "sync", None), "pending", 0) == 1
    )
    app.clear_notifications()
    await pilot.pause(0.1)
    freeze(pilot)
    return app
