"""The synthetic workspace the benchmarks measure: 100,000 threads, 1,000,000 messages.

Built once and cached under `benchmarks/.cache/<key>/tenex.db`, where the key hashes
the schema (the migration module's source and the applied migration names), this
builder's version and the scale, so a new migration rebuilds it and nothing else does.
Each cache folder is a whole `TENEX_HOME`: the app in a pty opens it as is (the engine
refuses symlinked or hard-linked database files, so the file cannot be shared).

How it is built: the store's own connection (`open_connection`, which applies the
migrations) and its write path (`StoreConnection.write()`, one `BEGIN IMMEDIATE`), with
`executemany` over the schema's columns. The store has no public bulk-import method, so
the rows are written here with the same column values the store itself writes; the
FTS5 triggers of the schema index them as they go in, exactly as in a user's file.

The data is deterministic (seeded) and shaped like a real workspace:

- pinned threads first: `Benchmark top thread` (row 0 of the sidebar, 12 messages) and
  `Benchmark big thread` (row 1, 10,000 messages, its last reply ends with
  `BIGTHREADEND`); then 18 more pinned ones;
- the rest by recency, 10 minutes apart (two years of history), 2–18 messages each,
  user and assistant alternating; ~5% archived, ~10% bound to the lead-triage agent,
  a few replies `error` / `stopped` / `interrupted`, a few unread;
- text drawn from a Zipf-distributed vocabulary in sentences, assistant replies with
  Markdown lists and code blocks, so search has rare, medium and common words.

Stream events of these old replies are not generated: no measured query reads them.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import random
import shutil
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

BUILDER_VERSION = 1
"""Bump when the generated data changes shape (rebuilds every cache)."""

CACHE_DIR = Path(__file__).resolve().parent / ".cache"
WORKSPACE_ID = "ws_local"
USER_ID = "usr_local"
"""The scope the app and CLI use by default, so the app sees these threads."""
MODEL = "bench-model"

TOP_TITLE = "Benchmark top thread"
BIG_TITLE = "Benchmark big thread"
NEWEST_TITLE = "Benchmark newest thread"
BIG_END_MARKER = "BIGTHREADEND"
PINNED = 20
BASE_EPOCH = 1_793_000_000  # 2026-10-26, the newest activity in the workspace


@dataclass
class BigDb:
    """A built (or cached) synthetic database and what the benchmarks need to know."""

    home: Path
    """A `TENEX_HOME` folder; the database is `home / "tenex.db"`."""
    threads: int
    messages: int
    build_seconds: float
    """How long the build took (when it was built, possibly in an earlier run)."""
    cached: bool = False
    """True when this run found it in the cache."""
    big_thread_id: str = ""
    big_thread_messages: int = 0
    top_thread_id: str = ""
    queries: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Search words by class (`rare`, `medium`, `common`, `two-words`) and hit counts."""
    size_mb: float = 0.0

    @property
    def path(self) -> Path:
        """The database file."""
        return self.home / "tenex.db"


# --------------------------------------------------------------------------- text

_ONSETS = [
    "b",
    "c",
    "d",
    "f",
    "g",
    "h",
    "j",
    "k",
    "l",
    "m",
    "n",
    "p",
    "r",
    "s",
    "t",
    "v",
    "w",
    "z",
    "br",
    "ch",
    "cl",
    "cr",
    "dr",
    "fl",
    "gr",
    "pl",
    "pr",
    "sh",
    "st",
    "th",
    "tr",
]
_VOWELS = ["a", "e", "i", "o", "u", "ai", "ea", "ee", "io", "oa", "ou"]
_CODAS = ["", "", "n", "r", "s", "t", "l", "m", "nd", "rt", "st", "x"]
_COMMON = [
    "the",
    "to",
    "and",
    "of",
    "a",
    "in",
    "is",
    "for",
    "that",
    "you",
    "it",
    "on",
    "with",
    "this",
    "we",
    "can",
    "your",
    "be",
    "are",
    "as",
    "our",
    "lead",
    "brand",
    "campaign",
    "customer",
    "pricing",
    "meeting",
    "follow",
    "up",
    "email",
    "draft",
    "team",
    "product",
    "launch",
    "budget",
    "quarter",
    "review",
    "market",
    "agent",
    "triage",
    "deal",
    "call",
    "demo",
    "contract",
    "renewal",
    "plan",
    "report",
    "data",
    "growth",
    "content",
    "social",
    "post",
    "newsletter",
    "partner",
    "account",
    "priority",
    "next",
    "week",
    "today",
    "summary",
    "notes",
    "feedback",
    "roadmap",
    "design",
    "copy",
    "tone",
    "audience",
    "segment",
    "offer",
    "trial",
    "churn",
    "pipeline",
    "forecast",
    "target",
    "score",
    "region",
    "sales",
    "support",
    "ticket",
    "issue",
    "update",
    "status",
    "owner",
    "deadline",
    "timeline",
    "risk",
    "scope",
    "goal",
    "metric",
    "signup",
]


class Corpus:
    """A Zipf vocabulary and a pool of sentences drawn from it (deterministic)."""

    def __init__(self, seed: int, words: int = 6000, sentences: int = 40_000) -> None:
        rng = random.Random(seed)
        vocab = list(dict.fromkeys(_COMMON))
        seen = set(vocab)
        while len(vocab) < words:
            word = "".join(
                rng.choice(_ONSETS) + rng.choice(_VOWELS) + rng.choice(_CODAS)
                for _ in range(rng.choice((1, 2, 2, 3)))
            )
            if word not in seen:
                seen.add(word)
                vocab.append(word)
        self.vocab = vocab
        weights = [1.0 / (rank + 2.7) ** 1.07 for rank in range(len(vocab))]
        cumulative = list(itertools.accumulate(weights))
        self.sentences: list[str] = []
        for _ in range(sentences):
            chosen = rng.choices(vocab, cum_weights=cumulative, k=rng.randint(6, 16))
            text = " ".join(chosen)
            self.sentences.append(text[0].upper() + text[1:] + ".")
        self._rng = rng

    def user_text(self, rng: random.Random) -> str:
        parts = rng.choices(self.sentences, k=rng.choice((1, 1, 2)))
        text = " ".join(parts)
        return text[:-1] + "?" if rng.random() < 0.5 else text

    def assistant_text(self, rng: random.Random) -> str:
        sentences = self.sentences
        paragraphs = [" ".join(rng.choices(sentences, k=rng.randint(1, 3)))]
        roll = rng.random()
        if roll < 0.25:
            items = rng.choices(sentences, k=3)
            paragraphs.append("\n".join(f"- **{s.split()[0]}** {s}" for s in items))
        elif roll < 0.33:
            name = rng.choice(self.vocab[60:600])
            paragraphs.append(
                f"```python\ndef {name}(lead):\n    score = lead.get('score', 0)\n"
                f"    return score * {rng.randint(2, 9)}\n```"
            )
        if rng.random() < 0.6:
            paragraphs.append(" ".join(rng.choices(sentences, k=rng.randint(1, 2))))
        return "\n\n".join(paragraphs)

    def title(self, rng: random.Random) -> str:
        words = rng.choice(self.sentences).rstrip(".").split()[: rng.randint(3, 7)]
        return " ".join(words)


# --------------------------------------------------------------------------- building


def _stamp(epoch: float) -> str:
    """RFC 3339 UTC with microseconds and a Z, as `core.models.format_timestamp`."""
    whole = int(epoch)
    micros = round((epoch - whole) * 1_000_000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(whole)) + f".{micros:06d}Z"


def _schema_digest() -> str:
    """A digest of the schema the migrations create (not of their comments)."""
    import sqlite3

    import sqlite_utils

    from tenex_tui.engine.migrations import apply_migrations

    conn = sqlite3.connect(":memory:", isolation_level=None)
    try:
        apply_migrations(sqlite_utils.Database(conn))
        rows = conn.execute(
            "SELECT type, name, coalesce(sql, '') FROM sqlite_master "
            "WHERE name NOT LIKE '\\_sqlite%' ESCAPE '\\' ORDER BY type, name"
        ).fetchall()
    finally:
        conn.close()
    text = "\n".join("|".join(row) for row in rows)
    return hashlib.sha256(text.encode()).hexdigest()


def cache_key(threads: int, messages: int) -> str:
    """The cache folder name for a scale under the current schema."""
    digest = hashlib.sha256(
        f"{_schema_digest()}|{BUILDER_VERSION}|{threads}|{messages}".encode()
    ).hexdigest()[:12]
    return f"db-{threads}t-{messages}m-{digest}"


def _message_counts(rng: random.Random, threads: int, messages: int) -> list[int]:
    """Messages per thread: index 0 the top thread, 1 the big one, the rest 2–18, even."""
    big = min(10_000, max(2, messages // 100))
    counts = [12, big]
    rest = threads - 2
    budget = messages - 12 - big
    average = budget / rest
    low, high = 2, max(4, round(2 * average - 2))
    counts.extend(2 * rng.randint(low // 2, high // 2) for _ in range(rest))
    # Correct the total two messages at a time, spread over the threads.
    diff = budget - sum(counts[2:])
    index = 2
    while diff != 0:
        step = 2 if diff > 0 else -2
        if abs(diff) == 1:
            step = diff
        if counts[index] + step >= 2:
            counts[index] += step
            diff -= step
        index = 2 + (index - 1) % rest
    return counts


def _threads(
    corpus: Corpus, rng: random.Random, counts: list[int], pinned_count: int
) -> Iterator[tuple[int, dict[str, Any]]]:
    for index, count in enumerate(counts):
        pinned = index < pinned_count
        last = BASE_EPOCH - index * 600
        if index == 0:
            title = TOP_TITLE
        elif index == 1:
            title = BIG_TITLE
        elif index == max(pinned_count, 2):
            title = NEWEST_TITLE
        else:
            title = corpus.title(rng)
        yield (
            index,
            {
                "id": f"thr_bench{index:021d}",
                "title": title,
                "pinned": int(pinned),
                "archived": int(index > max(pinned_count, 2) and rng.random() < 0.05),
                "agent": "lead-triage" if rng.random() < 0.1 else None,
                "count": count,
                "last": last,
                "unread": rng.random() < 0.02,
                "end_status": _end_status(rng, index),
            },
        )


def _end_status(rng: random.Random, index: int) -> str:
    if index < 2:
        return "complete"
    roll = rng.random()
    if roll < 0.005:
        return "error"
    if roll < 0.008:
        return "stopped"
    if roll < 0.010:
        return "interrupted"
    return "complete"


_THREAD_SQL = """INSERT INTO threads (workspace_id, id, user_id, title, agent,
    context, model, pinned, archived, created_at, updated_at, last_message_at, sort_at,
    message_count, next_seq, last_status, last_reply_at, read_at)
    VALUES (?, ?, ?, ?, ?, '{}', NULL, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"""
_MESSAGE_SQL = """INSERT INTO messages (workspace_id, id, thread_id, user_id, seq, role,
    content, status, model, usage, error, created_at, completed_at)
    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"""


def _write(
    conn: Any, corpus: Corpus, rng: random.Random, counts: list[int], pinned: int
) -> None:
    thread_rows: list[tuple[Any, ...]] = []
    message_rows: list[tuple[Any, ...]] = []
    number = 0

    def flush() -> None:
        conn.executemany(_THREAD_SQL, thread_rows)
        conn.executemany(_MESSAGE_SQL, message_rows)
        thread_rows.clear()
        message_rows.clear()

    for index, t in _threads(corpus, rng, counts, pinned):
        count, last = t["count"], t["last"]
        first = last - 30 * (count - 1)
        thread_id = t["id"]
        for seq in range(1, count + 1):
            number += 1
            at = first + 30 * (seq - 1)
            user = seq % 2 == 1
            status = "complete"
            error = None
            if seq == count and not user:
                status = t["end_status"]
                if status == "error":
                    error = "The model provider answered 500: upstream overloaded."
                elif status == "interrupted":
                    error = "The reply was interrupted: the process writing it stopped."
            content = corpus.user_text(rng) if user else corpus.assistant_text(rng)
            if index == 1 and seq == count:
                content += f"\n\nThat is all for now. {BIG_END_MARKER}"
            message_rows.append(
                (
                    WORKSPACE_ID,
                    f"msg_bench{number:021d}",
                    thread_id,
                    USER_ID,
                    seq,
                    "user" if user else "assistant",
                    content,
                    status,
                    None if user else MODEL,
                    None
                    if user
                    else f'{{"prompt_tokens":{40 + seq},"completion_tokens":{len(content) // 4}}}',
                    error,
                    _stamp(at),
                    _stamp(at + (0 if user else 2.5)),
                )
            )
        last_stamp = _stamp(last)
        reply = _stamp(last + 2.5)
        thread_rows.append(
            (
                WORKSPACE_ID,
                thread_id,
                USER_ID,
                t["title"],
                t["agent"],
                t["pinned"],
                t["archived"],
                _stamp(first - 60),
                last_stamp,
                last_stamp,
                last_stamp,
                count,
                count + 1,
                t["end_status"],
                reply,
                None if t["unread"] else reply,
            )
        )
        if len(message_rows) >= 50_000:
            flush()
    flush()


def _pick_queries(conn: Any, corpus: Corpus) -> dict[str, dict[str, Any]]:
    """Search words at fixed vocabulary ranks, with how many messages match each."""

    def hits(query: str) -> int:
        row = conn.execute(
            "SELECT count(*) FROM messages_fts WHERE messages_fts MATCH ?", (query,)
        ).fetchone()
        return int(row[0])

    picked: dict[str, dict[str, Any]] = {}
    for name, rank in (("common", 12), ("medium", 400), ("rare", 4000)):
        word = corpus.vocab[min(rank, len(corpus.vocab) - 1)]
        picked[name] = {"q": word, "hits": hits(f'"{word}"')}
    pair = f"{corpus.vocab[40]} {corpus.vocab[90]}"
    picked["two-words"] = {
        "q": pair,
        "hits": hits(" ".join(f'"{w}"' for w in pair.split())),
    }
    return picked


def build(home: Path, threads: int, messages: int, *, seed: int = 20261126) -> BigDb:
    """Build a database of this scale in `home` (which must not exist yet).

    Returns:
        What was built, with its build time.
    """
    from tenex_tui.engine.clock import SystemClock
    from tenex_tui.engine.store import Scope, Store
    from tenex_tui.engine.store_db import open_connection

    started = time.perf_counter()
    home.mkdir(parents=True)
    connection = open_connection(home / "tenex.db")
    try:
        store = Store(connection, SystemClock(), home / "locks")
        store.ensure_scope(Scope(WORKSPACE_ID, USER_ID), "Benchmark", "You")
        corpus = Corpus(seed)
        # A bigger page cache for this one-off bulk load only (not a schema change).
        connection.conn.execute("PRAGMA cache_size=-262144")
        rng = random.Random(seed + 1)
        counts = _message_counts(rng, threads, messages)
        with connection.write() as conn:
            _write(conn, corpus, rng, counts, PINNED)
        queries = _pick_queries(connection.conn, corpus)
        big = connection.conn.execute(
            "SELECT id, message_count FROM threads WHERE title = ?", (BIG_TITLE,)
        ).fetchone()
        top = connection.conn.execute(
            "SELECT id FROM threads WHERE title = ?", (TOP_TITLE,)
        ).fetchone()
        connection.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        connection.close()
    seconds = time.perf_counter() - started
    return BigDb(
        home=home,
        threads=threads,
        messages=messages,
        build_seconds=seconds,
        big_thread_id=str(big[0]),
        big_thread_messages=int(big[1]),
        top_thread_id=str(top[0]),
        queries=queries,
        size_mb=(home / "tenex.db").stat().st_size / 1e6,
    )


def big_db(
    threads: int = 100_000, messages: int = 1_000_000, *, log: Any = None
) -> BigDb:
    """The cached database of this scale, built first when missing.

    Args:
        threads: How many threads.
        messages: How many messages in all (one thread holds up to 10,000).
        log: A `print`-like callable told when a build starts.
    """
    CACHE_DIR.mkdir(exist_ok=True)
    key = cache_key(threads, messages)
    home = CACHE_DIR / key
    meta = CACHE_DIR / f"{key}.json"
    if home.exists() and meta.exists() and (home / "tenex.db").exists():
        data = json.loads(meta.read_text())
        data["home"] = home
        data["cached"] = True
        return BigDb(**data)
    # Caches of this scale under an older schema are dead weight (hundreds of MB).
    for old in CACHE_DIR.glob(f"db-{threads}t-{messages}m-*"):
        if old.is_dir():
            shutil.rmtree(old, ignore_errors=True)
        else:
            old.unlink(missing_ok=True)
    partial = CACHE_DIR / f"{key}.partial"
    shutil.rmtree(partial, ignore_errors=True)
    shutil.rmtree(home, ignore_errors=True)
    if log is not None:
        log(
            f"building the synthetic database ({threads:,} threads / {messages:,} messages)…"
        )
    built = build(partial, threads, messages)
    # The engine's writer locks are per folder: start the cached copy without any.
    shutil.rmtree(partial / "locks", ignore_errors=True)
    partial.rename(home)
    built.home = home
    record = asdict(built)
    record["home"] = str(home)
    record.pop("cached")
    meta.write_text(json.dumps(record, indent=2))
    return built


def small_home(
    root: Path, *, finished: int = 30, others: int = 200, seed: int = 7
) -> tuple[Path, str]:
    """A fresh small `TENEX_HOME` for runs that write (sending, streaming).

    Holds one thread (`Benchmark top thread`, sidebar row 0) with `finished` finished
    messages shaped like the big database's, and `others` older two-message threads.

    Returns:
        The home folder and the id of the thread with `finished` messages.
    """
    from tenex_tui.engine.clock import SystemClock
    from tenex_tui.engine.store import Scope, Store
    from tenex_tui.engine.store_db import open_connection

    home = root
    home.mkdir(parents=True, exist_ok=True)
    connection = open_connection(home / "tenex.db")
    try:
        Store(connection, SystemClock(), home / "locks").ensure_scope(
            Scope(WORKSPACE_ID, USER_ID), "Benchmark", "You"
        )
        corpus = Corpus(seed, sentences=4000)
        rng = random.Random(seed)
        counts = [finished, 2, *([2] * others)]
        # No pinned threads: row 0 of the sidebar is the most recent one (index 0).
        with connection.write() as conn:
            _write(conn, corpus, rng, counts, 0)
        thread = connection.conn.execute(
            "SELECT id FROM threads WHERE title = ?", (TOP_TITLE,)
        ).fetchone()
    finally:
        connection.close()
    return home, str(thread[0])
