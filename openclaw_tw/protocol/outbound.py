"""The global outbound budget: bytes queued on every socket together, bounded.

Each socket is bounded on its own (``MAX_BUFFERED_BYTES``), but N stalled readers could
still hold N times that.  Sockets report their backlog after each write (``note``, only when
it changed, so a socket that keeps up costs one comparison); the sum is kept incrementally.
Reports go stale as the kernel drains a socket that is no longer written to, so the sum can
only overestimate: when it passes the budget, the noted sockets are measured again
(``refresh``), and if the real total is still over, the largest backlogs — the slowest
consumers — are retired (``close_slow``: their unsent frames dropped, then 1008 "slow
consumer") until the total is back under ``OUTBOUND_RELIEF`` of the budget (the headroom
keeps a burst from re-measuring on every write).  Retired sockets leave the count at once.

``on_release`` hears of every large backlog that goes away (retired or closed), so the hub
can hand the freed heap back to the OS (``daemon/malloc_trim.py``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from twisted.logger import Logger

from openclaw_tw.protocol.limits import MAX_TOTAL_BUFFERED_BYTES, OUTBOUND_RELIEF

_log = Logger(namespace="gateway/ws")

SLOW_CONSUMER = "slow consumer"


class Buffering(Protocol):
    conn_id: str

    def buffered(self) -> int: ...

    def close_slow(self) -> None: ...


class OutboundBudget:
    def __init__(self, limit: int = MAX_TOTAL_BUFFERED_BYTES,
                 on_release: Callable[[int], None] | None = None) -> None:
        self.limit = limit
        self.on_release = on_release
        self.total = 0  # noted bytes (>= what is really queued)
        self.evicted = 0  # sockets closed to stay within the budget
        self._held: dict[Buffering, int] = {}  # only sockets with a backlog

    def __len__(self) -> int:
        return len(self._held)

    def note(self, conn: Buffering, held: int) -> None:
        """``conn`` has ``held`` bytes queued now."""
        old = self._held.pop(conn, 0)
        if held > 0:
            self._held[conn] = held
        self.total += held - old
        if self.total > self.limit:
            self.enforce()

    def forget(self, conn: Buffering) -> None:
        held = self._held.pop(conn, 0)
        self.total -= held
        if held and self.on_release is not None:
            self.on_release(held)

    def refresh(self) -> int:
        """Measure every noted socket again; the exact total."""
        total = 0
        for conn in list(self._held):
            held = conn.buffered()
            if held > 0:
                self._held[conn] = held
                total += held
            else:
                del self._held[conn]
        self.total = total
        return total

    def enforce(self) -> int:
        """Close the largest backlogs while the real total is over the budget; how many."""
        if self.refresh() <= self.limit:
            return 0
        target = int(self.limit * OUTBOUND_RELIEF)
        closed = 0
        for conn, held in sorted(self._held.items(), key=lambda kv: kv[1], reverse=True):
            if self.total <= target:
                break
            self.forget(conn)
            closed += 1
            _log.info("outbound budget exceeded: closing slow consumer conn={conn} "
                      "held={held} total={total} limit={limit}", conn=conn.conn_id,
                      held=held, total=self.total + held, limit=self.limit)
            conn.close_slow()
        self.evicted += closed
        return closed
