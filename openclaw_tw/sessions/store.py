"""Session rows and append-only transcripts in SQLite.

Rows live in the database, not in memory: the store keeps a bounded cache of them (and every
row still in use, ``rowcache.py``), reads the others through the database thread, and pages
``sessions.list`` with indexes (``listing.py``), so memory and start-up do not grow with the
sessions stored.  Every mutator returns a Deferred that fires after its transaction commits:
callers report an entry (ack, event, response) only after that, so an acknowledged turn
survives a crash.  At start-up, runs that were in progress when the process died (the
``open_runs`` table and rows left ``running``) are marked interrupted, with a visible
transcript entry; nothing else is read then but the row count and the five newest rows.
"""

from __future__ import annotations

import json
import sqlite3
import uuid
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from twisted.internet.defer import Deferred, succeed
from twisted.logger import Logger

from openclaw_tw.db import Database
from openclaw_tw.protocol.limits import SESSION_ROW_CACHE
from openclaw_tw.sessions import listing
from openclaw_tw.sessions.keys import agent_of
from openclaw_tw.sessions.listing import ListQuery
from openclaw_tw.sessions.records import (  # noqa: F401 - the rest import them from here
    OVERRIDE_FIELDS,
    ROW_UPSERT,
    TRANSCRIPT_INSERT,
    Entry,
    SessionRow,
    body_of,
    entry_of,
    row_of,
)
from openclaw_tw.sessions.rowcache import RowCache
from openclaw_tw.sessions.schema import MIGRATIONS  # noqa: F401 - app.py reads it here

_log = Logger(namespace="sessions/store")
T = TypeVar("T")
RECENT = 5  # the newest rows the health snapshot and ``status`` show
INTERRUPTED = "interrupted: the gateway stopped during this run"

def _upsert(conn: sqlite3.Connection, values: tuple[Any, ...]) -> bool:
    """Write one row; whether it is new."""
    new = conn.execute("SELECT 1 FROM sessions WHERE key=?", (values[0],)).fetchone() is None
    conn.execute(ROW_UPSERT, values)
    return new


def _recent(conn: sqlite3.Connection) -> list[tuple[str, int]]:
    """The newest rows by ``updated_at``: the top of each (archived, pinned) index range."""
    found: list[tuple[str, int]] = []
    for archived in (0, 1):
        for pinned in (1, 0):
            found += conn.execute(
                "SELECT key, updated_at FROM sessions WHERE archived=? AND pinned=? "
                "ORDER BY pinned DESC, updated_at DESC LIMIT ?", (archived, pinned, RECENT))
    return sorted(found, key=lambda kv: kv[1], reverse=True)[:RECENT]


class SessionStore:
    def __init__(self, db: Database, now_ms: Callable[[], int],
                 cache_size: int = SESSION_ROW_CACHE) -> None:
        self.db = db
        self.now_ms = now_ms
        self.cache = RowCache(cache_size)
        self.count = 0  # rows stored
        self.recent: list[tuple[str, int]] = []  # (key, updated_at) of the newest rows
        self.interrupted_at_start: list[str] = []
        # Called with (row, entry) once an appended entry is committed (``session.message``).
        self.appended: list[Callable[[SessionRow, Entry], None]] = []
        # Keys whose delete is not committed yet: a read that raced it finds no row.
        self._deleting: dict[str, int] = {}

    # -- start-up ------------------------------------------------------------------------------

    def load(self) -> None:
        """Mark runs a dead process left open as interrupted; read the count and newest rows."""

        def read(conn: sqlite3.Connection) -> tuple[list[str], int, list[tuple[str, int]]]:
            now = self.now_ms()
            marked: list[str] = []
            for key, session_id, run_id in conn.execute(
                    "SELECT session_key, session_id, run_id FROM open_runs ORDER BY seq"
                    ).fetchall():
                body = {"role": "custom", "customType": "run-interrupted", "display": True,
                        "content": "This turn was interrupted when the gateway stopped; "
                                   "it has no reply.", "timestamp": now}
                conn.execute(TRANSCRIPT_INSERT, (key, session_id, str(uuid.uuid4()), "custom",
                                                 json.dumps(body), run_id, None, now))
                if key not in marked and conn.execute(
                        "SELECT 1 FROM sessions WHERE key=?", (key,)).fetchone():
                    marked.append(key)
            conn.execute("DELETE FROM open_runs")
            for (key,) in conn.execute(
                    "SELECT key FROM sessions WHERE status='running'").fetchall():
                if key not in marked:
                    marked.append(key)
            conn.executemany("UPDATE sessions SET status='interrupted', ended_at=?, "
                             "last_run_error=? WHERE key=?",
                             [(now, INTERRUPTED, key) for key in marked])
            count = conn.execute("SELECT COALESCE(SUM(n), 0) FROM session_counts").fetchone()[0]
            return marked, int(count), _recent(conn)

        self.interrupted_at_start, self.count, self.recent = self.db.run_now(read)

    # -- rows ----------------------------------------------------------------------------------

    def cached(self, key: str) -> SessionRow | None:
        """The row of ``key`` if it is in memory (no disk read)."""
        return self.cache.get(key)

    def get(self, key: str) -> Deferred[SessionRow | None]:
        row = self.cache.get(key)
        if row is not None:
            return succeed(row)
        pending = self._deleting.get(key)
        if pending is not None:
            return succeed(None)
        return self.db.run(lambda conn: conn.execute(
            "SELECT * FROM sessions WHERE key=?", (key,)).fetchone()).addCallback(
            self._loaded, key)

    def _loaded(self, found: tuple[Any, ...] | None, key: str) -> SessionRow | None:
        row = self.cache.get(key)  # created or read meanwhile: that one is current
        if row is not None or found is None or key in self._deleting:
            return row
        row = row_of(found)
        self.cache.put(row)
        return row

    def get_many(self, keys: Iterable[str]) -> Deferred[dict[str, SessionRow]]:
        """The rows of those ``keys`` that exist."""
        keys = list(dict.fromkeys(keys))
        out = {k: r for k in keys if (r := self.cache.get(k)) is not None}
        missing = [k for k in keys if k not in out and k not in self._deleting]
        if not missing:
            return succeed(out)

        def read(conn: sqlite3.Connection) -> list[tuple[Any, ...]]:
            found: list[tuple[Any, ...]] = []
            for i in range(0, len(missing), 500):  # within SQLite's bound on parameters
                chunk = missing[i:i + 500]
                found += conn.execute("SELECT * FROM sessions WHERE key IN (" + ",".join(
                    "?" * len(chunk)) + ")", chunk).fetchall()
            return found

        def adopt(found: list[tuple[Any, ...]]) -> dict[str, SessionRow]:
            for r in found:
                row = self._loaded(r, r[0])
                if row is not None:
                    out[row.key] = row
            return {k: out[k] for k in keys if k in out}

        return self.db.run(read).addCallback(adopt)

    def ensure(self, key: str, created_via: str = "chat") -> Deferred[SessionRow]:
        """The row for ``key``, created in memory if new (persisted by the next write)."""
        return self.get(key).addCallback(self._ensured, key, created_via)

    def _ensured(self, row: SessionRow | None, key: str, created_via: str) -> SessionRow:
        row = row or self.cache.get(key)
        if row is None:
            now = self.now_ms()
            row = SessionRow(key, agent_of(key), str(uuid.uuid4()), now, now,
                             created_via=created_via)
            self.cache.put(row)
        return row

    def save(self, row: SessionRow) -> Deferred[None]:
        self.cache.put(row)
        values = row.as_tuple()
        return self.db.run(lambda conn: _upsert(conn, values)).addCallback(
            self._written, row)

    def _written(self, new: bool, row: SessionRow) -> None:
        self.count += new
        if self.recent and len(self.recent) >= RECENT and row.updated_at < self.recent[-1][1] \
                and all(k != row.key for k, _ in self.recent):
            return
        recent = [(k, t) for k, t in self.recent if k != row.key] + [(row.key, row.updated_at)]
        self.recent = sorted(recent, key=lambda kv: kv[1], reverse=True)[:RECENT]

    def prune_earlier(self, row: SessionRow, before_ms: int) -> Deferred[int]:
        """Drop the transcripts of the row's earlier sessions (not its current one) written
        before ``before_ms``: how many entries went."""
        return self.db.run(lambda conn: conn.execute(
            "DELETE FROM transcript WHERE session_key=? AND session_id != ? AND ts < ?",
            (row.key, row.session_id, before_ms)).rowcount)

    def delete(self, key: str) -> Deferred[bool]:
        self.cache.pop(key)
        self._deleting[key] = self._deleting.get(key, 0) + 1

        def write(conn: sqlite3.Connection) -> tuple[bool, list[tuple[str, int]]]:
            conn.execute("DELETE FROM transcript WHERE session_key=?", (key,))
            conn.execute("DELETE FROM open_runs WHERE session_key=?", (key,))
            existed = conn.execute("DELETE FROM sessions WHERE key=?", (key,)).rowcount > 0
            return existed, _recent(conn) if existed else []

        def done(result: tuple[bool, list[tuple[str, int]]]) -> bool:
            existed, recent = result
            if existed:
                self.count -= 1
                self.recent = recent
            return existed

        def settled(result: Any) -> Any:
            left = self._deleting.pop(key, 1) - 1
            if left:
                self._deleting[key] = left
            return result

        return self.db.run(write).addCallback(done).addBoth(settled)

    # -- listings ------------------------------------------------------------------------------

    def page(self, query: ListQuery) -> Deferred[tuple[list[SessionRow], int]]:
        """One ``sessions.list`` page and the total matching; rows in use are the live ones."""

        def read(conn: sqlite3.Connection) -> tuple[list[tuple[Any, ...]], int]:
            return listing.page(conn, query), listing.total(conn, query)

        return self.db.run(read).addCallback(self._presentable)

    def _presentable(self, found: tuple[list[tuple[Any, ...]], int]
                     ) -> tuple[list[SessionRow], int]:
        rows, total = found
        return [self.cache.get(r[0]) or row_of(r) for r in rows], total

    def find(self, session_id: str | None = None, label: str | None = None,
             limit: int = 100) -> Deferred[list[SessionRow]]:
        """Rows with this session id (or else this label), at most ``limit``."""
        column, value = ("session_id", session_id) if session_id else ("label", label)

        def read(conn: sqlite3.Connection) -> list[tuple[Any, ...]]:
            return conn.execute(f"SELECT * FROM sessions WHERE {column}=? ORDER BY rowid "
                                "LIMIT ?", (value, limit)).fetchall()

        return self.db.run(read).addCallback(
            lambda found: [self._loaded(r, r[0]) or row_of(r) for r in found])

    def label_taken(self, agent_id: str, label: str, key: str) -> Deferred[bool]:
        """Whether another session of ``agent_id`` than ``key`` has this label."""

        def read(conn: sqlite3.Connection) -> bool:
            return conn.execute("SELECT 1 FROM sessions WHERE label=? AND agent_id=? AND key<>? "
                                "LIMIT 1", (label, agent_id, key)).fetchone() is not None

        return self.db.run(read)

    def categorized(self) -> Deferred[list[SessionRow]]:
        """Every row with a category (the session groups' members), oldest first."""

        def read(conn: sqlite3.Connection) -> list[tuple[Any, ...]]:
            return conn.execute("SELECT * FROM sessions WHERE json_extract(overrides, "
                                "'$.category') IS NOT NULL ORDER BY created_at, rowid"
                                ).fetchall()

        return self.db.run(read).addCallback(
            lambda found: [row for r in found if (row := self._loaded(r, r[0])) is not None])

    # -- transcripts ---------------------------------------------------------------------------

    def append(self, row: SessionRow, role: str, body: dict[str, Any], run_id: str | None = None,
               idempotency_key: str | None = None) -> Deferred[Entry]:
        """Append one entry and save the row in the same transaction."""
        entry_id = str(uuid.uuid4())
        ts = int(body.get("timestamp") or self.now_ms())
        self.cache.put(row)
        values = row.as_tuple()
        session_id = row.session_id

        def write(conn: sqlite3.Connection) -> tuple[Entry, bool]:
            cur = conn.execute(
                TRANSCRIPT_INSERT, (row.key, session_id, entry_id, role, json.dumps(body), run_id,
                 idempotency_key, ts))
            seq = int(cur.lastrowid or 0)
            if run_id is not None and role == "user":  # acknowledged, not yet answered
                conn.execute("INSERT OR REPLACE INTO open_runs VALUES (?,?,?,?)",
                             (run_id, row.key, session_id, seq))
            elif run_id is not None:
                conn.execute("DELETE FROM open_runs WHERE run_id=?", (run_id,))
            new = _upsert(conn, values)
            return Entry(seq, row.key, session_id, entry_id, role, body, run_id,
                         idempotency_key, ts), new

        return self.db.run(write).addCallback(self._committed, row)

    def _committed(self, written: tuple[Entry, bool], row: SessionRow) -> Entry:
        entry, new = written
        self._written(new, row)
        for listener in list(self.appended):
            try:
                listener(row, entry)
            except Exception:  # a listener must not undo the commit its caller waits for
                _log.failure("append listener failed for {key}", key=row.key)
        return entry

    def history(self, key: str, limit: int, before_seq: int | None = None,
                session_id: str | None = None) -> Deferred[list[Entry]]:
        """The newest ``limit`` entries (older than ``before_seq``), oldest first.  Numbers a
        client sent are clamped to what SQLite's integers hold."""
        limit = min(limit, listing.SQL_INT)
        if before_seq is not None:
            before_seq = max(min(before_seq, listing.SQL_INT), -listing.SQL_INT)

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
            return [entry_of(r) for r in reversed(rows)]

        return self.db.run(read)

    def last_entries(self, keys: list[str], per_key: int) -> Deferred[dict[str, list[Entry]]]:
        def read(conn: sqlite3.Connection) -> dict[str, list[Entry]]:
            out: dict[str, list[Entry]] = {}
            for key in keys:
                rows = conn.execute("SELECT * FROM transcript WHERE session_key=? ORDER BY seq "
                                    "DESC LIMIT ?", (key, per_key)).fetchall()
                out[key] = [entry_of(r) for r in reversed(rows)]
            return out

        return self.db.run(read)

    def newest(self, keys: list[str], within: int, roles: tuple[str, ...],
               pick: Callable[[dict[str, Any]], T | None]) -> Deferred[dict[str, T]]:
        """Per key, the first ``pick(body)`` that is not None among the newest ``within``
        entries, newest first, of those ``roles`` (a ``sessions.list`` page's last messages:
        one transaction, and only the bodies looked at are decoded)."""

        def read(conn: sqlite3.Connection) -> dict[str, T]:
            out: dict[str, T] = {}
            for key in keys:
                for role, body in conn.execute("SELECT role, body FROM transcript WHERE "
                                               "session_key=? ORDER BY seq DESC LIMIT ?",
                                               (key, within)).fetchall():
                    if role in roles and (found := pick(body_of(body))) is not None:
                        out[key] = found
                        break
            return out

        return self.db.run(read)

    def compact(self, row: SessionRow, keep: int, summary: dict[str, Any]
                ) -> Deferred[tuple[int, int]]:
        """Keep the last ``keep`` entries plus one summary entry; returns the entries removed
        and the entries kept (the summary not counted)."""
        key, values = row.key, row.as_tuple()

        def write(conn: sqlite3.Connection) -> tuple[int, int]:
            ids = [r[0] for r in conn.execute(
                "SELECT seq FROM transcript WHERE session_key=? ORDER BY seq DESC", (key,))]
            drop = ids[keep:]
            if not drop:
                return 0, len(ids)
            conn.executemany("DELETE FROM transcript WHERE seq=?", [(i,) for i in drop])
            conn.execute("INSERT INTO transcript (seq, session_key, session_id, entry_id, role,"
                         " body, run_id, idempotency_key, ts) VALUES (?,?,?,?,?,?,?,?,?)",
                         (min(drop), key, row.session_id, str(uuid.uuid4()),
                          "custom", json.dumps(summary), None, None, self.now_ms()))
            conn.execute(ROW_UPSERT, values)
            return len(drop), keep

        return self.db.run(write)

    def run_entries(self, run_id: str) -> Deferred[list[Entry]]:
        """Every entry of one turn (its user entry, reply, markers), oldest first."""

        def read(conn: sqlite3.Connection) -> list[Entry]:
            rows = conn.execute("SELECT * FROM transcript WHERE run_id=? ORDER BY seq",
                                (run_id,)).fetchall()
            return [entry_of(r) for r in rows]

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
