"""Finished runs kept for ``agent.wait`` (§7.3): each for ``SETTLED_KEEP_S`` after it settled,
and never more than ``MAX_SETTLED_RUNS`` of them (the oldest go first), since a settled run
holds its whole reply and a client can finish turns as fast as its model answers."""

from __future__ import annotations

from typing import TYPE_CHECKING

from twisted.internet.interfaces import IDelayedCall, IReactorTime

if TYPE_CHECKING:
    from openclaw_tw.agent.run import Run

SETTLED_KEEP_S = 300.0
MAX_SETTLED_RUNS = 1000


class SettledRuns:
    """Drops settled runs from ``runs`` (the runtime's run table, by id) when their time is up."""

    def __init__(self, clock: IReactorTime, runs: dict[str, Run]) -> None:
        self._clock = clock
        self._runs = runs
        self._timers: dict[str, IDelayedCall] = {}  # run id -> its drop, oldest settle first

    def keep(self, run: Run) -> None:
        old = self._timers.pop(run.run_id, None)
        if old is not None and old.active():
            old.cancel()
        self._timers[run.run_id] = self._clock.callLater(SETTLED_KEEP_S, self._drop, run)
        while len(self._timers) > MAX_SETTLED_RUNS:
            oldest = next(iter(self._timers))
            timer = self._timers.pop(oldest)
            if timer.active():
                timer.cancel()
            stale = self._runs.get(oldest)
            if stale is not None and stale.state == "done":
                del self._runs[oldest]

    def clear(self) -> None:
        """Stopping: cancel every pending drop (nothing will ask for these runs again)."""
        timers, self._timers = self._timers, {}
        for timer in timers.values():
            if timer.active():
                timer.cancel()

    def _drop(self, run: Run) -> None:
        self._timers.pop(run.run_id, None)
        if self._runs.get(run.run_id) is run:
            del self._runs[run.run_id]
