"""``sessions.list`` as SQL: one page of rows and the total, read where the rows live.

The page walks the index of its order (pinned first, then ``updatedAt`` or
``lastInteractionAt`` newest first, creation order on ties; under the agent id for an
``agentId`` filter) and stops after ``offset + limit`` rows, so its cost follows the page
asked for, not the sessions stored; ``archived: "all"`` merges the two archived states' walks.
The total comes from ``session_counts`` (kept by triggers) when only the agent and the
archived state filter, from the label index for a label, a search from the trigram index
(``sessions_search``; needles of three characters or more), and otherwise from counting the
matching rows.  Runs on the database thread.
"""

from __future__ import annotations

import sqlite3
from typing import Any

import attrs

HIDDEN_KEYS = ("global", "unknown")
SQL_INT = 2**62  # any client-sent number is clamped to what SQLite's integers hold
PINNED, UPDATED_AT, LAST_INTERACTION_AT = 15, 4, 5  # column positions of ``sessions``


@attrs.frozen
class ListQuery:
    archived: bool | None = False  # None: archived and not
    agent_id: str | None = None
    label: str | None = None
    pinned: bool | None = None
    search: str | None = None  # lower-cased; a substring of the key or the label
    updated_since: int | None = None
    include_global: bool = False
    include_unknown: bool = False
    by_interaction: bool = False
    offset: int = 0
    limit: int = 100
    nothing: bool = False  # a filter nothing can match (``spawnedBy``)

    @property
    def hidden(self) -> tuple[str, ...]:
        shown = (self.include_global, self.include_unknown)
        return tuple(k for k, on in zip(HIDDEN_KEYS, shown, strict=True) if not on)


def _source(q: ListQuery) -> str:
    """What to read: a search's matches from the trigram index (then sorted), a label's rows
    through its index (a few rows, sorted after), else the order's index (SQLite's choice)."""
    if _indexed_search(q):
        return "sessions_search CROSS JOIN sessions ON sessions.rowid = sessions_search.rowid"
    return "sessions INDEXED BY sessions_by_label" if q.label is not None else "sessions"


def _indexed_search(q: ListQuery) -> bool:
    return bool(q.search) and len(q.search or "") >= 3


def _phrase(needle: str) -> str:
    return '"' + needle.replace('"', '""') + '"'


def _filters(q: ListQuery) -> tuple[str, list[Any]]:
    """The WHERE terms besides ``archived`` (each starts with AND)."""
    sql, args = "", []
    if _indexed_search(q):  # the trigram index: the matching rows only
        sql += " AND sessions_search MATCH ?"
        args.append(_phrase(q.search or ""))
    elif q.search:  # shorter than a trigram: every row is looked at
        sql += (" AND (instr(lower(sessions.key), ?) > 0"
                " OR instr(lower(COALESCE(sessions.label, '')), ?) > 0)")
        args += [q.search, q.search]
    if q.agent_id is not None:
        sql += " AND sessions.agent_id=?"
        args.append(q.agent_id)
    if q.label is not None:
        sql += " AND sessions.label=?"
        args.append(q.label)
    if q.pinned is not None:
        sql += " AND sessions.pinned=?"
        args.append(int(q.pinned))
    elif q.updated_since is not None:
        sql += " AND sessions.pinned IN (1, 0)"  # lets the range below use the order's index
    if q.updated_since is not None:
        sql += " AND sessions.updated_at>=?"
        args.append(max(q.updated_since, -SQL_INT))
    if q.hidden:
        sql += " AND sessions.key NOT IN (" + ",".join("?" * len(q.hidden)) + ")"
        args += list(q.hidden)
    return sql, args


def _states(q: ListQuery) -> list[int]:
    return [0, 1] if q.archived is None else [int(q.archived)]


def statement(q: ListQuery) -> tuple[str, list[Any]]:
    """The page's SELECT for one archived state: its parameters are the state, ``args`` and
    the number of rows wanted."""
    where, args = _filters(q)
    column = "last_interaction_at" if q.by_interaction else "updated_at"
    return (f"SELECT sessions.*, sessions.rowid FROM {_source(q)} "
            f"WHERE sessions.archived=?{where} "
            f"ORDER BY sessions.pinned DESC, sessions.{column} DESC, sessions.rowid LIMIT ?",
            args)


def page(conn: sqlite3.Connection, q: ListQuery) -> list[tuple[Any, ...]]:
    """The rows of the page (``sessions`` columns), in the listing's order."""
    if q.nothing:
        return []
    sql, args = statement(q)
    want = min(q.offset + q.limit, SQL_INT)
    rows: list[tuple[Any, ...]] = []
    for archived in _states(q):
        rows += conn.execute(sql, [archived, *args, want]).fetchall()
    if len(_states(q)) > 1:
        at = LAST_INTERACTION_AT if q.by_interaction else UPDATED_AT
        rows.sort(key=lambda r: (-r[PINNED], -r[at] if r[at] is not None else float("inf"),
                                 r[-1]))
    return [r[:-1] for r in rows[q.offset:want]]


def total(conn: sqlite3.Connection, q: ListQuery) -> int:
    """How many rows match ``q`` (``totalCount``)."""
    if q.nothing:
        return 0
    states = _states(q)
    marks = ",".join("?" * len(states))
    if q.label is None and q.pinned is None and not q.search and q.updated_since is None:
        sql, args = f"SELECT COALESCE(SUM(n), 0) FROM session_counts WHERE archived IN ({marks})", \
            list(states)
        hidden_sql, hidden_args = f" AND archived IN ({marks})", list(states)
        if q.agent_id is not None:
            sql += " AND agent_id=?"
            args.append(q.agent_id)
            hidden_sql += " AND agent_id=?"
            hidden_args.append(q.agent_id)
        count = int(conn.execute(sql, args).fetchone()[0])
        if q.hidden:
            count -= conn.execute(
                "SELECT COUNT(*) FROM sessions WHERE key IN (" + ",".join("?" * len(q.hidden))
                + ")" + hidden_sql, [*q.hidden, *hidden_args]).fetchone()[0]
        return count
    where, args = _filters(q)
    return int(sum(conn.execute(f"SELECT COUNT(*) FROM {_source(q)} "
                                f"WHERE sessions.archived=?{where}",
                                [archived, *args]).fetchone()[0] for archived in states))
