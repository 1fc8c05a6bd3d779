"""The session rows kept in memory: a bounded LRU plus every row still in use.

Rows live in SQLite; the store keeps the most recently used ones (``SESSION_ROW_CACHE``) and,
through weak references, any row something still holds (a running turn, a handler between its
read and its write).  So one key has one row object while anybody uses it: a turn's status
changes and a concurrent ``sessions.patch`` mutate and save the same object, as they did when
every row was in memory.  Memory stays bounded by the cache plus the rows in use.
"""

from __future__ import annotations

import weakref
from collections import OrderedDict
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from openclaw_tw.sessions.store import SessionRow


class RowCache:
    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._recent: OrderedDict[str, SessionRow] = OrderedDict()
        self._live: weakref.WeakValueDictionary[str, SessionRow] = \
            weakref.WeakValueDictionary()

    def __len__(self) -> int:
        return len(self._recent)

    def get(self, key: str) -> SessionRow | None:
        row = self._recent.get(key)
        if row is not None:
            self._recent.move_to_end(key)
            return row
        row = self._live.get(key)
        if row is not None:
            self.put(row)
        return row

    def put(self, row: SessionRow) -> None:
        self._recent[row.key] = row
        self._recent.move_to_end(row.key)
        self._live[row.key] = row
        while len(self._recent) > self.capacity:
            self._recent.popitem(last=False)

    def pop(self, key: str) -> SessionRow | None:
        row = self._recent.pop(key, None)
        live = self._live.pop(key, None)
        return row if row is not None else live
