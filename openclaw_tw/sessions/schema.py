"""The sessions database's schema: the ``sessions`` owner's migrations, append-only.

Migration 5 is what lets rows live on disk alone (``store.py`` keeps a bounded cache): the
indexes ``sessions.list`` pages through in its orders, a per-(agent, archived) row count kept by
triggers (``totalCount`` without counting rows), and ``open_runs``, the acknowledged turns
nothing answered yet, so start-up finds the interrupted ones without reading the transcript.
Migration 6: ``sessions_search``, a trigram full-text index of keys and labels (external
content: the sessions table), so ``sessions.list``'s ``search`` reads the matching rows only.
Migration 7: the two orders again under the agent id, so a page filtered by ``agentId`` walks
that agent's rows only (through the order's index it stepped over every other agent's rows).
"""

from __future__ import annotations

MIGRATIONS = [
    [
        """CREATE TABLE sessions (
            key TEXT PRIMARY KEY, agent_id TEXT NOT NULL, session_id TEXT NOT NULL,
            created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL,
            last_interaction_at INTEGER, label TEXT, status TEXT, last_run_id TEXT,
            last_run_error TEXT, started_at INTEGER, ended_at INTEGER,
            input_tokens INTEGER NOT NULL DEFAULT 0, output_tokens INTEGER NOT NULL DEFAULT 0,
            archived INTEGER NOT NULL DEFAULT 0, pinned INTEGER NOT NULL DEFAULT 0,
            unread INTEGER NOT NULL DEFAULT 0, overrides TEXT NOT NULL DEFAULT '{}',
            created_via TEXT)""",
        """CREATE TABLE transcript (
            seq INTEGER PRIMARY KEY AUTOINCREMENT, session_key TEXT NOT NULL,
            session_id TEXT NOT NULL, entry_id TEXT NOT NULL UNIQUE, role TEXT NOT NULL,
            body TEXT NOT NULL, run_id TEXT, idempotency_key TEXT, ts INTEGER NOT NULL)""",
        "CREATE INDEX transcript_by_session ON transcript (session_key, seq)",
        "CREATE UNIQUE INDEX transcript_idem ON transcript (idempotency_key) "
        "WHERE idempotency_key IS NOT NULL",
    ],
    ["CREATE INDEX transcript_by_run ON transcript (run_id) WHERE run_id IS NOT NULL"],
    # 3: the row holds the last run's usage, as the real gateway's does (input/output tokens,
    # the prompt size and whether it is current, the estimated cost); the token columns may be
    # NULL (no usage reported).  Rows written before held every run's counts added up (the
    # offline model's word counts among them), which are not the last run's: they start empty.
    [
        """CREATE TABLE sessions_v3 (
            key TEXT PRIMARY KEY, agent_id TEXT NOT NULL, session_id TEXT NOT NULL,
            created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL,
            last_interaction_at INTEGER, label TEXT, status TEXT, last_run_id TEXT,
            last_run_error TEXT, started_at INTEGER, ended_at INTEGER,
            input_tokens INTEGER, output_tokens INTEGER,
            archived INTEGER NOT NULL DEFAULT 0, pinned INTEGER NOT NULL DEFAULT 0,
            unread INTEGER NOT NULL DEFAULT 0, overrides TEXT NOT NULL DEFAULT '{}',
            created_via TEXT, total_tokens INTEGER,
            total_tokens_fresh INTEGER NOT NULL DEFAULT 0, estimated_cost_usd REAL)""",
        "INSERT INTO sessions_v3 (key, agent_id, session_id, created_at, updated_at, "
        "last_interaction_at, label, status, last_run_id, last_run_error, started_at, ended_at, "
        "archived, pinned, unread, overrides, created_via) SELECT key, agent_id, session_id, "
        "created_at, updated_at, last_interaction_at, label, status, last_run_id, "
        "last_run_error, started_at, ended_at, archived, pinned, unread, overrides, created_via "
        "FROM sessions",
        "DROP TABLE sessions",
        "ALTER TABLE sessions_v3 RENAME TO sessions",
    ],
    # 4: the session group catalog (``sessions/groups.py``): the groups the sidebar shows, in
    # order, and the sidebar's section order (one JSON value).
    [
        "CREATE TABLE session_groups (name TEXT PRIMARY KEY, position INTEGER NOT NULL, "
        "created_at INTEGER NOT NULL)",
        "CREATE TABLE session_ui_state (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    ],
]

# Acknowledged turns (a user entry with a run id) that nothing else answered, as migration 5
# seeds ``open_runs`` from the transcript once; afterwards ``append`` keeps that table.
_UNANSWERED = (
    "SELECT t.run_id, t.session_key, t.session_id, t.seq FROM transcript t "
    "WHERE t.role = 'user' AND t.run_id IS NOT NULL AND NOT EXISTS "
    "(SELECT 1 FROM transcript u WHERE u.run_id = t.run_id AND u.seq > t.seq)")

MIGRATIONS.append([
    # ``sessions.list``'s two orders, pinned first; the row id (creation order: rows are
    # upserted, never replaced) breaks ties.
    "CREATE INDEX sessions_by_update ON sessions (archived, pinned DESC, updated_at DESC)",
    "CREATE INDEX sessions_by_interaction ON sessions "
    "(archived, pinned DESC, last_interaction_at DESC)",
    "CREATE INDEX sessions_by_label ON sessions (label) WHERE label IS NOT NULL",
    "CREATE INDEX sessions_by_session_id ON sessions (session_id)",
    "CREATE INDEX sessions_running ON sessions (status) WHERE status = 'running'",
    "CREATE INDEX sessions_by_category ON sessions (json_extract(overrides, '$.category')) "
    "WHERE json_extract(overrides, '$.category') IS NOT NULL",
    "CREATE TABLE session_counts (agent_id TEXT NOT NULL, archived INTEGER NOT NULL, "
    "n INTEGER NOT NULL, PRIMARY KEY (agent_id, archived)) WITHOUT ROWID",
    "INSERT INTO session_counts SELECT agent_id, archived, COUNT(*) FROM sessions "
    "GROUP BY agent_id, archived",
    """CREATE TRIGGER sessions_counted AFTER INSERT ON sessions BEGIN
        INSERT INTO session_counts VALUES (new.agent_id, new.archived, 1)
        ON CONFLICT (agent_id, archived) DO UPDATE SET n = n + 1; END""",
    """CREATE TRIGGER sessions_uncounted AFTER DELETE ON sessions BEGIN
        UPDATE session_counts SET n = n - 1
        WHERE agent_id = old.agent_id AND archived = old.archived; END""",
    """CREATE TRIGGER sessions_recounted AFTER UPDATE OF agent_id, archived ON sessions
        WHEN old.agent_id IS NOT new.agent_id OR old.archived IS NOT new.archived BEGIN
        UPDATE session_counts SET n = n - 1
        WHERE agent_id = old.agent_id AND archived = old.archived;
        INSERT INTO session_counts VALUES (new.agent_id, new.archived, 1)
        ON CONFLICT (agent_id, archived) DO UPDATE SET n = n + 1; END""",
    "CREATE TABLE open_runs (run_id TEXT PRIMARY KEY, session_key TEXT NOT NULL, "
    "session_id TEXT NOT NULL, seq INTEGER NOT NULL)",
    "INSERT OR REPLACE INTO open_runs " + _UNANSWERED,
])

MIGRATIONS.append([
    "CREATE VIRTUAL TABLE sessions_search USING fts5(key, label, content='sessions', "
    "content_rowid='rowid', tokenize='trigram')",
    "INSERT INTO sessions_search (sessions_search) VALUES ('rebuild')",
    """CREATE TRIGGER sessions_searchable AFTER INSERT ON sessions BEGIN
        INSERT INTO sessions_search (rowid, key, label) VALUES (new.rowid, new.key, new.label);
        END""",
    """CREATE TRIGGER sessions_unsearchable AFTER DELETE ON sessions BEGIN
        INSERT INTO sessions_search (sessions_search, rowid, key, label)
        VALUES ('delete', old.rowid, old.key, old.label); END""",
    # a turn's save sets every column: only a changed label touches the index
    """CREATE TRIGGER sessions_relabelled AFTER UPDATE OF label ON sessions
        WHEN old.label IS NOT new.label BEGIN
        INSERT INTO sessions_search (sessions_search, rowid, key, label)
        VALUES ('delete', old.rowid, old.key, old.label);
        INSERT INTO sessions_search (rowid, key, label) VALUES (new.rowid, new.key, new.label);
        END""",
])

MIGRATIONS.append([
    "CREATE INDEX sessions_by_agent_update ON sessions "
    "(agent_id, archived, pinned DESC, updated_at DESC)",
    "CREATE INDEX sessions_by_agent_interaction ON sessions "
    "(agent_id, archived, pinned DESC, last_interaction_at DESC)",
])
