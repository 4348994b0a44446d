"""Property tests of isolation and pagination (test-plan T57, T59)."""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    precondition,
    rule,
)

from tenex_tui.core.errors import NotFound
from tenex_tui.engine.clock import FixedClock
from tenex_tui.engine.engine import LocalEngine

SCOPES = [("ws_a", "usr_a1"), ("ws_a", "usr_a2"), ("ws_b", "usr_b1")]


class IsolationMachine(RuleBasedStateMachine):
    """Create, update, delete and page for three owners, checking scope after each step."""

    def __init__(self) -> None:
        super().__init__()
        self.loop = asyncio.new_event_loop()
        self.folder = Path(tempfile.mkdtemp(prefix="tenex-t57-"))
        self.root = self.loop.run_until_complete(
            LocalEngine.open(
                self.folder / "t.db",
                clock=FixedClock(),
                workspace_id=SCOPES[0][0],
                user_id=SCOPES[0][1],
            )
        )
        self.views = [self.root.for_scope(ws, user) for ws, user in SCOPES]
        # thread id -> (owner index, archived)
        self.model: dict[str, tuple[int, bool]] = {}

    def run(self, coro: object) -> object:
        return self.loop.run_until_complete(coro)  # type: ignore[arg-type]

    def teardown(self) -> None:
        self.run(self.root.aclose())
        self.loop.close()
        shutil.rmtree(self.folder, ignore_errors=True)

    @rule(
        owner=st.integers(0, 2),
        title=st.text(min_size=1, max_size=20).filter(str.strip),
    )
    def create(self, owner: int, title: str) -> None:
        thread = self.run(self.views[owner].create_thread(title=title))
        self.model[thread.id] = (owner, False)  # type: ignore[attr-defined]

    @precondition(lambda self: bool(self.model))
    @rule(actor=st.integers(0, 2), data=st.data(), archived=st.booleans())
    def archive(self, actor: int, data: st.DataObject, archived: bool) -> None:
        thread_id = data.draw(st.sampled_from(sorted(self.model)))
        owner, _ = self.model[thread_id]
        if owner == actor:
            self.run(self.views[actor].update_thread(thread_id, archived=archived))
            self.model[thread_id] = (owner, archived)
        else:
            with pytest.raises(NotFound):
                self.run(self.views[actor].update_thread(thread_id, archived=archived))

    @precondition(lambda self: bool(self.model))
    @rule(actor=st.integers(0, 2), data=st.data())
    def delete(self, actor: int, data: st.DataObject) -> None:
        thread_id = data.draw(st.sampled_from(sorted(self.model)))
        owner, _ = self.model[thread_id]
        if owner == actor:
            self.run(self.views[actor].delete_thread(thread_id))
            del self.model[thread_id]
        else:
            with pytest.raises(NotFound):
                self.run(self.views[actor].delete_thread(thread_id))

    @rule(actor=st.integers(0, 2), limit=st.integers(1, 4))
    def paginate(self, actor: int, limit: int) -> None:
        seen: list[str] = []
        cursor = None
        for _ in range(50):
            page = self.run(
                self.views[actor].list_threads(
                    limit=limit, cursor=cursor, archived=None
                )
            )
            seen.extend(t.id for t in page.items)  # type: ignore[attr-defined]
            cursor = page.next_cursor  # type: ignore[attr-defined]
            if cursor is None:
                break
        own = {t for t, (owner, _) in self.model.items() if owner == actor}
        assert len(seen) == len(set(seen))
        assert set(seen) == own

    @invariant()
    def every_row_belongs_to_its_reader(self) -> None:
        for index, (workspace, user) in enumerate(SCOPES):
            page = self.run(self.views[index].list_threads(limit=200))
            items = page.items  # type: ignore[attr-defined]
            assert all((t.workspace_id, t.user_id) == (workspace, user) for t in items)
            live = {
                t
                for t, (o, archived) in self.model.items()
                if o == index and not archived
            }
            assert {t.id for t in items} == live
            assert page.total == len(live)  # type: ignore[attr-defined]


TestIsolationMachine = IsolationMachine.TestCase
TestIsolationMachine.settings = settings(
    max_examples=12,
    stateful_step_count=12,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)


async def test_paging_while_another_writer_inserts_and_deletes(tmp_path: Path) -> None:
    """T59: no duplicates and no skipped pre-existing rows while others change."""
    engine = await LocalEngine.open(tmp_path / "t.db", clock=FixedClock())
    try:
        existing = [await engine.create_thread(title=f"old {i}") for i in range(40)]
        deleted: set[str] = set()
        seen: list[str] = []
        cursor = None
        for step in range(40):
            page = await engine.list_threads(limit=7, cursor=cursor)
            seen.extend(t.id for t in page.items)
            # Between pages: new threads arrive, and both seen and unseen ones vanish.
            await engine.create_thread(title=f"new {step}")
            for victim in (existing[(step * 7) % 40], existing[(step * 11 + 3) % 40]):
                if victim.id not in deleted:
                    await engine.delete_thread(victim.id)
                    deleted.add(victim.id)
            cursor = page.next_cursor
            if cursor is None:
                break
        assert cursor is None
        assert len(seen) == len(set(seen))
        survivors = {t.id for t in existing} - deleted
        assert survivors <= set(seen)
        assert set(seen) <= {t.id for t in existing}
    finally:
        await engine.aclose()


async def test_limits_at_the_contract_edges(tmp_path: Path) -> None:
    engine = await LocalEngine.open(tmp_path / "t.db", clock=FixedClock())
    try:
        for _ in range(3):
            await engine.create_thread()
        assert len((await engine.list_threads(limit=10**9)).items) == 3
        last = await engine.list_threads(limit=3)
        assert last.next_cursor is None
        assert last.total == 3
    finally:
        await engine.aclose()
