"""The session group catalog: the named groups the Control UI's sidebar shows, in order.

A session belongs to a group through its ``category`` (set by ``sessions.patch``/``create``);
the catalog keeps the groups themselves (a name and a position, so an empty group survives and
the order is the operator's) and the sidebar's section order, as the real gateway does
(``src/gateway/session-groups.ts``, ``session-group-catalog.kernel.ts``):

* ``put`` replaces the ordered list (positions 0..n-1) and, when given, the section order; it
  refuses to drop a group that still has member sessions.
* a category no group holds yet is registered at the end (the real gateway does it when the
  patch lands; we do it when the catalog is next read or changed, before answering).
* ``rename`` moves every member session to the new name (which takes the old one's position
  unless it exists already: then the groups merge); ``delete`` clears the members' category.
  Neither bumps the members' ``updatedAt``.  Positions are never renumbered by them.

Rows live in the sessions database (tables of migration 4 in ``sessions/schema.py``), mirrored
in memory (a few rows).  The member sessions are read from the store by ``absorb``, which every
catalog method runs first (the rows with a category, through an index); ``members`` and
``put`` then use what it read.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from typing import Any

import attrs
from twisted.internet.defer import Deferred, succeed

from openclaw_tw.db import Database
from openclaw_tw.sessions.store import ROW_UPSERT, SessionRow, SessionStore

SECTION_ORDER = "sidebar.sectionOrder"
FIXED_SECTIONS = ("ungrouped", "groups", "work")


class UnknownGroup(ValueError):
    def __init__(self, name: str) -> None:
        super().__init__(f"unknown session group: {name}")


class GroupNotEmpty(ValueError):
    def __init__(self, groups: list[tuple[str, int]]) -> None:
        listed = ", ".join(f'"{name}" ({count})' for name, count in groups)
        super().__init__(
            f"sessions.groups.put cannot drop groups that still have member sessions: "
            f"{listed}; include them in names or remove them via sessions.groups.delete")


@attrs.define
class Group:
    name: str
    position: int
    created_at: int


def clean_names(names: list[str]) -> list[str]:
    """Trimmed, non-empty, first occurrence kept."""
    out: list[str] = []
    for raw in names:
        name = raw.strip()
        if name and name not in out:
            out.append(name)
    return out


def clean_section_order(order: list[str], names: list[str]) -> list[str]:
    """The real gateway's normalization: fixed sections, ``category:<known group>``,
    ``catalog:<id>``; anything else and duplicates dropped."""
    out: list[str] = []
    for raw in order:
        section = raw.strip()
        canonical = None
        if section in FIXED_SECTIONS:
            canonical = section
        elif section.startswith("category:"):
            name = section[len("category:"):].strip()
            if name and name in names:
                canonical = f"category:{name}"
        elif section.startswith("catalog:"):
            catalog = section[len("catalog:"):].strip()
            if catalog:
                canonical = f"catalog:{catalog}"
        if canonical and canonical not in out:
            out.append(canonical)
    return out


class SessionGroups:
    def __init__(self, db: Database, store: SessionStore, now_ms: Callable[[], int]) -> None:
        self.db = db
        self.store = store
        self.now_ms = now_ms
        self.groups: dict[str, Group] = {}
        self.section_order: list[str] = []
        self._categorized: list[SessionRow] = []  # the rows with a category, read by absorb

    def load(self) -> None:
        def read(conn: sqlite3.Connection) -> tuple[list[Any], Any]:
            rows = conn.execute("SELECT name, position, created_at FROM session_groups").fetchall()
            order = conn.execute("SELECT value FROM session_ui_state WHERE key=?",
                                 (SECTION_ORDER,)).fetchone()
            return rows, order

        rows, order = self.db.run_now(read)
        self.groups = {name: Group(name, position, created) for name, position, created in rows}
        self.section_order = json.loads(order[0]) if order else []

    # -- reading -------------------------------------------------------------------------------

    def ordered(self) -> list[Group]:
        return sorted(self.groups.values(), key=lambda g: (g.position, g.name))

    def listing(self) -> dict[str, Any]:
        return {"groups": [{"name": g.name, "position": g.position} for g in self.ordered()],
                "sectionOrder": list(self.section_order)}

    def members(self, name: str) -> list[SessionRow]:
        """The sessions of group ``name``, among those the last ``absorb`` read."""
        return [r for r in self._categorized if _category(r) == name]

    # -- changing ------------------------------------------------------------------------------

    def absorb(self) -> Deferred[bool]:
        """Register the categories sessions carry that no group holds yet (at the end, in
        the order the sessions were created); fires with whether any was added."""
        return self.store.categorized().addCallback(self._absorb)

    def _absorb(self, rows: list[SessionRow]) -> Deferred[bool]:
        self._categorized = rows = sorted(rows, key=lambda r: r.created_at)
        added: list[Group] = []
        for row in rows:
            name = _category(row)
            if name and name not in self.groups:
                position = max((g.position for g in self.groups.values()), default=-1) + 1
                group = Group(name, position, self.now_ms())
                self.groups[name] = group
                added.append(group)
        if not added:
            return succeed(False)
        values = [(g.name, g.position, g.created_at) for g in added]
        return self.db.run(lambda conn: _insert(conn, values)).addCallback(lambda _: True)

    def put(self, names: list[str], section_order: list[str] | None) -> Deferred[None]:
        names = clean_names(names)
        dropped = [g.name for g in self.ordered() if g.name not in names]
        busy = [(name, len(self.members(name))) for name in dropped if self.members(name)]
        if busy:
            raise GroupNotEmpty(busy)
        now = self.now_ms()
        self.groups = {name: Group(name, i, self.groups[name].created_at
                                   if name in self.groups else now)
                       for i, name in enumerate(names)}
        if section_order is not None:
            self.section_order = clean_section_order(section_order, names)
        values = [(g.name, g.position, g.created_at) for g in self.groups.values()]
        order = json.dumps(self.section_order) if section_order is not None else None

        def write(conn: sqlite3.Connection) -> None:
            conn.execute("DELETE FROM session_groups")
            _insert(conn, values)
            if order is not None:
                _save_order(conn, order)

        return self.db.run(write)

    def rename(self, name: str, to: str) -> Deferred[int]:
        """Move the members of ``name`` to ``to``; fires with how many sessions moved."""
        name, to = name.strip(), to.strip()
        if name == to:
            return succeed(0)
        source = self.groups.get(name)
        if source is None:
            raise UnknownGroup(name)
        if to not in self.groups:
            self.groups[to] = Group(to, source.position, source.created_at)
        return self._retire(name, to)

    def delete(self, name: str) -> Deferred[int]:
        """Remove a group and clear its members' category; fires with how many changed."""
        return self._retire(name.strip(), None)

    def _retire(self, name: str, to: str | None) -> Deferred[int]:
        moved = self.members(name)
        for row in moved:
            if to is None:
                row.overrides.pop("category", None)
            else:
                row.overrides["category"] = to
        self.groups.pop(name, None)
        before, after = f"category:{name}", None if to is None else f"category:{to}"
        if before in self.section_order:
            if after is None or after in self.section_order:
                self.section_order = [s for s in self.section_order if s != before]
            else:
                self.section_order = [after if s == before else s for s in self.section_order]
        target = self.groups.get(to) if to is not None else None
        rows = [r.as_tuple() for r in moved]
        order = json.dumps(self.section_order)

        def write(conn: sqlite3.Connection) -> int:
            if target is not None:
                _insert(conn, [(target.name, target.position, target.created_at)])
            conn.execute("DELETE FROM session_groups WHERE name=?", (name,))
            _save_order(conn, order)
            for values in rows:
                conn.execute(ROW_UPSERT, values)
            return len(rows)

        return self.db.run(write)


def _category(row: SessionRow) -> str | None:
    value = row.overrides.get("category")
    return value.strip() or None if isinstance(value, str) else None


def _insert(conn: sqlite3.Connection, values: list[tuple[str, int, int]]) -> None:
    conn.executemany("INSERT OR IGNORE INTO session_groups (name, position, created_at) "
                     "VALUES (?, ?, ?)", values)


def _save_order(conn: sqlite3.Connection, order: str) -> None:
    conn.execute("INSERT OR REPLACE INTO session_ui_state (key, value) VALUES (?, ?)",
                 (SECTION_ORDER, order))
