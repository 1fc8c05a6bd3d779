"""Idempotency (§9): remembers requests by key for 5 minutes (at most 1000 entries).

An entry is either in flight (the run is active) or settled with the stored terminal outcome,
which a duplicate request gets replayed.  Entries of active runs are never evicted.

Settled entries live in insertion order with one fixed TTL, so the oldest is always first:
expiry pops from the front and stops at the first live entry (O(1) amortised per call, where
a scan of every entry cost ~0.1 ms at 1,000 entries).  In-flight entries are kept apart, so
a long run never blocks the expiry of what settled after it started.
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
    fingerprint: str | None = None  # what the request carried, to tell a reuse from a retry


class DedupeCache:
    def __init__(self, clock: IReactorTime) -> None:
        self._clock = clock
        self._active: dict[str, DedupeEntry] = {}
        self._settled: OrderedDict[str, DedupeEntry] = OrderedDict()  # oldest settle first

    def get(self, key: str) -> DedupeEntry | None:
        self._sweep()
        return self._active.get(key) or self._settled.get(key)

    def start(self, key: str, fingerprint: str | None = None) -> DedupeEntry:
        self._settled.pop(key, None)
        entry = self._active[key] = DedupeEntry(self._clock.seconds(), fingerprint=fingerprint)
        self._sweep()
        return entry

    def settle(self, key: str, ok: bool, payload: Any, error: dict[str, Any] | None = None
               ) -> None:
        entry = self._active.pop(key, None) or self._settled.pop(key, None) \
            or DedupeEntry(self._clock.seconds())
        entry.active, entry.ok, entry.payload, entry.error = False, ok, payload, error
        entry.ts = self._clock.seconds()
        self._settled[key] = entry  # at the end: the newest settle
        self._sweep()

    def forget(self, key: str) -> None:
        self._active.pop(key, None)
        self._settled.pop(key, None)

    def _sweep(self) -> None:
        settled = self._settled
        cutoff = self._clock.seconds() - TTL_S
        while settled:
            key, entry = next(iter(settled.items()))
            if entry.ts >= cutoff and len(settled) + len(self._active) <= MAX_ENTRIES:
                break
            del settled[key]

    def __len__(self) -> int:
        return len(self._active) + len(self._settled)
