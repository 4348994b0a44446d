"""The database schema, as append-only numbered migrations (sqlite-utils `Migrations`).

Rules (STYLE.md §3): migrations are never edited or renumbered once released; a change
is a new `mNNN_…` function with a paragraph saying why. Each one is a list of single
statements run with `execute` (never `executescript`, which commits whatever transaction
is open and would make a migration non-atomic, brockamer/findajob#954).

How they are applied (`apply_migrations`): each pending migration runs in its own
`BEGIN IMMEDIATE` transaction together with its bookkeeping row, and the list of pending
migrations is re-read inside that transaction. So a crash in migration k leaves exactly
migrations 1…k-1 applied, and several processes opening a fresh file at once serialise on
the write lock and apply each migration exactly once (test-plan T2, T3). The journal mode
is set before, outside any transaction (`store_db`), because SQLite silently ignores a
journal-mode change inside one.

Isolation (test-plan §6): every row that belongs to a workspace carries `workspace_id`
and is keyed by `(workspace_id, id)`, so an id arriving from another workspace can never
overwrite a row; user-owned rows carry `user_id` too. Tables that an FTS5 index mirrors
have an explicit `num INTEGER PRIMARY KEY`, because VACUUM may renumber implicit rowids
and an external-content index keyed by them would silently point at the wrong rows.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable, Sequence

import sqlite_utils
from sqlite_utils import Migrations

MIGRATIONS = Migrations("tenex")
"""The migration set of the tenex-tui database."""

Statement = str | tuple[str, tuple[object, ...]]


class InjectedFault(RuntimeError):
    """Raised at a fault point named in `TENEX_FAULTS` (tests only)."""


def fault_point(migration: str, statement: int) -> None:
    """A named point where tests can inject a failure (test-plan H6).

    Honoured only when `TENEX_TESTING=1`. `TENEX_FAULTS` is a comma-separated list of
    `migration:<k>:after_stmt:<n>` entries (append `:exit` to kill the process with
    `os._exit(137)` instead of raising).

    Args:
        migration: The migration's name (`m003_…`); k is its number.
        statement: How many statements of it have run.

    Raises:
        InjectedFault: When this point is named.
    """
    if os.environ.get("TENEX_TESTING") != "1":
        return
    number = int(migration[1:4])
    for entry in os.environ.get("TENEX_FAULTS", "").split(","):
        parts = entry.strip().split(":")
        if len(parts) < 4 or parts[0] != "migration" or parts[2] != "after_stmt":
            continue
        if int(parts[1]) == number and int(parts[3]) == statement:
            if parts[4:] == ["exit"]:
                os._exit(137)
            raise InjectedFault(
                f"injected fault in {migration} after statement {statement}"
            )


def _run(db: sqlite_utils.Database, name: str, statements: Sequence[Statement]) -> None:
    for index, statement in enumerate(statements, start=1):
        if isinstance(statement, str):
            db.conn.execute(statement)
        else:
            db.conn.execute(statement[0], statement[1])
        fault_point(name, index)


def statement_counts() -> dict[str, int]:
    """How many statements each migration runs (tests inject a fault after each)."""
    return {name: len(build()) for name, build in _STATEMENTS.items()}


_STATEMENTS: dict[str, Callable[[], list[Statement]]] = {}


def _migration(
    name: str, statements: list[Statement] | Callable[[], list[Statement]]
) -> None:
    # A callable builds its statements when the migration runs (values such as a
    # generated secret must not be made at import time).
    _STATEMENTS[name] = statements if callable(statements) else lambda: statements

    def apply(db: sqlite_utils.Database) -> None:
        _run(db, name, _STATEMENTS[name]())

    apply.__name__ = name
    MIGRATIONS(name=name)(apply)


# m001: workspaces and their users. The hosted API scopes everything by a workspace and
# a user; the local app uses one default pair, but the schema has both from day one so
# that the HTTP server, sync and profiles never need a rewrite of every table.
_migration(
    "m001_create_workspaces_and_users",
    [
        """CREATE TABLE workspaces (
            id TEXT PRIMARY KEY,
            name TEXT NOT NULL DEFAULT '',
            created_at TEXT NOT NULL
        )""",
        """CREATE TABLE users (
            workspace_id TEXT NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
            id TEXT NOT NULL,
            name TEXT NOT NULL DEFAULT '',
            created_at TEXT NOT NULL,
            PRIMARY KEY (workspace_id, id)
        )""",
    ],
)

# m002: threads and messages. `sort_at` (last message, else creation) is the recency key
# and the keyset indexes put pinned threads first, so a sidebar page is one index range
# scan at any depth. Messages are ordered by a per-thread `seq` (timestamps can tie).
# `writer_id` names the engine instance streaming a message, so start-up can tell a
# live reply from one whose process died; `request_id` makes a send idempotent.
_migration(
    "m002_create_threads_and_messages",
    [
        """CREATE TABLE threads (
            num INTEGER PRIMARY KEY,
            workspace_id TEXT NOT NULL,
            id TEXT NOT NULL,
            user_id TEXT NOT NULL,
            title TEXT NOT NULL DEFAULT '',
            agent TEXT,
            system_prompt TEXT,
            context TEXT NOT NULL DEFAULT '{}',
            model TEXT,
            pinned INTEGER NOT NULL DEFAULT 0,
            archived INTEGER NOT NULL DEFAULT 0,
            draft TEXT NOT NULL DEFAULT '',
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL,
            last_message_at TEXT,
            sort_at TEXT NOT NULL,
            message_count INTEGER NOT NULL DEFAULT 0,
            next_seq INTEGER NOT NULL DEFAULT 1,
            last_status TEXT,
            last_reply_at TEXT,
            read_at TEXT,
            UNIQUE (workspace_id, id),
            FOREIGN KEY (workspace_id, user_id)
                REFERENCES users(workspace_id, id) ON DELETE CASCADE
        )""",
        """CREATE INDEX threads_by_recency
            ON threads(workspace_id, user_id, archived, pinned, sort_at, id)""",
        """CREATE INDEX threads_by_recency_any
            ON threads(workspace_id, user_id, pinned, sort_at, id)""",
        """CREATE INDEX threads_by_agent
            ON threads(workspace_id, user_id, agent, archived, pinned, sort_at, id)""",
        """CREATE TABLE messages (
            num INTEGER PRIMARY KEY,
            workspace_id TEXT NOT NULL,
            id TEXT NOT NULL,
            thread_id TEXT NOT NULL,
            user_id TEXT NOT NULL,
            seq INTEGER NOT NULL,
            role TEXT NOT NULL
                CHECK (role IN ('user', 'assistant', 'system', 'tool')),
            content TEXT NOT NULL DEFAULT '',
            status TEXT NOT NULL CHECK (status IN
                ('complete', 'streaming', 'stopped', 'interrupted', 'error')),
            tool_calls TEXT NOT NULL DEFAULT '[]',
            attachments TEXT NOT NULL DEFAULT '[]',
            attachment_text TEXT NOT NULL DEFAULT '[]',
            model TEXT,
            usage TEXT,
            error TEXT,
            created_at TEXT NOT NULL,
            completed_at TEXT,
            reply_to TEXT,
            request_id TEXT,
            writer_id TEXT,
            event_seq INTEGER NOT NULL DEFAULT 0,
            cancel_requested INTEGER NOT NULL DEFAULT 0,
            UNIQUE (workspace_id, id),
            FOREIGN KEY (workspace_id, thread_id)
                REFERENCES threads(workspace_id, id) ON DELETE CASCADE
        )""",
        """CREATE UNIQUE INDEX messages_by_thread
            ON messages(workspace_id, thread_id, seq)""",
        """CREATE UNIQUE INDEX messages_by_request
            ON messages(workspace_id, thread_id, request_id)
            WHERE request_id IS NOT NULL""",
        """CREATE INDEX messages_streaming
            ON messages(workspace_id, thread_id) WHERE status = 'streaming'""",
    ],
)

# m003: the stream events of every reply, so a client can resume after any event id,
# from this process or another one (DESIGN.md §4). Keyed per message: event ids embed
# the message and count from 1, never globally (test-plan T60). Plain deltas keep their
# text in `delta` and no JSON, because they are most of the rows.
_migration(
    "m003_create_events",
    [
        """CREATE TABLE events (
            workspace_id TEXT NOT NULL,
            message_id TEXT NOT NULL,
            seq INTEGER NOT NULL,
            thread_id TEXT NOT NULL,
            type TEXT NOT NULL,
            delta TEXT NOT NULL DEFAULT '',
            data TEXT,
            created_at TEXT NOT NULL,
            PRIMARY KEY (workspace_id, message_id, seq),
            FOREIGN KEY (workspace_id, message_id)
                REFERENCES messages(workspace_id, id) ON DELETE CASCADE
        ) WITHOUT ROWID""",
    ],
)

# m004: full-text search over message content and thread titles. External-content FTS5
# tables kept in step by triggers; a message is indexed only once it stops streaming, so
# checkpoints of a long reply do not re-index its growing text four times a second.
# Queries join back to the base tables, which carry the workspace and user.
_migration(
    "m004_create_search_index",
    [
        """CREATE VIRTUAL TABLE messages_fts USING fts5(
            content, content='messages', content_rowid='num',
            tokenize='unicode61 remove_diacritics 2'
        )""",
        """CREATE TRIGGER messages_fts_insert AFTER INSERT ON messages
            WHEN new.status != 'streaming' BEGIN
            INSERT INTO messages_fts(rowid, content) VALUES (new.num, new.content);
        END""",
        """CREATE TRIGGER messages_fts_delete AFTER DELETE ON messages
            WHEN old.status != 'streaming' BEGIN
            INSERT INTO messages_fts(messages_fts, rowid, content)
                VALUES ('delete', old.num, old.content);
        END""",
        """CREATE TRIGGER messages_fts_update AFTER UPDATE OF content, status ON messages
        BEGIN
            INSERT INTO messages_fts(messages_fts, rowid, content)
                SELECT 'delete', old.num, old.content WHERE old.status != 'streaming';
            INSERT INTO messages_fts(rowid, content)
                SELECT new.num, new.content WHERE new.status != 'streaming';
        END""",
        """CREATE VIRTUAL TABLE threads_fts USING fts5(
            title, content='threads', content_rowid='num',
            tokenize='unicode61 remove_diacritics 2'
        )""",
        """CREATE TRIGGER threads_fts_insert AFTER INSERT ON threads BEGIN
            INSERT INTO threads_fts(rowid, title) VALUES (new.num, new.title);
        END""",
        """CREATE TRIGGER threads_fts_delete AFTER DELETE ON threads BEGIN
            INSERT INTO threads_fts(threads_fts, rowid, title)
                VALUES ('delete', old.num, old.title);
        END""",
        """CREATE TRIGGER threads_fts_update AFTER UPDATE OF title ON threads BEGIN
            INSERT INTO threads_fts(threads_fts, rowid, title)
                VALUES ('delete', old.num, old.title);
            INSERT INTO threads_fts(rowid, title) VALUES (new.num, new.title);
        END""",
    ],
)


def _m005_statements() -> list[Statement]:
    return [
        """CREATE TABLE meta (
            key TEXT PRIMARY KEY,
            value TEXT NOT NULL
        )""",
        (
            "INSERT INTO meta (key, value) VALUES ('cursor_secret', ?)",
            (secrets.token_bytes(32).hex(),),
        ),
    ]


# m005: installation-wide values. The cursor-signing secret is generated once, at the
# first start, so cursors stay valid across restarts but cannot be forged (T58).
_migration("m005_create_meta", _m005_statements)


# m006: API keys and idempotency records for the HTTP server. A key is stored as its
# public prefix and a hash of its secret only: there is no column a plaintext secret
# could land in (test-plan T61). Idempotency records replay the first result of a request
# (Stripe's semantics), per workspace and user.
_migration(
    "m006_create_api_keys_and_idempotency",
    [
        """CREATE TABLE api_keys (
            prefix TEXT PRIMARY KEY,
            workspace_id TEXT NOT NULL,
            user_id TEXT NOT NULL,
            secret_hash TEXT NOT NULL,
            name TEXT NOT NULL DEFAULT '',
            created_at TEXT NOT NULL,
            revoked_at TEXT
        )""",
        "CREATE INDEX api_keys_by_workspace ON api_keys(workspace_id, created_at)",
        """CREATE TABLE idempotency (
            workspace_id TEXT NOT NULL,
            user_id TEXT NOT NULL,
            key TEXT NOT NULL,
            request_hash TEXT NOT NULL,
            status INTEGER NOT NULL,
            body TEXT NOT NULL,
            created_at TEXT NOT NULL,
            PRIMARY KEY (workspace_id, user_id, key)
        )""",
        "CREATE INDEX idempotency_by_age ON idempotency(workspace_id, created_at)",
    ],
)

# m007: brand knowledge (documents split into chunks, with FTS5 over the chunk text) and
# leads, for the knowledge/agents issue, created now so that issue needs no schema
# change to start.
_migration(
    "m007_create_knowledge_and_leads",
    [
        """CREATE TABLE knowledge_docs (
            num INTEGER PRIMARY KEY,
            workspace_id TEXT NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
            id TEXT NOT NULL,
            title TEXT NOT NULL,
            media_type TEXT NOT NULL DEFAULT 'text/plain',
            size INTEGER NOT NULL DEFAULT 0,
            chunk_count INTEGER NOT NULL DEFAULT 0,
            source TEXT,
            sha256 TEXT,
            created_at TEXT NOT NULL,
            UNIQUE (workspace_id, id)
        )""",
        """CREATE TABLE knowledge_chunks (
            num INTEGER PRIMARY KEY,
            workspace_id TEXT NOT NULL,
            doc_id TEXT NOT NULL,
            chunk INTEGER NOT NULL,
            text TEXT NOT NULL,
            UNIQUE (workspace_id, doc_id, chunk),
            FOREIGN KEY (workspace_id, doc_id)
                REFERENCES knowledge_docs(workspace_id, id) ON DELETE CASCADE
        )""",
        """CREATE VIRTUAL TABLE knowledge_chunks_fts USING fts5(
            text, content='knowledge_chunks', content_rowid='num',
            tokenize='unicode61 remove_diacritics 2'
        )""",
        """CREATE TRIGGER knowledge_chunks_fts_insert AFTER INSERT ON knowledge_chunks
        BEGIN
            INSERT INTO knowledge_chunks_fts(rowid, text) VALUES (new.num, new.text);
        END""",
        """CREATE TRIGGER knowledge_chunks_fts_delete AFTER DELETE ON knowledge_chunks
        BEGIN
            INSERT INTO knowledge_chunks_fts(knowledge_chunks_fts, rowid, text)
                VALUES ('delete', old.num, old.text);
        END""",
        """CREATE TRIGGER knowledge_chunks_fts_update AFTER UPDATE OF text
            ON knowledge_chunks BEGIN
            INSERT INTO knowledge_chunks_fts(knowledge_chunks_fts, rowid, text)
                VALUES ('delete', old.num, old.text);
            INSERT INTO knowledge_chunks_fts(rowid, text) VALUES (new.num, new.text);
        END""",
        """CREATE TABLE leads (
            num INTEGER PRIMARY KEY,
            workspace_id TEXT NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
            id TEXT NOT NULL,
            name TEXT NOT NULL,
            fields TEXT NOT NULL DEFAULT '{}',
            created_at TEXT NOT NULL,
            UNIQUE (workspace_id, id)
        )""",
    ],
)


# m008: per-owner thread counts kept by triggers, so a list's `total` costs one indexed
# read instead of counting 100,000 index entries (15-20 ms) on every first page. Keyed by
# the two flags a sidebar filters on; lists filtered by agent or title still count rows.
_migration(
    "m008_create_thread_counts",
    [
        """CREATE TABLE thread_counts (
            workspace_id TEXT NOT NULL,
            user_id TEXT NOT NULL,
            archived INTEGER NOT NULL,
            pinned INTEGER NOT NULL,
            n INTEGER NOT NULL,
            PRIMARY KEY (workspace_id, user_id, archived, pinned)
        ) WITHOUT ROWID""",
        """INSERT INTO thread_counts (workspace_id, user_id, archived, pinned, n)
            SELECT workspace_id, user_id, archived, pinned, count(*) FROM threads
            GROUP BY workspace_id, user_id, archived, pinned""",
        """CREATE TRIGGER thread_counts_insert AFTER INSERT ON threads BEGIN
            INSERT INTO thread_counts (workspace_id, user_id, archived, pinned, n)
                VALUES (new.workspace_id, new.user_id, new.archived, new.pinned, 1)
                ON CONFLICT DO UPDATE SET n = n + 1;
        END""",
        """CREATE TRIGGER thread_counts_delete AFTER DELETE ON threads BEGIN
            UPDATE thread_counts SET n = n - 1
                WHERE workspace_id = old.workspace_id AND user_id = old.user_id
                AND archived = old.archived AND pinned = old.pinned;
        END""",
        """CREATE TRIGGER thread_counts_update AFTER UPDATE OF archived, pinned ON threads
            WHEN old.archived != new.archived OR old.pinned != new.pinned BEGIN
            UPDATE thread_counts SET n = n - 1
                WHERE workspace_id = old.workspace_id AND user_id = old.user_id
                AND archived = old.archived AND pinned = old.pinned;
            INSERT INTO thread_counts (workspace_id, user_id, archived, pinned, n)
                VALUES (new.workspace_id, new.user_id, new.archived, new.pinned, 1)
                ON CONFLICT DO UPDATE SET n = n + 1;
        END""",
    ],
)


# m009: what the knowledge and lead features need beyond m007. Lists page newest first
# by `num` within a workspace, which the `(workspace_id, id)` unique indexes cannot
# serve; adding the same document or lead twice returns the first one, found by a hash
# of its text or record (`record_hash` is NULL on rows from before this migration, so
# the unique index is partial).
_migration(
    "m009_index_knowledge_and_leads",
    [
        "CREATE INDEX knowledge_docs_by_workspace ON knowledge_docs(workspace_id)",
        "CREATE INDEX knowledge_docs_by_sha256 ON knowledge_docs(workspace_id, sha256)",
        "CREATE INDEX leads_by_workspace ON leads(workspace_id)",
        "ALTER TABLE leads ADD COLUMN record_hash TEXT",
        """CREATE UNIQUE INDEX leads_by_record_hash ON leads(workspace_id, record_hash)
            WHERE record_hash IS NOT NULL""",
    ],
)


# m010: offline sync with a remote workspace, both sides of it.
#
# Serving side: every thread and message carries `change_seq`, taken from one counter in
# the same write transaction as the change (triggers), and deletions leave a tombstone
# numbered from the same counter. Writers are serialised (`BEGIN IMMEDIATE`), so the
# numbers follow commit order and a reader never sees number n+1 without n: a client
# that remembers the last number it saw misses nothing and needs no clock (a timestamp
# cursor can tie, or go backwards with the wall clock, and lose a change). Rows from
# before this migration have 0 and are ordered by `num`. Message deletions cascaded from
# a thread deletion leave no tombstone of their own (the thread's covers them).
#
# Client side: `sync_state` remembers, per mirrored remote workspace, the feed positions
# and the last outcome; `outbox` holds what the user did offline on remote threads, in
# order, each with the `Idempotency-Key` it will be replayed with, so a replay after a
# crash or a lost answer is recognised by the server instead of applied twice.
_migration(
    "m010_create_sync_tracking_and_outbox",
    [
        """CREATE TABLE change_counter (
            id INTEGER PRIMARY KEY CHECK (id = 1),
            seq INTEGER NOT NULL
        )""",
        "INSERT INTO change_counter (id, seq) VALUES (1, 0)",
        "ALTER TABLE threads ADD COLUMN change_seq INTEGER NOT NULL DEFAULT 0",
        "ALTER TABLE messages ADD COLUMN change_seq INTEGER NOT NULL DEFAULT 0",
        """CREATE INDEX threads_by_change
            ON threads(workspace_id, user_id, change_seq, num)""",
        """CREATE INDEX messages_by_change
            ON messages(workspace_id, user_id, change_seq, num)""",
        """CREATE TABLE tombstones (
            seq INTEGER PRIMARY KEY,
            workspace_id TEXT NOT NULL,
            user_id TEXT NOT NULL,
            kind TEXT NOT NULL CHECK (kind IN ('thread', 'message')),
            id TEXT NOT NULL,
            thread_id TEXT NOT NULL,
            deleted_at TEXT NOT NULL
        )""",
        """CREATE INDEX tombstones_by_scope
            ON tombstones(workspace_id, user_id, kind, seq)""",
        """CREATE TRIGGER threads_change_insert AFTER INSERT ON threads BEGIN
            UPDATE change_counter SET seq = seq + 1 WHERE id = 1;
            UPDATE threads SET change_seq = (SELECT seq FROM change_counter WHERE id = 1)
                WHERE num = new.num;
        END""",
        """CREATE TRIGGER threads_change_update AFTER UPDATE ON threads
            WHEN new.change_seq IS old.change_seq BEGIN
            UPDATE change_counter SET seq = seq + 1 WHERE id = 1;
            UPDATE threads SET change_seq = (SELECT seq FROM change_counter WHERE id = 1)
                WHERE num = new.num;
        END""",
        """CREATE TRIGGER threads_change_delete AFTER DELETE ON threads BEGIN
            UPDATE change_counter SET seq = seq + 1 WHERE id = 1;
            INSERT INTO tombstones
                (seq, workspace_id, user_id, kind, id, thread_id, deleted_at)
            VALUES ((SELECT seq FROM change_counter WHERE id = 1), old.workspace_id,
                old.user_id, 'thread', old.id, old.id,
                strftime('%Y-%m-%dT%H:%M:%fZ', 'now'));
        END""",
        """CREATE TRIGGER messages_change_insert AFTER INSERT ON messages BEGIN
            UPDATE change_counter SET seq = seq + 1 WHERE id = 1;
            UPDATE messages SET change_seq = (SELECT seq FROM change_counter WHERE id = 1)
                WHERE num = new.num;
        END""",
        """CREATE TRIGGER messages_change_update AFTER UPDATE ON messages
            WHEN new.change_seq IS old.change_seq BEGIN
            UPDATE change_counter SET seq = seq + 1 WHERE id = 1;
            UPDATE messages SET change_seq = (SELECT seq FROM change_counter WHERE id = 1)
                WHERE num = new.num;
        END""",
        """CREATE TRIGGER messages_change_delete AFTER DELETE ON messages
            WHEN EXISTS (SELECT 1 FROM threads
                WHERE workspace_id = old.workspace_id AND id = old.thread_id) BEGIN
            UPDATE change_counter SET seq = seq + 1 WHERE id = 1;
            INSERT INTO tombstones
                (seq, workspace_id, user_id, kind, id, thread_id, deleted_at)
            VALUES ((SELECT seq FROM change_counter WHERE id = 1), old.workspace_id,
                old.user_id, 'message', old.id, old.thread_id,
                strftime('%Y-%m-%dT%H:%M:%fZ', 'now'));
        END""",
        """CREATE TABLE sync_state (
            workspace_id TEXT NOT NULL,
            user_id TEXT NOT NULL,
            remote_base TEXT NOT NULL,
            remote_workspace_id TEXT NOT NULL,
            remote_user_id TEXT NOT NULL,
            threads_cursor TEXT,
            messages_cursor TEXT,
            last_sync_at TEXT,
            last_attempt_at TEXT,
            last_error TEXT,
            PRIMARY KEY (workspace_id, user_id)
        )""",
        """CREATE TABLE outbox (
            num INTEGER PRIMARY KEY,
            workspace_id TEXT NOT NULL,
            user_id TEXT NOT NULL,
            id TEXT NOT NULL,
            kind TEXT NOT NULL
                CHECK (kind IN ('create', 'send', 'update', 'delete')),
            thread_id TEXT NOT NULL,
            payload TEXT NOT NULL DEFAULT '{}',
            idempotency_key TEXT NOT NULL,
            status TEXT NOT NULL DEFAULT 'pending'
                CHECK (status IN ('pending', 'done', 'superseded', 'failed')),
            attempts INTEGER NOT NULL DEFAULT 0,
            next_attempt_at TEXT,
            last_error TEXT,
            result TEXT,
            created_at TEXT NOT NULL,
            done_at TEXT,
            UNIQUE (workspace_id, id)
        )""",
        "CREATE INDEX outbox_by_status ON outbox(workspace_id, user_id, status, num)",
    ],
)


def pending_migrations(db: sqlite_utils.Database) -> list[str]:
    """Names of the migrations not yet applied (a read-only query)."""
    return [m.name for m in MIGRATIONS.pending(db)]


def applied_migrations(db: sqlite_utils.Database) -> list[str]:
    """Names of the applied migrations, in the order they were applied."""
    return [m.name for m in MIGRATIONS.applied(db)]


def apply_migrations(db: sqlite_utils.Database) -> list[str]:
    """Apply every pending migration, each in its own `BEGIN IMMEDIATE` transaction.

    Args:
        db: A connection with `isolation_level=None` and no open transaction.

    Returns:
        The names of the migrations this call applied (empty when another process
        got there first).
    """
    if not MIGRATIONS.pending(db):
        return []
    conn = db.conn
    done: list[str] = []
    while True:
        conn.execute("BEGIN IMMEDIATE")
        try:
            # Re-read inside the write lock: another process may have applied some.
            pending = MIGRATIONS.pending(db)
            if not pending:
                conn.execute("COMMIT")
                return done
            # `apply` nests its own transaction as a SAVEPOINT inside ours; stopping
            # before the second pending one applies exactly one migration per lock.
            stop = pending[1].name if len(pending) > 1 else None
            MIGRATIONS.apply(db, stop_before=stop)
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        done.append(pending[0].name)
