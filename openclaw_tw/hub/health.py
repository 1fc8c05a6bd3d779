"""Health: the cached HealthSnapshot, its 60 s refresh, and an event-loop lag probe.

The snapshot is rebuilt at most once per refresh interval (or on demand with ``probe``), so
the ``health`` RPC is a dictionary lookup.  ``version`` is the health half of ``stateVersion``.
"""

from __future__ import annotations

import os
import resource
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from twisted.internet.interfaces import IReactorTime
from twisted.internet.task import LoopingCall

REFRESH_INTERVAL_S = 60.0
LAG_INTERVAL_S = 1.0
HEARTBEAT_EVERY_MS = 30 * 60 * 1000


class LoopLagProbe:
    """Samples how late a 1 s timer fires: the reactor's scheduling delay."""

    def __init__(self, clock: IReactorTime, samples: int = 60) -> None:
        self._clock = clock
        self._delays: deque[float] = deque(maxlen=samples)
        self._expected: float | None = None
        # CPU ratios compare real CPU seconds with real elapsed seconds (not the test clock).
        self._cpu_start = self._cpu()
        self._wall_start = time.monotonic()
        self._ratio = 0.0
        self._loop = LoopingCall(self._tick)
        self._loop.clock = clock

    @staticmethod
    def _cpu() -> float:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        return usage.ru_utime + usage.ru_stime

    def start(self) -> None:
        self._cpu_start, self._wall_start = self._cpu(), time.monotonic()
        self._expected = self._clock.seconds() + LAG_INTERVAL_S
        self._loop.start(LAG_INTERVAL_S, now=False)

    def stop(self) -> None:
        if self._loop.running:
            self._loop.stop()

    def _tick(self) -> None:
        now = self._clock.seconds()
        if self._expected is not None:
            self._delays.append(max(0.0, now - self._expected) * 1000)
        self._expected = now + LAG_INTERVAL_S

    def snapshot(self) -> dict[str, Any]:
        delays = sorted(self._delays)
        p99 = delays[min(len(delays) - 1, int(len(delays) * 0.99))] if delays else 0.0
        mx = delays[-1] if delays else 0.0
        now, cpu = time.monotonic(), self._cpu()
        wall = now - self._wall_start
        if wall >= 0.5:  # too short a window says nothing; keep the last ratio
            self._ratio = round(max(cpu - self._cpu_start, 0.0) / wall, 3)
            self._cpu_start, self._wall_start = cpu, now
        ratio = self._ratio
        degraded = p99 > 1000
        return {
            "degraded": degraded,
            "degradedSinceMs": None,
            "reasons": ["delay"] if degraded else [],
            "intervalMs": LAG_INTERVAL_S * 1000,
            "delayP99Ms": round(p99, 1),
            "delayMaxMs": round(mx, 1),
            "utilization": min(ratio, 1.0),
            "cpuCoreRatio": ratio,
            "cpuBreakdown": {
                "mainThreadCoreRatio": ratio,
                "hostCpuCount": os.cpu_count() or 1,
            },
        }


class HealthMonitor:
    def __init__(
        self,
        clock: IReactorTime,
        now_ms: Callable[[], int],
        sessions_path: str,
        on_refresh: Callable[[dict[str, Any]], None],
    ) -> None:
        self._clock = clock
        self._now_ms = now_ms
        self._sessions_path = sessions_path
        self._on_refresh = on_refresh
        self.sessions_summary: Callable[[], dict[str, Any]] | None = None
        # The default agent's heartbeat as configured (set by app.py), else the defaults below.
        self.heartbeat_summary: Callable[[], dict[str, Any]] | None = None
        # "active" while the config watcher runs (set by reload.ConfigWatcher), else omitted.
        self.config_reload: str | None = None
        self.lag = LoopLagProbe(clock)
        self.version = 1
        self._snapshot = self._build()
        self._built_at = clock.seconds()
        self._loop = LoopingCall(self.refresh)
        self._loop.clock = clock

    def start(self) -> None:
        self.lag.start()
        self._loop.start(REFRESH_INTERVAL_S, now=False)

    def stop(self) -> None:
        self.lag.stop()
        if self._loop.running:
            self._loop.stop()

    def current(self) -> dict[str, Any]:
        return self._snapshot

    def is_stale(self) -> bool:
        return self._clock.seconds() - self._built_at >= REFRESH_INTERVAL_S

    def refresh(self) -> dict[str, Any]:
        """Rebuild the snapshot, bump the version, and announce it (→ ``health`` event)."""
        self._snapshot = self._build()
        self._built_at = self._clock.seconds()
        self.version += 1
        self._on_refresh(self._snapshot)
        return self._snapshot

    def _build(self) -> dict[str, Any]:
        start = self._clock.seconds()
        sessions = (self.sessions_summary() if self.sessions_summary is not None
                    else {"path": self._sessions_path, "count": 0, "recent": []})
        if self.heartbeat_summary is not None:
            heartbeat = self.heartbeat_summary()
        else:  # not wired (a bare hub): the defaults
            from openclaw_tw.automation.heartbeat import heartbeat_summary

            heartbeat = heartbeat_summary({}, "main")
        snapshot = {
            "ok": True,
            "ts": self._now_ms(),
            "durationMs": 0,
            "plugins": {"loaded": [], "errors": [], "unavailable": []},
            **({"configReload": {"hotReloadStatus": self.config_reload}}
               if self.config_reload else {}),
            "channels": {},
            "channelOrder": [],
            "channelLabels": {},
            "heartbeatSeconds": (heartbeat["everyMs"] or 0) // 1000,
            "defaultAgentId": "main",
            "agents": [
                {
                    "agentId": "main",
                    "isDefault": True,
                    "heartbeat": heartbeat,
                    "sessions": dict(sessions),
                }
            ],
            "sessions": sessions,
            "modelRuntime": {"degraded": False, "pendingAgents": []},
            "eventLoop": self.lag.snapshot(),
        }
        snapshot["durationMs"] = int((self._clock.seconds() - start) * 1000)
        return snapshot
