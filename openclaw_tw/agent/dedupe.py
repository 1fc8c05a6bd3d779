"""Idempotency (§9): remembers requests by key for 5 minutes (at most 1000 entries).

An entry is either in flight (the run is active) or settled with the stored terminal outcome,
which a duplicate request gets replayed.  Entries of active runs are never evicted.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

import attrs
from twisted.internet.interfaces import IReactorTime

TTL_S = 300.0
MAX_ENTRIES = 1000


@attrs.define
class DedupeEntry:
    ts: float
    active: bool = True
    ok: bool = True
    payload: Any = None
    error: dict[str, Any] | None = None


class DedupeCache:
    def __init__(self, clock: IReactorTime) -> None:
        self._clock = clock
        self._entries: OrderedDict[str, DedupeEntry] = OrderedDict()

    def get(self, key: str) -> DedupeEntry | None:
        self._sweep()
        return self._entries.get(key)

    def start(self, key: str) -> DedupeEntry:
        entry = DedupeEntry(self._clock.seconds())
        self._entries[key] = entry
        self._entries.move_to_end(key)
        self._sweep()
        return entry

    def settle(self, key: str, ok: bool, payload: Any, error: dict[str, Any] | None = None
               ) -> None:
        entry = self._entries.get(key)
        if entry is None:
            entry = self._entries[key] = DedupeEntry(self._clock.seconds())
        entry.active, entry.ok, entry.payload, entry.error = False, ok, payload, error
        entry.ts = self._clock.seconds()

    def _sweep(self) -> None:
        cutoff = self._clock.seconds() - TTL_S
        for key in [k for k, e in self._entries.items() if not e.active and e.ts < cutoff]:
            del self._entries[key]
        if len(self._entries) > MAX_ENTRIES:
            for key in [k for k, e in self._entries.items() if not e.active]:
                del self._entries[key]
                if len(self._entries) <= MAX_ENTRIES:
                    break

    def __len__(self) -> int:
        return len(self._entries)
