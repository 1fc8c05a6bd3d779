"""The stability recorder behind ``diagnostics.stability``: a ring of payload-free events.

As the real gateway's recorder (``src/logging/diagnostic-stability.ts``) it keeps the last
1,000 sanitized diagnostic events, numbered by ``seq``, and answers a query (``limit``,
``type``, ``sinceSeq``) with the matching tail and a summary.  What we record is only what we
measure:

* ``diagnostic.memory.sample`` every 30 s: the process's resident set size (``rssBytes``);
  a Python process has no V8 heap, so the heap fields are absent;
* ``diagnostic.liveness.warning`` on such a tick when the event-loop lag probe
  (``hub/health.py``) reports the reactor degraded (p99 delay of a 1 s timer over 1 s);
* ``model.call.started`` / ``model.call.completed`` / ``model.call.error`` and
  ``model.usage`` for every model call (``agent/instrument.py``);
* ``message.received`` / ``message.dispatch.*`` / ``session.turn.created`` /
  ``message.processed`` / ``message.delivery.*`` for channel traffic
  (``channels/router.py``).

The telemetry-exporter view (``type: telemetry.exporter``) is its own 16-entry table in the
real gateway; we run no telemetry exporters, so it is always empty.
"""

from __future__ import annotations

import os
import resource
from collections import deque
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from twisted.internet.interfaces import IReactorTime
from twisted.internet.task import LoopingCall

CAPACITY = 1000
EXPORTER_CAPACITY = 16
DEFAULT_LIMIT = 50
MAX_LIMIT = CAPACITY
SAMPLE_INTERVAL_S = 30.0
EXPORTER_TYPE = "telemetry.exporter"


class QueryError(ValueError):
    """A refused ``diagnostics.stability`` query; the message is the real gateway's."""


def rss_bytes() -> int:
    """This process's resident set size now (``/proc``; peak RSS where there is none)."""
    try:
        with open("/proc/self/statm", "rb") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _nonnegative(value: Any, field: str) -> int | None:
    if value is None or value == "":
        return None
    if isinstance(value, str):
        if not value.isdigit():
            raise QueryError(f"{field} must be a non-negative integer")
        return int(value)
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0 or \
            (isinstance(value, float) and not value.is_integer()):
        raise QueryError(f"{field} must be a non-negative integer")
    return int(value)


def normalize_query(params: dict[str, Any]) -> tuple[int, str | None, int | None]:
    """``(limit, type, sinceSeq)`` as the real ``normalizeDiagnosticStabilityQuery``."""
    limit = _nonnegative(params.get("limit"), "limit")
    if limit is None:
        limit = DEFAULT_LIMIT
    elif not 1 <= limit <= MAX_LIMIT:
        raise QueryError(f"limit must be between 1 and {MAX_LIMIT}")
    kind = params.get("type")
    if kind is not None and kind != "":
        if not isinstance(kind, str) or not kind.strip():
            raise QueryError("type must be a non-empty string")
        kind = kind.strip()
    else:
        kind = None
    return limit, kind, _nonnegative(params.get("sinceSeq"), "sinceSeq")


class StabilityRecorder:
    """The ring and its 30 s sampler (started and stopped with the hub)."""

    def __init__(self, clock: IReactorTime, now_ms: Callable[[], int],
                 lag: Callable[[], dict[str, Any]], rss: Callable[[], int] = rss_bytes,
                 capacity: int = CAPACITY) -> None:
        self._now_ms = now_ms
        self._lag = lag
        self._rss = rss
        self.capacity = capacity
        self._records: deque[dict[str, Any]] = deque(maxlen=capacity)
        self._seq = 0
        self.dropped = 0
        # Called with every record as it is made (the metrics count model calls, deliveries).
        self.listeners: list[Callable[..., Any]] = []
        self._loop = LoopingCall(self.sample)
        self._loop.clock = clock

    def start(self) -> None:
        if not self._loop.running:
            self._loop.start(SAMPLE_INTERVAL_S, now=False)

    def stop(self) -> None:
        if self._loop.running:
            self._loop.stop()

    def record(self, kind: str, **fields: Any) -> dict[str, Any]:
        """Append one event (fields that are None are left out); returns the record."""
        self._seq += 1
        rec: dict[str, Any] = {"seq": self._seq, "ts": self._now_ms(), "type": kind}
        rec.update((k, v) for k, v in fields.items() if v is not None)
        if len(self._records) == self.capacity:
            self.dropped += 1
        self._records.append(rec)
        for listener in self.listeners:
            listener(kind, **fields)
        return rec

    def sample(self) -> None:
        """The periodic samples: memory, and a liveness warning while the reactor lags."""
        self.record("diagnostic.memory.sample", memory={"rssBytes": self._rss()})
        loop = self._lag()
        if loop.get("degraded"):
            reasons = list(loop.get("reasons") or [])
            self.record("diagnostic.liveness.warning", level="warning",
                        durationMs=loop.get("intervalMs"), count=len(reasons),
                        reason=reasons[0] if reasons else None,
                        eventLoopDelayP99Ms=loop.get("delayP99Ms"),
                        eventLoopDelayMaxMs=loop.get("delayMaxMs"),
                        eventLoopUtilization=loop.get("utilization"),
                        cpuCoreRatio=loop.get("cpuCoreRatio"))

    def snapshot(self, limit: int = DEFAULT_LIMIT, kind: str | None = None,
                 since_seq: int | None = None) -> dict[str, Any]:
        """The ``diagnostics.stability`` result."""
        exporters = kind == EXPORTER_TYPE
        records = [] if exporters else list(self._records)
        filtered = [r for r in records if (kind is None or r["type"] == kind) and
                    (since_seq is None or r["seq"] > since_seq)]
        now = datetime.fromtimestamp(self._now_ms() / 1000, UTC)
        out: dict[str, Any] = {
            "generatedAt": now.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "capacity": EXPORTER_CAPACITY if exporters else self.capacity,
            "count": len(filtered),
            "dropped": 0 if exporters else self.dropped,
        }
        if filtered:
            out["firstSeq"], out["lastSeq"] = filtered[0]["seq"], filtered[-1]["seq"]
        out["events"] = filtered[-limit:]
        out["summary"] = summarize(filtered)
        return out


def summarize(records: list[dict[str, Any]]) -> dict[str, Any]:
    """Counts by type and, when memory was sampled, the latest and peak RSS."""
    by_type: dict[str, int] = {}
    latest: dict[str, Any] | None = None
    max_rss: int | None = None
    pressure = 0
    for rec in records:
        by_type[rec["type"]] = by_type.get(rec["type"], 0) + 1
        memory = rec.get("memory")
        if memory:
            latest = memory
            rss = memory.get("rssBytes")
            if rss is not None:
                max_rss = rss if max_rss is None else max(max_rss, rss)
        if rec["type"] == "diagnostic.memory.pressure":
            pressure += 1
    out: dict[str, Any] = {"byType": by_type}
    if latest is not None or pressure:
        memory_summary: dict[str, Any] = {"latest": latest, "pressureCount": pressure}
        if max_rss is not None:
            memory_summary = {"latest": latest, "maxRssBytes": max_rss,
                              "pressureCount": pressure}
        out["memory"] = memory_summary
    return out
