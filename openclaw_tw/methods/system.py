"""System methods: health, status, presence, system events, heartbeats, gateway identity."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import attrs

from openclaw_tw.automation.heartbeat import waiting_for_route
from openclaw_tw.hub.diagnostics import rss_bytes
from openclaw_tw.hub.gateway import COMPAT_VERSION
from openclaw_tw.hub.health import HEARTBEAT_EVERY_MS, HealthMonitor
from openclaw_tw.hub.identity import GatewayIdentity
from openclaw_tw.hub.presence import PresenceRegistry
from openclaw_tw.protocol.dispatch import CallContext, rpc
from openclaw_tw.protocol.limits import (
    MAX_PRESENCE_FIELD_CHARS,
    MAX_PRESENCE_LIST_ITEMS,
    MAX_PRESENCE_TEXT_CHARS,
)
from openclaw_tw.protocol.schema import Arr, Bool, Int, Obj, Str
from openclaw_tw.sessions.keys import agent_of, main_key, normalize_agent_id, resolve_key

if TYPE_CHECKING:
    from openclaw_tw.automation.heartbeat import Heartbeat

_S1 = Str(min_len=1)

# The task audit's finding codes: the real status counts each, 0 when there is none.
AUDIT_CODES = ("stale_queued", "stale_running", "lost", "delivery_failed", "missing_cleanup",
               "inconsistent_timestamps")
HEALTH_PARAMS = Obj(optional={"probe": Bool()})
STATUS_PARAMS = Obj(optional={"includeChannelSummary": Bool(), "includeCliProjection": Bool()})
# Presence is held in memory and sent in every hello-ok: every field is bounded.
_FIELD = Str(min_len=1, max_len=MAX_PRESENCE_FIELD_CHARS)
_LIST = Arr(_FIELD, max_items=MAX_PRESENCE_LIST_ITEMS)
SYSTEM_EVENT_PARAMS = Obj(
    required={"text": Str(min_len=1, max_len=MAX_PRESENCE_TEXT_CHARS)},
    optional={
        "instanceId": _FIELD, "deviceId": _FIELD, "host": _FIELD, "ip": _FIELD,
        "mode": _FIELD, "version": _FIELD, "platform": _FIELD, "deviceFamily": _FIELD,
        "modelIdentifier": _FIELD, "lastInputSeconds": Int(minimum=0), "reason": _FIELD,
        "roles": _LIST, "scopes": _LIST, "tags": _LIST,
    },
)
SET_HEARTBEATS_PARAMS = Obj(required={"enabled": Bool()})
WAKE_PARAMS = Obj(required={"mode": Str(enum=("now", "next-heartbeat")), "text": _S1},
                  optional={"sessionKey": _S1, "agentId": _S1})


@attrs.define
class SystemMethods:
    """health, status, presence, system events, heartbeats, gateway identity.

    The heartbeat switch and the last heartbeat are gateway state read and written through
    callables.
    """

    _health: HealthMonitor
    _presence: PresenceRegistry
    _broadcast_presence: Callable[[], int]
    _identity: GatewayIdentity
    _heartbeat: Heartbeat | None
    _heartbeats_enabled: Callable[[], bool]
    _set_heartbeats_enabled: Callable[[bool], None]
    _last_heartbeat: Callable[[], dict[str, Any] | None]
    _sessions_path: Callable[[], str]
    _inflight: Callable[[], int]
    # {path, count, recent} of the session store (the health snapshot's sessions block)
    _sessions_summary: Callable[[], dict[str, Any]] | None = None
    # status's cliProjection (agents, update channel, memory plugin) from the config in force
    _cli_projection: Callable[[], dict[str, Any]] | None = None

    @rpc("health", HEALTH_PARAMS)
    def health(self, ctx: CallContext, params: dict[str, Any]) -> dict[str, Any]:
        if params.get("probe") or self._health.is_stale():
            return self._health.refresh()
        return self._health.current()

    @rpc("status", STATUS_PARAMS)
    def status(self, ctx: CallContext, params: dict[str, Any]) -> dict[str, Any]:
        out = self.build_status(ctx.is_admin)
        if params.get("includeCliProjection") and self._cli_projection is not None:
            out["cliProjection"] = self._cli_projection()
        return out

    @rpc("system-presence")
    def system_presence(self, ctx: CallContext, params: dict[str, Any]) -> list[dict[str, Any]]:
        return self._presence.snapshot()

    @rpc("system-event", SYSTEM_EVENT_PARAMS)
    def system_event(self, ctx: CallContext, params: dict[str, Any]) -> dict[str, Any]:
        self._presence.add_event(params)
        self._broadcast_presence()
        return {"ok": True}

    @rpc("last-heartbeat")
    def last_heartbeat(self, ctx: CallContext, params: dict[str, Any]) -> Any:
        return self._last_heartbeat()

    @rpc("set-heartbeats", SET_HEARTBEATS_PARAMS)
    def set_heartbeats(self, ctx: CallContext, params: dict[str, Any]) -> dict[str, Any]:
        self._set_heartbeats_enabled(params["enabled"])
        return {"ok": True, "enabled": self._heartbeats_enabled()}

    @rpc("wake", WAKE_PARAMS)
    def wake(self, ctx: CallContext, params: dict[str, Any]) -> dict[str, Any]:
        """Queue a system event for the agent's heartbeat; ``now`` runs the heartbeat soon."""
        agent = normalize_agent_id(params.get("agentId"))
        raw_key = params.get("sessionKey")
        key = resolve_key(raw_key, agent_id=agent) if raw_key else main_key(agent)
        heartbeat = self._heartbeat
        assert heartbeat is not None, "wake before the heartbeat was wired"
        heartbeat.enqueue(key, params["text"], "wake")
        if params["mode"] == "now":
            heartbeat.request_wake(agent_of(key), "wake")
        return {"ok": True}

    @rpc("gateway.identity.get")
    def identity(self, ctx: CallContext, params: dict[str, Any]) -> dict[str, Any]:
        return {"deviceId": self._identity.device_id, "publicKey": self._identity.public_key}

    def build_status(self, admin: bool) -> dict[str, Any]:
        """The ``status`` payload. As on the real gateway, a caller without operator.admin gets
        the session count only: the path redacted, no recent sessions (their keys)."""
        path = self._sessions_path() if admin else "[redacted]"
        summary = self._sessions_summary() if self._sessions_summary is not None else {}
        count = int(summary.get("count", 0))
        recent = list(summary.get("recent", [])) if admin else []
        hb = self._heartbeat
        hb_cfg = hb.config_for("main") if hb is not None else {"everyMs": HEARTBEAT_EVERY_MS}
        every_ms: int | None = hb_cfg["everyMs"] or None  # "0m": off
        enabled = self._heartbeats_enabled() and every_ms is not None
        every = hb_cfg.get("every", "30m") if every_ms is not None else "disabled"
        zero_status = {"queued": 0, "running": 0, "succeeded": 0, "failed": 0, "timed_out": 0,
                       "cancelled": 0, "lost": 0}
        return {
            "runtimeVersion": COMPAT_VERSION,
            "hostDesktop": {"enabled": False, "state": "disabled", "port": 5900},
            "heartbeat": {
                "defaultAgentId": "main",
                "agents": [{"agentId": "main", "enabled": enabled, "every": every,
                            "everyMs": every_ms,
                            "waitingForRoute": enabled and waiting_for_route(hb_cfg)}],
            },
            "channelSummary": [],
            "queuedSystemEvents": [],
            "degradedSecretOwners": [],
            "degradedPlugins": [],
            "tasks": {"total": 0, "active": 0, "terminal": 0, "failures": 0,
                      "byStatus": zero_status,
                      "byRuntime": {"subagent": 0, "acp": 0, "cli": 0, "cron": 0}},
            "taskAudit": {"total": 0, "warnings": 0, "errors": 0,
                          "byCode": dict.fromkeys(AUDIT_CODES, 0)},
            "sessions": {
                "paths": [path] if admin else [],
                "count": count,
                "defaults": {"model": None, "contextTokens": None},
                "recent": recent,
                "byAgent": [{"agentId": "main", "path": path, "count": count,
                             "recent": recent}],
            },
            "modelRuntime": {"degraded": False, "pendingAgents": []},
            "eventLoop": self._health.lag.snapshot(),
            "processMemory": _process_memory(),
            "workerPools": {},
            "pid": os.getpid(),
            "shutdownBudget": {"timeoutMs": 2000, "reserveMs": 0, "nativeStopBudget": True,
                               "activeWork": {"rootRequests": self._inflight()},
                               "writeCustody": []},
        }


def _process_memory() -> dict[str, int]:
    return {"rssBytes": rss_bytes()}
