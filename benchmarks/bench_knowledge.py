"""Knowledge search (issue 4): 10,000 documents / 200,000 chunks, ≤ 30 ms p95.

    python -m benchmarks --only knowledge       # with every other figure's machinery
    python -m benchmarks.bench_knowledge        # alone (add --quick for a smoke run)

The corpus is built once and cached under `benchmarks/.cache/knowledge-…/` (the key
hashes the schema, this builder's version and the scale). Documents are written with
the store's own connection and write path, one `BEGIN IMMEDIATE` with `executemany`
over the schema's columns; the FTS5 triggers index the chunks as they go in, as they
do for `knowledge add`. Each document is 20 chunks of about 1,000 characters drawn from
a Zipf-distributed vocabulary, so there are rare, medium and common words.

Queries go through `LocalEngine.search_knowledge`, exactly what the `search_knowledge`
tool and `tenex-tui knowledge search` call: the hop to the DB thread, the query
rewriting (words, stop words dropped, OR), the ranked FTS5 query and the models.
Query classes, by how many chunks their words match: a rare word (~0.1%), a medium
word (~3%), a common word (~20%), a very common word (~50%), three words of about 1.5%
each (the most an exact ranking scores, see `store_knowledge._search_plan`), and what a
model typically sends: three words of mixed frequency, and a question in English.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import math
import random
import shutil
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from benchmarks.common import (
    CACHE_DIR,
    Bench,
    Context,
    Figure,
    ms,
    percentile,
)

BUILDER_VERSION = 2
WORKSPACE_ID = "ws_local"
CHUNKS_PER_DOC = 20
WORDS_PER_CHUNK = 150
VOCABULARY = 20_000
BUDGET_MS = 30.0
"""Issue 4: knowledge search over 10,000 documents / 200,000 chunks ≤ 30 ms p95."""


@dataclass
class KnowledgeDb:
    """A built (or cached) corpus."""

    home: str
    docs: int
    chunks: int
    size_mb: float
    build_seconds: float
    queries: dict[str, dict[str, Any]]
    """Class name → {"q": query, "hits": matching chunks}."""
    cached: bool = False

    @property
    def path(self) -> Path:
        """The database file."""
        return Path(self.home) / "tenex.db"


def _vocabulary(rng: random.Random) -> list[str]:
    consonants = "bcdfghjklmnprstvwz"
    vowels = "aeiou"
    words: set[str] = set()
    while len(words) < VOCABULARY:
        length = rng.choice((2, 2, 3, 3, 3, 4))
        words.add(
            "".join(rng.choice(consonants) + rng.choice(vowels) for _ in range(length))
        )
    return sorted(words)


def _chunk(rng: random.Random, words: list[str], weights: list[float]) -> str:
    picked = rng.choices(words, cum_weights=weights, k=WORDS_PER_CHUNK)
    sentences = []
    for start in range(0, WORDS_PER_CHUNK, 15):
        sentence = " ".join(picked[start : start + 15])
        sentences.append(sentence[:1].upper() + sentence[1:] + ".")
    return " ".join(sentences) + "\n\n"


def _schema_key(docs: int) -> str:
    from benchmarks.bigdb import _schema_digest

    digest = hashlib.sha256(
        f"{_schema_digest()}|{BUILDER_VERSION}|{docs}".encode()
    ).hexdigest()[:12]
    return f"knowledge-{docs}d-{digest}"


def _pick_queries(conn: Any, words: list[str]) -> dict[str, dict[str, Any]]:
    from tenex_tui.engine.knowledge import fts_any

    def hits(word: str) -> int:
        row = conn.execute(
            "SELECT count(*) FROM knowledge_chunks_fts WHERE knowledge_chunks_fts "
            "MATCH ?",
            (fts_any([word]),),
        ).fetchone()
        return int(row[0])

    total = conn.execute("SELECT count(*) FROM knowledge_chunks").fetchone()[0]
    chosen: dict[str, dict[str, Any]] = {}
    # Zipf rank r matches roughly total * (1 - exp(-k / r)) chunks; search the ranks
    # for each class's target share.
    targets = {
        "rare": 0.001,
        "medium": 0.03,
        "common": 0.20,
        "very common": 0.50,
        "near the rank budget": 0.015,
    }
    ranks: dict[str, int] = {}
    for name, share in targets.items():
        best, best_gap = words[0], math.inf
        for rank in (2, 3, 5, 8, 12, 20, 30, 50, 80, 130, 200, 320, 500, 800, 1300,
                     2000, 3200, 5000, 8000, 13000, 19000):  # fmt: skip
            count = hits(words[rank])
            gap = abs(math.log((count + 1) / (share * total + 1)))
            if gap < best_gap:
                best, best_gap = words[rank], gap
                ranks[name] = rank
        chosen[name] = {"q": best, "hits": hits(best)}
    # Three words of about the same frequency (neighbouring Zipf ranks), together
    # just under what one ranked query may score: the costliest exact ranking.
    rank = ranks.pop("near the rank budget")
    near = chosen.pop("near the rank budget")
    trio = [str(near["q"]), words[rank + 1], words[rank - 1]]
    chosen["three words near the rank budget"] = {
        "q": " ".join(trio),
        "hits": sum(hits(word) for word in trio),
    }
    mixed = f"{chosen['rare']['q']} {chosen['medium']['q']} {chosen['common']['q']}"
    chosen["three mixed words"] = {"q": mixed, "hits": None}
    question = (
        f"What does our {chosen['medium']['q']} say about {chosen['rare']['q']} "
        "and how should we position it?"
    )
    chosen["an English question"] = {"q": question, "hits": None}
    return chosen


def build(home: Path, docs: int, *, seed: int = 20261126) -> KnowledgeDb:
    """Build the corpus in `home/tenex.db` (synchronously)."""
    from tenex_tui.engine.clock import SystemClock
    from tenex_tui.engine.store import Scope, Store
    from tenex_tui.engine.store_db import open_connection

    started = time.perf_counter()
    home.mkdir(parents=True, exist_ok=True)
    path = home / "tenex.db"
    rng = random.Random(seed)
    words = _vocabulary(rng)
    rng.shuffle(words)
    cumulative: list[float] = []
    running = 0.0
    for rank in range(1, len(words) + 1):
        running += 1 / rank
        cumulative.append(running)
    connection = open_connection(path)
    try:
        store = Store(connection, SystemClock(), home / "locks")
        store.ensure_scope(Scope(WORKSPACE_ID, "usr_local"), "Benchmarks", None)
        now = store.now()
        for first in range(0, docs, 500):
            doc_rows = []
            chunk_rows = []
            for number in range(first, min(docs, first + 500)):
                doc_id = f"doc_bench{number:09d}"
                chunks = [_chunk(rng, words, cumulative) for _ in range(CHUNKS_PER_DOC)]
                text = "".join(chunks)
                digest = hashlib.sha256(text.encode()).hexdigest()
                doc_rows.append(
                    (WORKSPACE_ID, doc_id, f"Document {number}", "text/markdown",
                     len(text.encode()), len(chunks), f"bench/{number}.md", digest,
                     now)
                )  # fmt: skip
                chunk_rows += [
                    (WORKSPACE_ID, doc_id, index, chunk)
                    for index, chunk in enumerate(chunks)
                ]
            with connection.write() as conn:
                conn.executemany(
                    "INSERT INTO knowledge_docs (workspace_id, id, title, media_type, "
                    "size, chunk_count, source, sha256, created_at) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    doc_rows,
                )
                conn.executemany(
                    "INSERT INTO knowledge_chunks (workspace_id, doc_id, chunk, text) "
                    "VALUES (?, ?, ?, ?)",
                    chunk_rows,
                )
        with connection.write() as conn:
            conn.execute(
                "INSERT INTO knowledge_chunks_fts(knowledge_chunks_fts) "
                "VALUES ('optimize')"
            )
        queries = _pick_queries(connection.conn, words)
    finally:
        connection.close()
    return KnowledgeDb(
        home=str(home),
        docs=docs,
        chunks=docs * CHUNKS_PER_DOC,
        size_mb=path.stat().st_size / 1e6,
        build_seconds=time.perf_counter() - started,
        queries=queries,
    )


def knowledge_db(docs: int, *, log: Any = None) -> KnowledgeDb:
    """The cached corpus of this size, built first when missing."""
    CACHE_DIR.mkdir(exist_ok=True)
    key = _schema_key(docs)
    home = CACHE_DIR / key
    meta = CACHE_DIR / f"{key}.json"
    if meta.exists() and (home / "tenex.db").exists():
        data = json.loads(meta.read_text())
        data["cached"] = True
        return KnowledgeDb(**data)
    for old in CACHE_DIR.glob(f"knowledge-{docs}d-*"):
        if old.is_dir():
            shutil.rmtree(old, ignore_errors=True)
        else:
            old.unlink(missing_ok=True)
    partial = CACHE_DIR / f"{key}.partial"
    shutil.rmtree(partial, ignore_errors=True)
    if log is not None:
        log(f"building the knowledge corpus ({docs:,} documents)…")
    built = build(partial, docs)
    shutil.rmtree(partial / "locks", ignore_errors=True)
    partial.rename(home)
    built.home = str(home)
    record = asdict(built)
    record.pop("cached")
    meta.write_text(json.dumps(record, indent=2))
    return built


async def _measure(db: KnowledgeDb, locks: Path, repeats: int) -> list[Figure]:
    from tenex_tui.engine.engine import LocalEngine

    engine = await LocalEngine.open(db.path, locks_dir=locks)
    figures: list[Figure] = []
    every: list[float] = []
    try:
        for name, query in db.queries.items():
            q = str(query["q"])
            for _ in range(2):  # warm the page cache and the statement cache
                await engine.search_knowledge(q)
            samples = []
            found = 0
            for _ in range(repeats):
                started = time.perf_counter()
                hits = await engine.search_knowledge(q)
                samples.append(ms(time.perf_counter() - started))
                found = len(hits)
            every.extend(samples)
            matching = (
                f"{query['hits']:,} matching chunks"
                if query["hits"] is not None
                else ""
            )
            figures.append(
                Figure(
                    f"knowledge search, {name}"
                    + (f" ({matching})" if matching else ""),
                    percentile(samples, 95),
                    "ms",
                    BUDGET_MS,
                    stat="p95",
                    samples=samples,
                    note=f"q={q!r}; {repeats} runs; {found} hits returned",
                    group="knowledge",
                )
            )
    finally:
        await engine.aclose()
    figures.append(
        Figure(
            "knowledge search over every class",
            percentile(every, 95),
            "ms",
            BUDGET_MS,
            stat="p95",
            samples=every,
            note=(
                f"issue 4: ≤ 30 ms p95; {db.docs:,} documents / {db.chunks:,} chunks, "
                f"{db.size_mb:.0f} MB"
            ),
            group="knowledge",
        )
    )
    return figures


def run(quick: bool) -> list[Figure]:
    """Build (or load) the corpus and measure search; the full run is 10,000 docs."""
    docs = 1_000 if quick else 10_000
    db = knowledge_db(docs, log=lambda line: print(line, file=sys.stderr))
    build_figure = Figure(
        "build the knowledge corpus",
        db.build_seconds,
        "s",
        kind="report",
        stat="single",
        note=f"{db.docs:,} documents / {db.chunks:,} chunks, {db.size_mb:.0f} MB"
        + ("; from the cache" if db.cached else ""),
        group="knowledge",
    )
    with tempfile.TemporaryDirectory() as scratch:
        figures = asyncio.run(_measure(db, Path(scratch), 10 if quick else 40))
    return [build_figure, *figures]


async def search(ctx: Context) -> AsyncIterator[Figure]:
    """The registry entry: the same figures inside `python -m benchmarks`."""
    docs = 1_000 if ctx.quick else 10_000
    db = await asyncio.to_thread(knowledge_db, docs, log=ctx.log)
    for figure in await _measure(db, ctx.scratch("knowledge-locks"), max(ctx.runs, 20)):
        yield figure


BENCHMARKS = [
    Bench("knowledge.search", search, "knowledge search, 10,000 docs / 200,000 chunks")
]


def main() -> int:
    """Print each figure beside its budget; exit 1 when one is over."""
    figures = run("--quick" in sys.argv[1:])
    over = False
    for figure in figures:
        budget = f"≤ {figure.budget:g} {figure.unit}" if figure.budget else "(report)"
        value = "—" if figure.value is None else f"{figure.value:.2f} {figure.unit}"
        verdict = {True: "ok", False: "OVER", None: ""}[figure.ok]
        over |= figure.ok is False
        print(f"{figure.name:<70} {value:>12}  {budget:<12} {verdict}")
        if figure.note:
            print(f"    {figure.note}")
    return 1 if over else 0


if __name__ == "__main__":
    raise SystemExit(main())
