"""Session rows and append-only transcripts in SQLite.

Session rows are mirrored in memory (loaded at start-up) so listings never wait on disk;
transcript entries are read through the database thread.  Every mutator returns a Deferred
that fires after its transaction commits: callers report an entry (ack, event, response)
only after that, so an acknowledged turn survives a crash.  At start-up, runs that were in
progress when the process died are marked interrupted, with a visible transcript entry.
"""

from __future__ import annotations

import json
import sqlite3
import uuid
from collections.abc import Callable
from typing import Any

import attrs
from twisted.internet.defer import Deferred
from twisted.logger import Logger

from openclaw_tw.db import Database
from openclaw_tw.sessions.keys import agent_of

_log = Logger(namespace="sessions/store")
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

# Acknowledged turns (a user entry with a run id) that nothing else answered: the process died
# while they were running or queued.
_UNANSWERED = (
    "SELECT t.session_key, t.session_id, t.run_id FROM transcript t "
    "WHERE t.role = 'user' AND t.run_id IS NOT NULL AND NOT EXISTS "
    "(SELECT 1 FROM transcript u WHERE u.run_id = t.run_id AND u.seq > t.seq) ORDER BY t.seq")

OVERRIDE_FIELDS = ("model", "thinkingLevel", "fastMode", "verboseLevel", "reasoningLevel",
                   "sendPolicy", "groupActivation", "category", "permissionMode")


@attrs.define
class SessionRow:
    key: str
    agent_id: str
    session_id: str
    created_at: int
    updated_at: int
    last_interaction_at: int | None = None
    label: str | None = None
    status: str | None = None
    last_run_id: str | None = None
    last_run_error: str | None = None
    started_at: int | None = None
    ended_at: int | None = None
    # The last run that reported usage: its input (prompt tokens not read from or written to
    # the cache) and output tokens, summed over its model calls; None until one did.
    input_tokens: int | None = None
    output_tokens: int | None = None
    archived: bool = False
    pinned: bool = False
    unread: bool = False
    overrides: dict[str, Any] = attrs.field(factory=dict)
    created_via: str | None = None
    # The prompt size of the last model call that reported usage (input + cache read + cache
    # write), and whether it is current: a later run that reported none makes it stale.
    total_tokens: int | None = None
    total_tokens_fresh: bool = False
    # What the last run that reported usage cost at the model's configured prices.
    estimated_cost_usd: float | None = None

    def as_tuple(self) -> tuple[Any, ...]:
        return (self.key, self.agent_id, self.session_id, self.created_at, self.updated_at,
                self.last_interaction_at, self.label, self.status, self.last_run_id,
                self.last_run_error, self.started_at, self.ended_at, self.input_tokens,
                self.output_tokens, int(self.archived), int(self.pinned), int(self.unread),
                json.dumps(self.overrides), self.created_via, self.total_tokens,
                int(self.total_tokens_fresh), self.estimated_cost_usd)


@attrs.frozen
class Entry:
    """One transcript entry as stored: ``body`` is the message object clients see."""

    seq: int
    session_key: str
    session_id: str
    entry_id: str
    role: str
    body: dict[str, Any]
    run_id: str | None
    idempotency_key: str | None
    ts: int


ROW_UPSERT = "INSERT OR REPLACE INTO sessions VALUES (" + ",".join("?" * 22) + ")"


class SessionStore:
    def __init__(self, db: Database, now_ms: Callable[[], int]) -> None:
        self.db = db
        self.now_ms = now_ms
        self.rows: dict[str, SessionRow] = {}
        self.interrupted_at_start: list[str] = []
        # Called with (row, entry) once an appended entry is committed (``session.message``).
        self.appended: list[Callable[[SessionRow, Entry], None]] = []

    # -- start-up ------------------------------------------------------------------------------

    def load(self) -> None:
        """Load rows; mark runs left 'running' by a dead process as interrupted."""

        def read(conn: sqlite3.Connection) -> list[str]:
            for r in conn.execute("SELECT * FROM sessions"):
                row = SessionRow(*r[:17], overrides=json.loads(r[17] or "{}"), created_via=r[18],
                                 total_tokens=r[19], total_tokens_fresh=bool(r[20]),
                                 estimated_cost_usd=r[21])
                row.archived, row.pinned, row.unread = (bool(row.archived), bool(row.pinned),
                                                        bool(row.unread))
                self.rows[row.key] = row
            now = self.now_ms()
            marked: list[str] = []
            for key, session_id, run_id in conn.execute(_UNANSWERED).fetchall():
                body = {"role": "custom", "customType": "run-interrupted", "display": True,
                        "content": "This turn was interrupted when the gateway stopped; "
                                   "it has no reply.", "timestamp": now}
                conn.execute("INSERT INTO transcript (session_key, session_id, entry_id, role,"
                             " body, run_id, idempotency_key, ts) VALUES (?,?,?,?,?,?,?,?)",
                             (key, session_id, str(uuid.uuid4()), "custom", json.dumps(body),
                              run_id, None, now))
                row = self.rows.get(key)
                if row is not None and key not in marked:
                    marked.append(key)
            for row in self.rows.values():
                if row.status == "running" or row.key in marked:
                    row.status, row.ended_at = "interrupted", now
                    row.last_run_error = "interrupted: the gateway stopped during this run"
                    conn.execute(ROW_UPSERT, row.as_tuple())
                    if row.key not in marked:
                        marked.append(row.key)
            return marked

        self.interrupted_at_start = self.db.run_now(read)

    # -- rows ----------------------------------------------------------------------------------

    def get(self, key: str) -> SessionRow | None:
        return self.rows.get(key)

    def ensure(self, key: str, created_via: str = "chat") -> SessionRow:
        """The row for ``key``, created in memory if new (persisted by the next write)."""
        row = self.rows.get(key)
        if row is None:
            now = self.now_ms()
            row = SessionRow(key, agent_of(key), str(uuid.uuid4()), now, now,
                             created_via=created_via)
            self.rows[key] = row
        return row

    def save(self, row: SessionRow) -> Deferred[None]:
        self.rows[row.key] = row
        values = row.as_tuple()
        return self.db.run(lambda conn: _none(conn.execute(ROW_UPSERT, values)))

    def delete(self, key: str) -> Deferred[bool]:
        existed = self.rows.pop(key, None) is not None

        def write(conn: sqlite3.Connection) -> bool:
            conn.execute("DELETE FROM transcript WHERE session_key=?", (key,))
            conn.execute("DELETE FROM sessions WHERE key=?", (key,))
            return existed

        return self.db.run(write)

    # -- transcripts ---------------------------------------------------------------------------

    def append(self, row: SessionRow, role: str, body: dict[str, Any], run_id: str | None = None,
               idempotency_key: str | None = None) -> Deferred[Entry]:
        """Append one entry and save the row in the same transaction."""
        entry_id = str(uuid.uuid4())
        ts = int(body.get("timestamp") or self.now_ms())
        values = row.as_tuple()
        session_id = row.session_id

        def write(conn: sqlite3.Connection) -> Entry:
            cur = conn.execute(
                "INSERT INTO transcript (session_key, session_id, entry_id, role, body, run_id,"
                " idempotency_key, ts) VALUES (?,?,?,?,?,?,?,?)",
                (row.key, session_id, entry_id, role, json.dumps(body), run_id,
                 idempotency_key, ts))
            conn.execute(ROW_UPSERT, values)
            return Entry(int(cur.lastrowid or 0), row.key, session_id, entry_id, role, body,
                         run_id, idempotency_key, ts)

        return self.db.run(write).addCallback(self._committed, row)

    def _committed(self, entry: Entry, row: SessionRow) -> Entry:
        for listener in list(self.appended):
            try:
                listener(row, entry)
            except Exception:  # a listener must not undo the commit its caller waits for
                _log.failure("append listener failed for {key}", key=row.key)
        return entry

    def history(self, key: str, limit: int, before_seq: int | None = None,
                session_id: str | None = None) -> Deferred[list[Entry]]:
        """The newest ``limit`` entries (older than ``before_seq``), oldest first."""

        def read(conn: sqlite3.Connection) -> list[Entry]:
            sql = "SELECT * FROM transcript WHERE session_key=?"
            args: list[Any] = [key]
            if session_id is not None:
                sql += " AND session_id=?"
                args.append(session_id)
            if before_seq is not None:
                sql += " AND seq<?"
                args.append(before_seq)
            sql += " ORDER BY seq DESC LIMIT ?"
            args.append(limit)
            rows = conn.execute(sql, args).fetchall()
            return [Entry(r[0], r[1], r[2], r[3], r[4], json.loads(r[5]), r[6], r[7], r[8])
                    for r in reversed(rows)]

        return self.db.run(read)

    def last_entries(self, keys: list[str], per_key: int) -> Deferred[dict[str, list[Entry]]]:
        def read(conn: sqlite3.Connection) -> dict[str, list[Entry]]:
            out: dict[str, list[Entry]] = {}
            for key in keys:
                rows = conn.execute("SELECT * FROM transcript WHERE session_key=? ORDER BY seq "
                                    "DESC LIMIT ?", (key, per_key)).fetchall()
                out[key] = [Entry(r[0], r[1], r[2], r[3], r[4], json.loads(r[5]), r[6], r[7],
                                  r[8]) for r in reversed(rows)]
            return out

        return self.db.run(read)

    def compact(self, key: str, keep: int, summary: dict[str, Any]) -> Deferred[int]:
        """Keep the last ``keep`` entries plus one summary entry; returns entries removed."""
        row = self.rows.get(key)
        values = row.as_tuple() if row else None

        def write(conn: sqlite3.Connection) -> int:
            ids = [r[0] for r in conn.execute(
                "SELECT seq FROM transcript WHERE session_key=? ORDER BY seq DESC", (key,))]
            drop = ids[keep:]
            if not drop:
                return 0
            conn.executemany("DELETE FROM transcript WHERE seq=?", [(i,) for i in drop])
            conn.execute("INSERT INTO transcript (seq, session_key, session_id, entry_id, role,"
                         " body, run_id, idempotency_key, ts) VALUES (?,?,?,?,?,?,?,?,?)",
                         (min(drop), key, row.session_id if row else "", str(uuid.uuid4()),
                          "custom", json.dumps(summary), None, None, self.now_ms()))
            if values is not None:
                conn.execute(ROW_UPSERT, values)
            return len(drop)

        return self.db.run(write)

    def run_entries(self, run_id: str) -> Deferred[list[Entry]]:
        """Every entry of one turn (its user entry, reply, markers), oldest first."""

        def read(conn: sqlite3.Connection) -> list[Entry]:
            rows = conn.execute("SELECT * FROM transcript WHERE run_id=? ORDER BY seq",
                                (run_id,)).fetchall()
            return [Entry(r[0], r[1], r[2], r[3], r[4], json.loads(r[5]), r[6], r[7], r[8])
                    for r in rows]

        return self.db.run(read)

    def count_entries(self, key: str, session_id: str | None = None,
                      roles: tuple[str, ...] = ()) -> Deferred[int]:
        """Entries of ``key`` (of one of its session ids, of these roles, when given)."""
        sql, args = "SELECT COUNT(*) FROM transcript WHERE session_key=?", [key]
        if session_id is not None:
            sql += " AND session_id=?"
            args.append(session_id)
        if roles:
            sql += " AND role IN (" + ",".join("?" * len(roles)) + ")"
            args.extend(roles)
        return self.db.run(lambda conn: conn.execute(sql, args).fetchone()[0])


def _none(_: Any) -> None:
    return None
